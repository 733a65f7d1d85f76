//! Shared pieces of the integration tests: the real corpus, a BM25 engine,
//! a server on 127.0.0.1 and a tiny HTTP client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wenda::corpus::Corpus;
use wenda::embed::Encoder;
use wenda::generate::LlmClient;
use wenda::progress::NoProgress;
use wenda::retrieve::{Engine, EngineConfig, Fusion, RebuildPolicy};
use wenda::server::{self, AppState};

/// The real embedding model from the crate's `models/` folder (fetched when missing), on
/// the CPU with the default kernels.
pub fn real_embedder() -> wenda::embed::Embedder {
    use wenda::embed::{DeviceChoice, Embedder, FetchOptions, ModelProfile, ensure_model};
    let profile = ModelProfile::default();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let files = ensure_model(&profile, &models, &FetchOptions::default(), &NoProgress)
        .expect("model available");
    Embedder::load(&files, &profile, DeviceChoice::Cpu.into()).expect("model loads")
}

/// The crate's own corpus folder.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The crate's own corpus, read.
pub fn corpus() -> Corpus {
    Corpus::load(&corpus_dir()).expect("corpus loads")
}

/// An engine over the real corpus with its index in `index_dir`.
pub fn engine(index_dir: PathBuf, encoder: Option<Arc<dyn Encoder>>) -> Engine {
    let config = EngineConfig {
        index_dir,
        rebuild: RebuildPolicy::IfNeeded,
        fusion: Fusion::default(),
        query_cache_entries: wenda::retrieve::QUERY_CACHE_ENTRIES,
        store: Default::default(),
    };
    Engine::open(&config, &corpus(), encoder, &NoProgress).expect("engine opens")
}

/// A running server on a free port of 127.0.0.1; stops when dropped.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(engine: Arc<Engine>) -> TestServer {
        Self::start_with(engine, None)
    }

    /// A server whose answers are written by `llm`.
    pub fn start_with(engine: Arc<Engine>, llm: Option<LlmClient>) -> TestServer {
        let documents = Arc::new(corpus().documents());
        Self::start_state(AppState::new(engine, documents, llm))
    }

    /// A server admitting only `capacity` searches or answers at once.
    pub fn start_with_capacity(
        engine: Arc<Engine>,
        llm: Option<LlmClient>,
        capacity: usize,
    ) -> TestServer {
        let documents = Arc::new(corpus().documents());
        Self::start_state(AppState::with_capacity(engine, documents, llm, capacity))
    }

    /// A server with explicit connection and request limits.
    pub fn start_with_options(
        engine: Arc<Engine>,
        llm: Option<LlmClient>,
        options: server::ServeOptions,
    ) -> TestServer {
        let documents = Arc::new(corpus().documents());
        Self::start_options(AppState::new(engine, documents, llm), options)
    }

    fn start_state(state: AppState) -> TestServer {
        Self::start_options(state, server::ServeOptions::default())
    }

    fn start_options(state: AppState, options: server::ServeOptions) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                server::serve_with(
                    listener,
                    state,
                    async {
                        let _ = stop_rx.await;
                    },
                    options,
                )
                .await
                .unwrap();
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server starts");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Sends one request; returns status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        http(self.addr, method, path, content_type, body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None, b"")
    }

    pub fn post_json(&self, path: &str, json: &str) -> (u16, String) {
        self.request("POST", path, Some("application/json"), json.as_bytes())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Minimal HTTP/1.1 client: one request per connection; status and body.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = http_with_head(addr, method, path, content_type, body);
    (status, body)
}

/// The same, also returning the response head (status line and headers).
pub fn http_with_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, String::from_utf8_lossy(&payload).into_owned())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// A deterministic stand-in for the embedding model: each text becomes a normalized
/// bag of hashed character bigrams. Similar wording gives similar vectors, so dense
/// retrieval and fusion can be tested in plain `cargo test` without the real model.
pub struct BigramEncoder;

/// Dimension of [`BigramEncoder`] vectors.
pub const BIGRAM_DIM: usize = 256;

impl BigramEncoder {
    fn vector(text: &str) -> Vec<f32> {
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut v = vec![0f32; BIGRAM_DIM];
        for w in chars.windows(2) {
            // FNV-1a over the two code points: stable across runs and platforms.
            let mut h: u32 = 0x811c_9dc5;
            for c in w {
                h = (h ^ *c as u32).wrapping_mul(0x0100_0193);
            }
            v[h as usize % BIGRAM_DIM] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Encoder for BigramEncoder {
    fn model_id(&self) -> &str {
        "test/bigram-hash"
    }
    fn dim(&self) -> usize {
        BIGRAM_DIM
    }
    fn encode_query(&self, query: &str) -> wenda::Result<Vec<f32>> {
        Ok(Self::vector(query))
    }
    fn encode_passages(
        &self,
        texts: &[&str],
        progress: &dyn wenda::progress::Progress,
    ) -> wenda::Result<Vec<Vec<f32>>> {
        progress.position(texts.len() as u64);
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}

/// The crate's PDF fixture folder (tests/fixtures/pdf).
pub fn pdf_fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf")
}

/// The sentences the PDF fixture must yield (tests/fixtures/pdf/sentences.txt).
pub fn fixture_sentences() -> Vec<String> {
    std::fs::read_to_string(pdf_fixture_dir().join("sentences.txt"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A new report as Markdown text, made of the fixture's sentences: a title line, a
/// heading and one sentence a paragraph (no report of the corpus has any of them).
pub fn new_report_markdown() -> String {
    let mut text = String::from("2025年中国大模型行业观察（测试样本）\n\n# 一、主要发现\n\n");
    for s in fixture_sentences() {
        text.push_str(&s);
        text.push_str("\n\n");
    }
    text
}

/// A copy of the crate's corpus in a temporary folder, with an empty index folder beside
/// it: (the temporary folder, corpus folder, index folder).
pub fn scratch_collection() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txt") || name == "catalog.toml" {
            std::fs::copy(entry.path(), corpus.join(&name)).unwrap();
        }
    }
    let index = dir.path().join("index");
    (dir, corpus, index)
}

/// The files of a folder, sorted (for before/after comparisons).
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One HTTP/1.1 request with extra headers (`Connection: close`); status, head, body.
/// A server that answers before it has read the whole body (a 413) is fine: the body is
/// written from another thread and write errors are ignored.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let _ = sending.join();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, String::from_utf8_lossy(&payload).into_owned())
}

/// A multipart/form-data body of `parts` (field name, file name, bytes) and its
/// Content-Type header value.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "wendaTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The `wenda` binary serving a collection on a free port of 127.0.0.1; killed when
/// dropped.
pub struct LiveServer {
    pub addr: std::net::SocketAddr,
    child: std::process::Child,
}

impl LiveServer {
    /// Starts `wenda serve --port 0` over `corpus` and `index` with `args` added and
    /// `env` set, and waits until it listens.
    pub fn start(
        corpus: &std::path::Path,
        index: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> LiveServer {
        Self::start_with_stderr(corpus, index, args, env, std::process::Stdio::null())
    }

    /// [`LiveServer::start`] with the server's stderr (its log) going to `stderr`.
    pub fn start_with_stderr(
        corpus: &std::path::Path,
        index: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: std::process::Stdio,
    ) -> LiveServer {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wenda"));
        command
            .arg("--corpus")
            .arg(corpus)
            .arg("--index")
            .arg(index)
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("WENDA_ADMIN_TOKEN")
            .env_remove("WENDA_LOG")
            .env_remove("WENDA_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("wenda serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server prints its address");
        LiveServer {
            addr: addr.parse().expect("an address"),
            child,
        }
    }

    /// A request with extra headers; status, head, body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String, String) {
        http_request(self.addr, method, path, headers, body)
    }

    /// GET; status and body parsed as JSON.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.request("GET", path, &[], Vec::new());
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as is (any bytes, however malformed or large) on a new connection and
/// returns status, head and body of the reply. Writing may fail once the server has
/// answered and closed (it refuses a head before reading all of it); the reply is read
/// all the same.
pub fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A reset after the reply (unread request bytes) ends the reply.
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no reply: {e}"),
        }
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| raw.len() >= split + 4 + n) {
                break;
            }
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = String::from_utf8_lossy(&raw[split + 4..]).into_owned();
    (status, head, body)
}

/// Checks `value` against `schema`, a JSON Schema inside the OpenAPI document `spec`
/// (for `$ref`s to `#/components/schemas/…`): the keywords the document uses (`type`,
/// `enum`, `required`, `properties`, `items`, `oneOf`, `anyOf`, bounds, lengths,
/// `pattern`). Returns each violation with its place in `value`.
pub fn schema_errors(
    spec: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
) -> Vec<String> {
    let mut errors = Vec::new();
    check_schema(spec, schema, value, "$", &mut errors);
    errors
}

fn check_schema(
    spec: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    let mut fail = |message: String| errors.push(format!("{at}: {message}"));
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        let target = &spec["components"]["schemas"][name];
        assert!(target.is_object(), "dangling $ref {reference}");
        check_schema(spec, target, value, at, errors);
        return;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type {other}"),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            fail(format!("{value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail(format!("{value} is not one of {allowed:?}"));
    }
    for (keyword, pass) in [
        ("oneOf", &(|n: usize| n == 1) as &dyn Fn(usize) -> bool),
        ("anyOf", &|n: usize| n >= 1),
    ] {
        if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
            let fitting = branches
                .iter()
                .filter(|b| schema_errors(spec, b, value).is_empty())
                .count();
            if !pass(fitting) {
                fail(format!("{value} fits {fitting} branches of {keyword}"));
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            fail(format!("{n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            fail(format!("{n} > maximum {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            fail(format!("{chars} characters < minLength {min}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            fail(format!("{chars} characters > maxLength {max}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).unwrap().is_match(s)
        {
            fail(format!("{s:?} does not match {pattern}"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && items.len() as u64 > max
        {
            fail(format!("{} items > maxItems {max}", items.len()));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_schema(spec, item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                errors.push(format!("{at}: required field {name} is missing"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, field) in object {
                match properties.get(name) {
                    Some(field_schema) => {
                        check_schema(spec, field_schema, field, &format!("{at}.{name}"), errors)
                    }
                    // Our responses carry no field the document does not name.
                    None => errors.push(format!("{at}: field {name} is not in the schema")),
                }
            }
        }
    }
}
