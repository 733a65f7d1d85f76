//! The collection: the corpus and its index changed together while they serve. Reports
//! come in ([`add_report`]: a PDF, `.txt` or `.md` file becomes a text file in the corpus
//! folder with its catalog entry) and go out ([`remove_report`]), and the index follows
//! incrementally (only new passages are embedded, see [`crate::index`]). A running
//! server holds a [`Collection`], whose [`Snapshot`] it swaps for a new one when a change
//! is done; requests in flight finish on the snapshot they started with.
//!
//! ## A change, step by step
//!
//! 1. The file is read and checked ([`prepare`]): format by content, text extracted,
//!    title, publisher and year settled.
//! 2. Under the corpus folder's change lock ([`CHANGE_LOCK_FILE`]), whatever an
//!    interrupted change left is settled (see below), duplicates are refused and the
//!    stored file name is chosen (from the title or the file's own name, sanitized, with
//!    a hash of the content; never a path given by a client).
//! 3. The index of the corpus-to-be is built and staged beside the one in use
//!    ([`index::stage`]): minutes of embedding at most, nothing of the corpus touched yet.
//! 4. The change commits: the report's text is written under its pending name
//!    ([`crate::corpus::pending_name`]), then `catalog.toml` is replaced atomically (the
//!    commit point), then the text takes its own name and the staged index becomes the
//!    index. A removal first moves the text to its pending name and deletes it after the
//!    catalog is written.
//!
//! A process killed anywhere leaves either the old catalog with the old index (before
//! the catalog is written: a pending file and a staged index lie unused and are removed
//! by the next change) or the new catalog with the new index (readers take the pending
//! text and the staged manifest until the next change renames them). Nothing is ever
//! half added to the catalog, and the old index keeps serving throughout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::atomic_file::{rename_durable, write_atomic};
use crate::corpus::extract::{self, ExtractOptions, Format};
use crate::corpus::{
    CATALOG_FILE, Catalog, Corpus, Documents, Report, is_plain_file_name, pending_name,
};
use crate::embed::Encoder;
use crate::error::{Error, ErrorCode, Result};
use crate::index::{self, Expectation};
use crate::progress::Progress;
use crate::retrieve::{Engine, EngineConfig, RebuildPolicy};

/// The lock file, inside the corpus folder, that one change at a time holds (across
/// processes: a `wenda add` beside a running server waits its turn by failing fast).
pub const CHANGE_LOCK_FILE: &str = ".wenda-change.lock";

/// Longest title or publisher accepted, in characters: the five reports' longest
/// publisher has 41, titles under 30.
pub const MAX_METADATA_CHARS: usize = 200;

/// A report's first line is taken as its title when no title is given, if it has at
/// most this many characters (titles of the five reports: 19–27).
pub const TITLE_LINE_MAX_CHARS: usize = 60;

/// Years accepted for a report: none of ours is older than 2023, and a typo like 20245
/// or 224 should be refused rather than stored.
pub const YEARS: std::ops::RangeInclusive<u32> = 1990..=2100;

/// Where a collection lives and how it is read and indexed.
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// The corpus folder (reports and `catalog.toml`).
    pub corpus_dir: PathBuf,
    /// The index folder, rebuild policy at open and fusion.
    pub engine: EngineConfig,
    /// How PDFs are turned into text.
    pub extract: ExtractOptions,
}

/// A report to add, as a person or a client hands it in.
#[derive(Debug, Clone, Default)]
pub struct NewReport {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The name the file came with, if any: only its extension is used, and it must
    /// agree with the content.
    pub file_name: Option<String>,
    /// A name to derive the stored file name from (the command line passes the file's
    /// own name; the API passes none, so the title is used).
    pub name_hint: Option<String>,
    /// Title; default: the text's first line when short enough.
    pub title: Option<String>,
    /// Publisher; default: empty.
    pub publisher: Option<String>,
    /// Year; default: the first year (like `2025年`) in the title or the text's opening.
    pub year: Option<u32>,
}

/// A report ready to be added: its text and catalog entry (whose file name is chosen
/// when the change commits).
#[derive(Debug, Clone)]
pub struct PreparedReport {
    /// The format it came in.
    pub format: Format,
    /// The text to store.
    pub text: String,
    /// Its catalog entry, `file` still empty.
    pub report: Report,
    name_hint: Option<String>,
}

/// What an addition did.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    /// The stored file name: the `source` of its citations.
    pub source: String,
    /// Title in the catalog.
    pub title: String,
    /// Publisher in the catalog.
    pub publisher: String,
    /// Year in the catalog.
    pub year: u32,
    /// The format it came in.
    pub format: Format,
    /// Its passages.
    pub passages: usize,
    /// Passages the index build embedded (the rest came from the vector cache).
    pub embedded: usize,
    /// The collection version after the change ([`Snapshot::version`]).
    pub version: String,
    /// Wall time of the whole addition in seconds.
    pub seconds: f64,
}

/// What a removal did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The removed file name.
    pub source: String,
    /// Its title.
    pub title: String,
    /// Passages removed with it.
    pub passages: usize,
    /// The collection version after the change.
    pub version: String,
    /// Wall time of the removal in seconds.
    pub seconds: f64,
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::invalid(code, message)
}

/// SHA-256 of `bytes` in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks the format and the metadata that were given, and for a PDF that `pdftotext`
/// is there, without extracting anything: what a server answers at once, before it
/// queues the work, and the command line before it loads the model.
pub fn check_new(new: &NewReport, options: &ExtractOptions) -> Result<Format> {
    let format = extract::detect(&new.bytes, new.file_name.as_deref())?;
    if format == Format::Pdf {
        extract::check_pdftotext(options)?;
    }
    if let Some(t) = &new.title {
        check_metadata("title", t, true)?;
    }
    if let Some(p) = &new.publisher {
        check_metadata("publisher", p, false)?;
    }
    if let Some(y) = new.year {
        check_year(y)?;
    }
    Ok(format)
}

fn check_metadata(field: &str, value: &str, required: bool) -> Result<()> {
    let n = value.trim().chars().count();
    if (required && n == 0) || n > MAX_METADATA_CHARS || value.chars().any(char::is_control) {
        return Err(invalid(
            ErrorCode::InvalidMetadata,
            format!(
                "the {field} must be {} to {MAX_METADATA_CHARS} characters without control characters",
                if required { 1 } else { 0 }
            ),
        ));
    }
    Ok(())
}

fn check_year(year: u32) -> Result<()> {
    if !YEARS.contains(&year) {
        return Err(invalid(
            ErrorCode::InvalidMetadata,
            format!(
                "the year {year} is not between {} and {}",
                YEARS.start(),
                YEARS.end()
            ),
        ));
    }
    Ok(())
}

/// The first year written like `2025年` (or a bare 4-digit year in [`YEARS`]) in `text`.
fn year_in(text: &str) -> Option<u32> {
    let chars: Vec<char> = text.chars().collect();
    let mut bare = None;
    for i in 0..chars.len().saturating_sub(3) {
        let digits = &chars[i..i + 4];
        let before_digit = i > 0 && chars[i - 1].is_ascii_digit();
        let after_digit = chars.get(i + 4).is_some_and(char::is_ascii_digit);
        if before_digit || after_digit || !digits.iter().all(char::is_ascii_digit) {
            continue;
        }
        let year: u32 = digits.iter().collect::<String>().parse().ok()?;
        if !YEARS.contains(&year) {
            continue;
        }
        if chars.get(i + 4) == Some(&'年') {
            return Some(year);
        }
        bare.get_or_insert(year);
    }
    bare
}

/// The report's title as its text shows it: the first non-blank line of at most
/// [`TITLE_LINE_MAX_CHARS`] characters that occurs once (a running page header, which
/// a PDF's text often starts with, occurs on every page), among the first 20 lines.
fn title_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .iter()
        .filter(|l| !l.is_empty())
        .take(20)
        .find(|l| {
            l.chars().count() <= TITLE_LINE_MAX_CHARS
                && lines.iter().filter(|m| m == l).count() == 1
        })
        .map(|l| l.to_string())
}

/// Reads a new report: format by content, text (a PDF through `pdftotext`), and the
/// catalog entry with defaults for what was not given.
pub fn prepare(
    new: &NewReport,
    options: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<PreparedReport> {
    let format = check_new(new, options)?;
    progress.stage("extracting text", 1);
    let text = extract::extract_text(&new.bytes, format, options)?;
    progress.position(1);
    progress.finish();
    let title = match &new.title {
        Some(t) => t.trim().to_string(),
        None => title_line(&text)
            .or_else(|| new.name_hint.clone())
            .ok_or_else(|| {
                invalid(
                    ErrorCode::InvalidMetadata,
                    "the report needs a title (its first line is too long to be one)",
                )
            })?,
    };
    check_metadata("title", &title, true)?;
    let publisher = new.publisher.as_deref().unwrap_or("").trim().to_string();
    check_metadata("publisher", &publisher, false)?;
    let opening: String = text.chars().take(2000).collect();
    let year = match new.year {
        Some(y) => y,
        None => year_in(&title).or_else(|| year_in(&opening)).ok_or_else(|| {
            invalid(
                ErrorCode::InvalidMetadata,
                "the report's year is not in its title or opening; give it (--year, or the year field)",
            )
        })?,
    };
    check_year(year)?;
    Ok(PreparedReport {
        format,
        text,
        report: Report {
            file: String::new(),
            title,
            publisher,
            year,
            aliases: Vec::new(),
            sha256: Some(sha256_hex(&new.bytes)),
        },
        name_hint: new.name_hint.clone(),
    })
}

/// Lowercase ASCII letters and digits of `s`, other runs turned into one `-`, at most
/// 48 characters; empty when `s` has no ASCII letter (a Chinese title).
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(48).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.chars().any(|c| c.is_ascii_alphabetic()) {
        out
    } else {
        String::new()
    }
}

/// The stored file name of a new report: the slug of its name hint (the command line's
/// file name) when free, else the slug of the hint or title (or `report`) with the first
/// hex digits of its content hash; never a name already in the folder or the catalog.
fn stored_name(prepared: &PreparedReport, sha: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let hint = prepared
        .name_hint
        .as_deref()
        .map(|h| slug(h.rsplit_once('.').map_or(h, |(stem, _)| stem)))
        .filter(|s| !s.is_empty());
    let base = hint
        .clone()
        .or_else(|| Some(slug(&prepared.report.title)).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "report".to_string());
    let mut candidates = Vec::new();
    if let Some(h) = hint {
        candidates.push(format!("{h}.txt"));
    }
    for digits in [8, 16, 64] {
        candidates.push(format!("{base}-{}.txt", &sha[..digits]));
    }
    for name in &candidates {
        if is_plain_file_name(name) && !taken(name) {
            return name.clone();
        }
    }
    (2..)
        .map(|n| format!("{base}-{}-{n}.txt", &sha[..8]))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

/// The corpus folder's change lock, held while a change runs.
struct ChangeLock(#[allow(dead_code)] std::fs::File);

impl ChangeLock {
    fn take(corpus_dir: &Path) -> Result<ChangeLock> {
        let path = corpus_dir.join(CHANGE_LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(ChangeLock(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(invalid(
                ErrorCode::ChangeInProgress,
                format!(
                    "another change of the collection is running (it holds {}); try again when it is done",
                    path.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

fn expectation(corpus: &Corpus, encoder: Option<&dyn Encoder>) -> Expectation {
    Expectation {
        corpus_fingerprint: corpus.fingerprint().to_string(),
        model_id: encoder.map(|e| e.model_id().to_string()),
    }
}

/// Settles what an interrupted change left (pending report files, a staged index whose
/// catalog committed) and returns the corpus as it stands. Called under the change lock.
fn settle(config: &CollectionConfig, encoder: Option<&dyn Encoder>) -> Result<Corpus> {
    let dir = &config.corpus_dir;
    let catalog = Catalog::load(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(file) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".pending"))
        else {
            continue;
        };
        let pending = entry.path();
        if catalog.get(file).is_some() && !dir.join(file).exists() {
            tracing::info!("completing the interrupted addition of {file}");
            rename_durable(&pending, &dir.join(file)).map_err(|e| Error::io(e.path, e.source))?;
        } else {
            tracing::info!("removing {name}, left by an interrupted change");
            std::fs::remove_file(&pending).map_err(|e| Error::io(&pending, e))?;
        }
    }
    let corpus = Corpus::load(dir)?;
    index::settle(&config.engine.index_dir, &expectation(&corpus, encoder))?;
    Ok(corpus)
}

/// Adds a report to the collection on disk (see the module documentation) and returns
/// what was added; the index is rebuilt incrementally with `encoder` (none: BM25 only).
pub fn add_report(
    config: &CollectionConfig,
    new: &NewReport,
    encoder: Option<&dyn Encoder>,
    progress: &dyn Progress,
) -> Result<Added> {
    let started = Instant::now();
    let prepared = prepare(new, &config.extract, progress)?;
    let dir = &config.corpus_dir;
    let _lock = ChangeLock::take(dir)?;
    let corpus = settle(config, encoder)?;
    let sha = prepared.report.sha256.clone().unwrap_or_default();
    if let Some(same) = corpus
        .catalog
        .reports
        .iter()
        .find(|r| r.sha256.as_deref() == Some(sha.as_str()))
        .or_else(|| corpus.report_with_text(&prepared.text))
    {
        return Err(duplicate(same));
    }
    let taken = |name: &str| {
        corpus.catalog.get(name).is_some()
            || dir.join(name).exists()
            || dir.join(pending_name(name)).exists()
    };
    let file = stored_name(&prepared, &sha, &taken);
    let report = Report {
        file: file.clone(),
        ..prepared.report.clone()
    };
    let catalog_path = dir.join(CATALOG_FILE);
    let catalog_text =
        std::fs::read_to_string(&catalog_path).map_err(|e| Error::io(&catalog_path, e))?;
    let new_catalog = Catalog::with_report(&catalog_text, &report)?;
    let next = corpus.changed(&new_catalog, Some((&file, &prepared.text)))?;
    let passages = next
        .passages()
        .iter()
        .filter(|p| p.citation.source == file)
        .count();
    if passages == 0 {
        return Err(invalid(
            ErrorCode::NoText,
            "the report's text makes no passage to search",
        ));
    }
    let staged = index::stage(
        &config.engine.index_dir,
        next.passages(),
        &next.report_labels(),
        next.fingerprint(),
        encoder,
        progress,
    )?;
    // Commit: text under its pending name, the catalog (the commit point), the text
    // under its own name, the staged index.
    let pending = dir.join(pending_name(&file));
    write_atomic(&pending, prepared.text.as_bytes()).map_err(|e| Error::io(e.path, e.source))?;
    if let Err(e) = write_atomic(&catalog_path, new_catalog.as_bytes()) {
        let _ = std::fs::remove_file(&pending);
        return Err(Error::io(e.path, e.source));
    }
    if let Err(e) = rename_durable(&pending, &dir.join(&file)) {
        // Committed all the same: readers take the pending file until the next change.
        tracing::warn!("{e}; the next change renames it");
    }
    let embedded = staged.manifest().embedded;
    let built = staged.commit()?;
    Ok(Added {
        source: file,
        title: report.title,
        publisher: report.publisher,
        year: report.year,
        format: prepared.format,
        passages,
        embedded,
        version: built.manifest.corpus_fingerprint,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn duplicate(same: &Report) -> Error {
    invalid(
        ErrorCode::DuplicateDocument,
        format!(
            "this report is already in the collection as {} ({})",
            same.file, same.title
        ),
    )
}

/// Removes the report `source` from the collection on disk: its file, its catalog entry
/// and every passage of it in the index (rebuilt from the vector cache, nothing embedded).
pub fn remove_report(
    config: &CollectionConfig,
    source: &str,
    encoder: Option<&dyn Encoder>,
    progress: &dyn Progress,
) -> Result<Removed> {
    let started = Instant::now();
    let dir = &config.corpus_dir;
    let _lock = ChangeLock::take(dir)?;
    let corpus = settle(config, encoder)?;
    let Some(report) = corpus.catalog.get(source).cloned() else {
        return Err(Error::NotFound(format!(
            "no report named {source:?} in the collection; `wenda list` or GET /api/documents lists them"
        )));
    };
    if corpus.catalog.reports.len() == 1 {
        return Err(invalid(
            ErrorCode::LastDocument,
            format!("{source} is the only report; a collection needs at least one"),
        ));
    }
    let passages = corpus
        .passages()
        .iter()
        .filter(|p| p.citation.source == source)
        .count();
    let catalog_path = dir.join(CATALOG_FILE);
    let catalog_text =
        std::fs::read_to_string(&catalog_path).map_err(|e| Error::io(&catalog_path, e))?;
    let new_catalog = Catalog::without_report(&catalog_text, source)?.ok_or_else(|| {
        Error::Corpus(format!(
            "{CATALOG_FILE} has no entry to remove for {source}"
        ))
    })?;
    let next = corpus.changed(&new_catalog, None)?;
    let staged = index::stage(
        &config.engine.index_dir,
        next.passages(),
        &next.report_labels(),
        next.fingerprint(),
        encoder,
        progress,
    )?;
    // Commit: the text to its pending name (still found there while the old catalog
    // lists it), the catalog (the commit point), then the text is deleted.
    let file = dir.join(source);
    let pending = dir.join(pending_name(source));
    rename_durable(&file, &pending).map_err(|e| Error::io(e.path, e.source))?;
    if let Err(e) = write_atomic(&catalog_path, new_catalog.as_bytes()) {
        let _ = rename_durable(&pending, &file);
        return Err(Error::io(e.path, e.source));
    }
    if let Err(e) = std::fs::remove_file(&pending) {
        tracing::warn!("{}: {e}; the next change removes it", pending.display());
    }
    let built = staged.commit()?;
    Ok(Removed {
        source: source.to_string(),
        title: report.title,
        passages,
        version: built.manifest.corpus_fingerprint,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a server serves at one moment: an engine and the documents of one version of
/// the collection.
pub struct Snapshot {
    /// The search engine over this version's index.
    pub engine: Arc<Engine>,
    /// The reports of this version, for opening citations.
    pub documents: Arc<Documents>,
}

impl Snapshot {
    /// The collection version: the corpus fingerprint its index was built from (it
    /// changes with every report added or removed).
    pub fn version(&self) -> &str {
        &self.engine.manifest().corpus_fingerprint
    }
}

/// A collection a server serves and changes: the current [`Snapshot`], replaced when a
/// change (its own, or another process's, see [`Collection::refresh`]) is done.
pub struct Collection {
    config: Option<CollectionConfig>,
    encoder: Option<Arc<dyn Encoder>>,
    current: RwLock<Arc<Snapshot>>,
    changing: Mutex<()>,
    /// The index manifests on disk when the collection was last read (see [`Collection::refresh`]).
    seen_on_disk: Mutex<Vec<String>>,
}

/// The data folders named by the index's manifest and staged manifest, as they are now.
fn manifests_on_disk(index_dir: &Path) -> Vec<String> {
    [index::MANIFEST_FILE, index::NEXT_MANIFEST_FILE]
        .iter()
        .filter_map(|name| std::fs::read_to_string(index_dir.join(name)).ok())
        .filter_map(|text| serde_json::from_str::<index::Manifest>(&text).ok())
        .map(|m| m.data_dir)
        .collect()
}

impl Collection {
    /// Opens the collection (building its index if the config allows and it is needed).
    pub fn open(
        config: CollectionConfig,
        encoder: Option<Arc<dyn Encoder>>,
        progress: &dyn Progress,
    ) -> Result<Collection> {
        let corpus = Corpus::load(&config.corpus_dir)?;
        let engine = Engine::open(&config.engine, &corpus, encoder.clone(), progress)?;
        let snapshot = Snapshot {
            engine: Arc::new(engine),
            documents: Arc::new(corpus.documents()),
        };
        let seen = manifests_on_disk(&config.engine.index_dir);
        Ok(Collection {
            config: Some(config),
            encoder,
            current: RwLock::new(Arc::new(snapshot)),
            changing: Mutex::new(()),
            seen_on_disk: Mutex::new(seen),
        })
    }

    /// A collection that never changes, over an engine and documents opened elsewhere.
    pub fn fixed(engine: Arc<Engine>, documents: Arc<Documents>) -> Collection {
        Collection {
            config: None,
            encoder: None,
            current: RwLock::new(Arc::new(Snapshot { engine, documents })),
            changing: Mutex::new(()),
            seen_on_disk: Mutex::new(Vec::new()),
        }
    }

    /// Whether reports can be added and removed (false for [`Collection::fixed`]).
    pub fn is_changeable(&self) -> bool {
        self.config.is_some()
    }

    /// The snapshot to serve a request with.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn config(&self) -> Result<&CollectionConfig> {
        self.config.as_ref().ok_or_else(|| {
            invalid(
                ErrorCode::WritesDisabled,
                "this collection cannot be changed",
            )
        })
    }

    /// Refuses at once what an addition would refuse without extracting or indexing:
    /// format, given metadata, the same file already in the collection.
    pub fn check_addition(&self, new: &NewReport) -> Result<Format> {
        let config = self.config()?;
        let format = check_new(new, &config.extract)?;
        let sha = sha256_hex(&new.bytes);
        let current = self.current();
        if let Some(same) = current
            .documents
            .reports()
            .iter()
            .find(|r| r.sha256.as_deref() == Some(sha.as_str()))
        {
            return Err(duplicate(same));
        }
        Ok(format)
    }

    /// Adds a report and switches to the new snapshot.
    pub fn add(&self, new: &NewReport, progress: &dyn Progress) -> Result<Added> {
        let config = self.config()?;
        let _one = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let added = add_report(config, new, self.encoder.as_deref(), progress)?;
        self.reload()?;
        Ok(added)
    }

    /// Removes a report and switches to the new snapshot.
    pub fn remove(&self, source: &str, progress: &dyn Progress) -> Result<Removed> {
        let config = self.config()?;
        let _one = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let removed = remove_report(config, source, self.encoder.as_deref(), progress)?;
        self.reload()?;
        Ok(removed)
    }

    /// Reads the collection from disk again and switches to it, never building: an index
    /// that does not match the corpus (a change still committing) is an error and the
    /// current snapshot stays.
    fn reload(&self) -> Result<()> {
        let config = self.config()?;
        *self.seen_on_disk.lock().unwrap_or_else(|e| e.into_inner()) =
            manifests_on_disk(&config.engine.index_dir);
        let corpus = Corpus::load(&config.corpus_dir)?;
        let engine_config = EngineConfig {
            rebuild: RebuildPolicy::Never,
            ..config.engine.clone()
        };
        let engine = Engine::open(
            &engine_config,
            &corpus,
            self.encoder.clone(),
            &crate::progress::NoProgress,
        )?;
        let snapshot = Arc::new(Snapshot {
            engine: Arc::new(engine),
            documents: Arc::new(corpus.documents()),
        });
        tracing::info!(
            version = snapshot.version(),
            reports = snapshot.documents.reports().len(),
            passages = snapshot.engine.passages().len(),
            "serving the collection"
        );
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
        Ok(())
    }

    /// Picks up a change another process made (e.g. `wenda add` beside the server):
    /// when the index manifests on disk changed since the collection was last read, reads
    /// it again and switches to it. True when it switched; an error (the change is still
    /// committing, or left the index stale) keeps the current snapshot, and the same
    /// manifests are not tried again. Does nothing while a change of this collection
    /// runs (that one switches by itself).
    pub fn refresh(&self) -> Result<bool> {
        let Some(config) = &self.config else {
            return Ok(false);
        };
        let Ok(_one) = self.changing.try_lock() else {
            return Ok(false);
        };
        let on_disk = manifests_on_disk(&config.engine.index_dir);
        if *self.seen_on_disk.lock().unwrap_or_else(|e| e.into_inner()) == on_disk {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    const A: &str = "甲报告：大模型在金融行业的应用越来越广泛，银行用它审批信贷。\n";
    const B: &str = "乙报告：政务大模型帮助群众办理业务，自动解答常见问题。\n";
    const C: &str = "丙报告：制造业用大模型检索工艺文件，节省大量工时。\n";

    /// A corpus of a.txt and b.txt with a BM25 index: (folder, config).
    fn tiny() -> (tempfile::TempDir, CollectionConfig) {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus");
        std::fs::create_dir_all(&corpus).unwrap();
        std::fs::write(corpus.join("a.txt"), A).unwrap();
        std::fs::write(corpus.join("b.txt"), B).unwrap();
        let mut catalog = String::from("# tiny\n");
        for f in ["a.txt", "b.txt"] {
            catalog.push_str(&format!(
                "\n[[report]]\nfile = \"{f}\"\ntitle = \"{f}\"\npublisher = \"p\"\nyear = 2024\n"
            ));
        }
        std::fs::write(corpus.join(CATALOG_FILE), catalog).unwrap();
        let config = CollectionConfig {
            corpus_dir: corpus,
            engine: EngineConfig {
                index_dir: dir.path().join("index"),
                rebuild: RebuildPolicy::IfNeeded,
                fusion: crate::retrieve::Fusion::default(),
                query_cache_entries: crate::retrieve::QUERY_CACHE_ENTRIES,
                store: Default::default(),
            },
            extract: ExtractOptions::default(),
        };
        Collection::open(config.clone(), None, &NoProgress).unwrap();
        (dir, config)
    }

    fn report(file: &str) -> Report {
        Report {
            file: file.into(),
            title: file.into(),
            publisher: "p".into(),
            year: 2025,
            aliases: Vec::new(),
            sha256: None,
        }
    }

    /// Opens the collection as a reader would, never building.
    fn serving(config: &CollectionConfig) -> Result<(Corpus, Engine)> {
        let corpus = Corpus::load(&config.corpus_dir)?;
        let never = EngineConfig {
            rebuild: RebuildPolicy::Never,
            ..config.engine.clone()
        };
        let engine = Engine::open(&never, &corpus, None, &NoProgress)?;
        Ok((corpus, engine))
    }

    fn sources(engine: &Engine) -> Vec<String> {
        let mut s: Vec<String> = engine
            .passages()
            .iter()
            .map(|p| p.citation.source.clone())
            .collect();
        s.dedup();
        s
    }

    /// Runs the addition of c.txt up to `commit_catalog` and leaves what a kill leaves.
    fn killed_addition(config: &CollectionConfig, commit_catalog: bool) {
        let dir = &config.corpus_dir;
        let corpus = Corpus::load(dir).unwrap();
        let text = std::fs::read_to_string(dir.join(CATALOG_FILE)).unwrap();
        let catalog = Catalog::with_report(&text, &report("c.txt")).unwrap();
        let next = corpus.changed(&catalog, Some(("c.txt", C))).unwrap();
        let staged = index::stage(
            &config.engine.index_dir,
            next.passages(),
            &next.report_labels(),
            next.fingerprint(),
            None,
            &NoProgress,
        )
        .unwrap();
        write_atomic(&dir.join(pending_name("c.txt")), C.as_bytes()).unwrap();
        if commit_catalog {
            write_atomic(&dir.join(CATALOG_FILE), catalog.as_bytes()).unwrap();
        }
        staged.abandon();
    }

    #[test]
    fn killed_before_the_catalog_is_written_the_old_collection_serves() {
        let (_dir, config) = tiny();
        let catalog = std::fs::read(config.corpus_dir.join(CATALOG_FILE)).unwrap();
        let (_, before) = serving(&config).unwrap();
        killed_addition(&config, false);
        assert_eq!(
            std::fs::read(config.corpus_dir.join(CATALOG_FILE)).unwrap(),
            catalog
        );
        let (corpus, engine) = serving(&config).unwrap();
        assert_eq!(corpus.catalog.reports.len(), 2);
        assert_eq!(engine.manifest(), before.manifest());
        assert_eq!(sources(&engine), ["a.txt", "b.txt"]);
        // The next change clears what the killed one left.
        remove_report(&config, "b.txt", None, &NoProgress).unwrap();
        assert!(!config.corpus_dir.join(pending_name("c.txt")).exists());
        assert!(
            !config
                .engine
                .index_dir
                .join(index::NEXT_MANIFEST_FILE)
                .exists()
        );
        let (_, engine) = serving(&config).unwrap();
        assert_eq!(sources(&engine), ["a.txt"]);
        let data_dirs = index::data_dir_names(&config.engine.index_dir).len();
        assert_eq!(data_dirs, 1);
    }

    #[test]
    fn killed_after_the_catalog_is_written_the_new_collection_serves() {
        let (_dir, config) = tiny();
        killed_addition(&config, true);
        // Readers take the pending text and the staged index.
        let (corpus, engine) = serving(&config).unwrap();
        assert_eq!(corpus.catalog.reports.len(), 3);
        assert_eq!(corpus.original_text("c.txt").unwrap(), C);
        assert_eq!(sources(&engine), ["a.txt", "b.txt", "c.txt"]);
        // The next change completes it.
        remove_report(&config, "a.txt", None, &NoProgress).unwrap();
        assert_eq!(
            std::fs::read_to_string(config.corpus_dir.join("c.txt")).unwrap(),
            C
        );
        assert!(!config.corpus_dir.join(pending_name("c.txt")).exists());
        let (_, engine) = serving(&config).unwrap();
        assert_eq!(sources(&engine), ["b.txt", "c.txt"]);
    }

    #[test]
    fn a_removal_killed_before_its_catalog_is_written_is_undone() {
        let (_dir, config) = tiny();
        let dir = &config.corpus_dir;
        // What remove_report does first: the text to its pending name.
        rename_durable(&dir.join("b.txt"), &dir.join(pending_name("b.txt"))).unwrap();
        let (corpus, engine) = serving(&config).unwrap();
        assert_eq!(corpus.original_text("b.txt").unwrap(), B);
        assert_eq!(sources(&engine), ["a.txt", "b.txt"]);
        let added = add_report(
            &config,
            &NewReport {
                bytes: C.repeat(10).into_bytes(),
                file_name: Some("c.txt".into()),
                name_hint: Some("c.txt".into()),
                year: Some(2025),
                ..NewReport::default()
            },
            None,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(added.source, "c.txt");
        assert_eq!(std::fs::read_to_string(dir.join("b.txt")).unwrap(), B);
        let (_, engine) = serving(&config).unwrap();
        assert_eq!(sources(&engine), ["a.txt", "b.txt", "c.txt"]);
    }

    #[test]
    fn the_title_is_the_first_short_line_that_is_not_a_running_header() {
        let text = "研究院｜行业观察\n\n2025年中国大模型行业观察\n正文\n第1页\n研究院｜行业观察\n";
        assert_eq!(
            title_line(text).as_deref(),
            Some("2025年中国大模型行业观察")
        );
        assert_eq!(title_line(&"长".repeat(80)), None);
    }

    #[test]
    fn years_are_found_in_titles_and_openings() {
        assert_eq!(year_in("2025年中国大模型行业观察"), Some(2025));
        assert_eq!(year_in("第3页 共120页 发布于2024年3月"), Some(2024));
        assert_eq!(year_in("report 2023 v2, 12345678"), Some(2023));
        assert_eq!(year_in("价格为1200元，20245份"), None);
        assert_eq!(year_in("截至2023年底和2024年"), Some(2023));
    }

    #[test]
    fn stored_names_are_plain_and_never_taken() {
        let prepared = |title: &str, hint: Option<&str>| PreparedReport {
            format: Format::Text,
            text: String::new(),
            report: Report {
                file: String::new(),
                title: title.into(),
                publisher: String::new(),
                year: 2025,
                aliases: Vec::new(),
                sha256: None,
            },
            name_hint: hint.map(str::to_string),
        };
        let sha = "0123456789abcdef".repeat(4);
        let free = |_: &str| false;
        assert_eq!(
            stored_name(&prepared("2025年报告", None), &sha, &free),
            "report-01234567.txt"
        );
        assert_eq!(
            stored_name(&prepared("IDC China AI 2025 / Q1", None), &sha, &free),
            "idc-china-ai-2025-q1-01234567.txt"
        );
        assert_eq!(
            stored_name(&prepared("甲", Some("IDC_2025 report.PDF")), &sha, &free),
            "idc-2025-report.txt"
        );
        let taken = |n: &str| n == "idc-2025-report.txt";
        assert_eq!(
            stored_name(&prepared("甲", Some("IDC_2025 report.PDF")), &sha, &taken),
            "idc-2025-report-01234567.txt"
        );
        for hostile in ["../../etc/passwd", "..", ".hidden", "a/b\\c", "\u{0}"] {
            let name = stored_name(&prepared(hostile, Some(hostile)), &sha, &free);
            assert!(
                is_plain_file_name(&name) && name.ends_with(".txt"),
                "{name}"
            );
            assert!(!name.contains(".."), "{name}");
        }
    }
}
