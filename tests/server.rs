//! The real HTTP server on 127.0.0.1 (BM25 engine over the real corpus):
//! every endpoint, and every kind of bad input gets a 4xx JSON error.

mod common;

use std::sync::{Arc, OnceLock};

use common::TestServer;
use serde_json::{Value, json};
use wenda::retrieve::Engine;

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<(tempfile::TempDir, Arc<Engine>)> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let engine = common::engine(dir.path().to_path_buf(), None);
            (dir, Arc::new(engine))
        })
        .1
        .clone()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn search_get_and_post_return_cited_passages() {
    let server = TestServer::start(engine());
    let (status, body) =
        server.get("/api/search?q=%E7%99%BE%E4%B8%BD%E6%97%B6%E5%B0%9A&k=3&mode=bm25");
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["mode"], "bm25");
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let hit = &v["results"][0];
    assert!(hit["text"].as_str().unwrap().contains("百丽"));
    assert!(hit["snippet"].as_str().unwrap().contains("<b>"));
    assert_eq!(
        hit["citation"]["source"],
        "leadleo-2023-llm-application-report.txt"
    );
    for stage in ["analysis_ms", "bm25_ms", "fusion_ms", "snippets_ms"] {
        assert!(
            v["timings"][stage].is_number(),
            "{stage} missing: {}",
            v["timings"]
        );
    }

    let (status, body) = server.post_json(
        "/api/search",
        r#"{"query": "政务大模型", "k": 5, "source": "qianzhan-2024-llm-scenarios-survey.txt"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    // Without the model the default mode is BM25.
    assert_eq!(v["mode"], "bm25");
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(
        results
            .iter()
            .all(|r| r["citation"]["source"] == "qianzhan-2024-llm-scenarios-survey.txt")
    );
}

#[test]
fn ask_answers_with_markers_and_sources_or_says_it_found_nothing() {
    let server = TestServer::start(engine());
    let (status, body) = server.post_json(
        "/api/ask",
        r#"{"question": "百丽时尚有多少家直营门店？", "k": 5}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["found"], true);
    assert!(v["confidence"].as_f64().unwrap() >= 0.5, "{body}");
    assert!(v["suggestions"].as_array().unwrap().is_empty(), "{body}");
    let answer = v["answer"].as_str().unwrap();
    assert!(answer.contains("9000"), "{answer}");
    assert!(answer.contains("[1]"), "{answer}");
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources[0]["marker"], 1);
    assert_eq!(
        sources[0]["citation"]["source"],
        "leadleo-2023-llm-application-report.txt"
    );
    // Every marker in the answer has a source, and no sentence repeats.
    for (i, _) in sources.iter().enumerate() {
        assert!(answer.contains(&format!("[{}]", i + 1)));
    }
    let sentences: Vec<&str> = answer
        .split(['。', '！', '？'])
        .filter(|s| s.len() > 12)
        .collect();
    let unique: std::collections::HashSet<&str> = sentences.iter().copied().collect();
    assert_eq!(sentences.len(), unique.len(), "{answer}");

    let (status, body) =
        server.post_json("/api/ask", r#"{"question": "足球世界杯冠军是哪支球队？"}"#);
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["found"], false, "{body}");
    assert!(v["sources"].as_array().unwrap().is_empty());
    // A refusal still offers the closest passages, with citations to open.
    assert!(v["confidence"].as_f64().unwrap() < 0.5, "{body}");
    let suggestions = v["suggestions"].as_array().unwrap();
    assert!(!suggestions.is_empty() && suggestions.len() <= 3, "{body}");
    assert!(
        suggestions[0]["citation"]["source"].as_str().is_some(),
        "{body}"
    );
}

#[test]
fn documents_list_and_spans_open_the_cited_text() {
    let server = TestServer::start(engine());
    let (status, body) = server.get("/api/documents");
    assert_eq!(status, 200);
    let docs = json(&body);
    assert_eq!(docs["documents"].as_array().unwrap().len(), 5);

    let engine = engine();
    let hit = &engine.passages()[10];
    let c = &hit.citation;
    let (status, body) = server.get(&format!(
        "/api/documents/{}?start={}&end={}",
        c.source, c.char_start, c.char_end
    ));
    assert_eq!(status, 200, "{body}");
    let span = json(&body);
    let original = std::fs::read_to_string(common::corpus_dir().join(&c.source)).unwrap();
    let expected: String = original
        .chars()
        .skip(c.char_start)
        .take(c.char_end - c.char_start)
        .collect();
    assert_eq!(span["text"], expected);
    assert_eq!(span["line_start"], c.line_start);
    assert_eq!(span["title"], c.title);

    for path in [
        "/api/documents/..%2FCargo.toml",
        "/api/documents/catalog.toml",
        "/api/documents/%2Fetc%2Fpasswd",
        "/api/documents/nope.txt",
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(json(&body)["code"], "not_found");
    }
    let (status, body) = server.get(&format!("/api/documents/{}?start=10&end=5", c.source));
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.get(&format!("/api/documents/{}?start=0&end=99999999", c.source));
    assert_eq!(status, 400);
}

#[test]
fn health_and_page_are_served() {
    let server = TestServer::start(engine());
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ready");
    for (path, marker) in [("/", "<html"), ("/app.js", "fetch("), ("/style.css", "{")] {
        let (status, body) = server.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(marker), "{path}: {body:.200}");
    }
}

/// Percent-encodes every byte of `text` (as a client would for non-ASCII text).
fn encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The schema the document gives for `status` replies of `method path`.
fn reply_schema<'a>(spec: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let operation = &spec["paths"][path][method.to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let reply = &operation["responses"][status.to_string()];
    assert!(
        reply.is_object(),
        "{method} {path} does not document {status}"
    );
    &reply["content"]["application/json"]["schema"]
}

/// Asserts that a reply fits what the document says of it.
fn assert_fits(spec: &Value, method: &str, path: &str, status: u16, body: &str) {
    let schema = reply_schema(spec, method, path, status);
    let errors = common::schema_errors(spec, schema, &json(body));
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not fit its schema: {errors:?}\n{body:.300}"
    );
}

#[test]
fn the_openapi_document_lists_the_routes_served_and_the_replies_fit_it() {
    let server = TestServer::start(engine());
    let (status, body) = server.get("/api/openapi.json");
    assert_eq!(status, 200);
    let spec = json(&body);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );

    // The operations it documents are those the router serves, and no method more.
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in methods {
            if item[method.to_ascii_lowercase()].is_object() {
                documented.push(format!("{method} {path}"));
            }
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "DELETE /api/documents/{source}",
            "GET /api/documents",
            "GET /api/documents/{source}",
            "GET /api/jobs/{id}",
            "GET /api/search",
            "GET /healthz",
            "POST /api/ask",
            "POST /api/documents",
            "POST /api/search",
        ]
    );
    let report = engine().passages()[0].citation.source.clone();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{source}", &report);
        for method in methods {
            let (status, reply) = server.request(method, &concrete, None, b"");
            if item[method.to_ascii_lowercase()].is_object() {
                // Served: whatever it says of an empty request (an unknown job is a
                // 404 of its own), it is not "no such route".
                assert!(
                    !(status == 404 && reply.contains("no such route")) && status != 405,
                    "{method} {path} is documented but not served: {status} {reply}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {reply}"
                );
                let any_documented = item.as_object().unwrap().keys().next().unwrap();
                assert_fits(&spec, any_documented, path, 405, &reply);
            }
        }
    }

    // Every operation documents the replies that any request can get.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["405", "414", "431", "503"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }

    // Real replies of every operation, good and bad, fit the document.
    let answerable =
        r#"{"question": "百丽时尚有多少家直营门店？", "k": 5, "source": null, "mode": null}"#;
    let search_path = format!("/api/search?q={}&k=3&mode=bm25", encode("百丽时尚"));
    let filtered = format!("/api/search?q=ai&k=5.0&source={report}");
    let too_long = format!(r#"{{"query": "{}"}}"#, "a".repeat(200_000));
    let span = format!("/api/documents/{report}?start=10&end=50");
    let reversed = format!("/api/documents/{report}?start=5&end=1");
    let long_uri = format!("/api/search?q={}", "a".repeat(40_000));
    // (method, documented path, requested path, content type, body, status)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, u16);
    let cases: Vec<Case> = vec![
        ("GET", "/api/search", &search_path, None, "", 200),
        ("GET", "/api/search", &filtered, None, "", 200),
        ("GET", "/api/search", "/api/search?q=%20", None, "", 400),
        (
            "GET",
            "/api/search",
            "/api/search?q=ai&mode=dense",
            None,
            "",
            400,
        ),
        (
            "GET",
            "/api/search",
            "/api/search?q=ai&k=1.5",
            None,
            "",
            400,
        ),
        ("GET", "/api/search", &long_uri, None, "", 414),
        (
            "POST",
            "/api/search",
            "/api/search",
            Some("application/json"),
            r#"{"query": "政务大模型", "k": 5.0, "source": null, "mode": null}"#,
            200,
        ),
        (
            "POST",
            "/api/search",
            "/api/search",
            Some("application/json"),
            r#"{"query": "ai", "k": "2"}"#,
            422,
        ),
        (
            "POST",
            "/api/search",
            "/api/search",
            Some("text/plain"),
            r#"{"query": "ai"}"#,
            415,
        ),
        (
            "POST",
            "/api/search",
            "/api/search",
            Some("application/json"),
            &too_long,
            413,
        ),
        (
            "POST",
            "/api/search",
            "/api/search",
            Some("application/json"),
            "{",
            400,
        ),
        (
            "POST",
            "/api/ask",
            "/api/ask",
            Some("application/json"),
            answerable,
            200,
        ),
        (
            "POST",
            "/api/ask",
            "/api/ask",
            Some("application/json"),
            r#"{"question": "足球世界杯冠军是哪支球队？"}"#,
            200,
        ),
        (
            "POST",
            "/api/ask",
            "/api/ask",
            Some("application/json"),
            r#"{"question": "？"}"#,
            400,
        ),
        ("GET", "/api/documents", "/api/documents", None, "", 200),
        ("GET", "/api/documents/{source}", &span, None, "", 200),
        ("GET", "/api/documents/{source}", &reversed, None, "", 400),
        (
            "GET",
            "/api/documents/{source}",
            "/api/documents/nope.txt",
            None,
            "",
            404,
        ),
        ("GET", "/healthz", "/healthz", None, "", 200),
    ];
    for (method, documented, path, content_type, body, expected) in cases {
        let (status, reply) = server.request(method, path, content_type, body.as_bytes());
        assert_eq!(status, expected, "{method} {path:.80}: {reply:.300}");
        assert_fits(&spec, method, documented, status, &reply);
    }

    // The constraints it states are the ones the server enforces.
    let schemas = &spec["components"]["schemas"];
    let q = spec["paths"]["/api/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "q")
        .unwrap();
    assert_eq!(q["required"], true);
    for text in [
        &q["schema"],
        &schemas["SearchBody"]["properties"]["query"],
        &schemas["AskBody"]["properties"]["question"],
    ] {
        assert_eq!(text["minLength"], 1, "{text}");
        assert_eq!(
            text["maxLength"],
            wenda::retrieve::MAX_QUERY_CHARS,
            "{text}"
        );
        assert_eq!(
            text["pattern"],
            wenda::analysis::SEARCHABLE_PATTERN,
            "{text}"
        );
    }
    let text_schema = json(&q["schema"].to_string());
    for sample in [
        "ai",
        "政务",
        "二〇二四",
        "Жизнь",
        "ＡＩ",
        "？！",
        "_",
        " ",
        "①",
        "Ⓐ",
        "\u{345}",
        "𠀀",
        "a？",
    ] {
        let fits = common::schema_errors(&spec, &text_schema, &json!(sample)).is_empty();
        let (status, reply) = server.get(&format!("/api/search?mode=bm25&q={}", encode(sample)));
        assert_eq!(
            fits,
            status == 200,
            "{sample:?}: the document says {fits}, the server {status} {reply}"
        );
    }
    assert_eq!(schemas["Mode"]["enum"], json!(["bm25", "dense", "hybrid"]));
    let reports: Vec<Value> = json(&server.get("/api/documents").1)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].clone())
        .collect();
    assert_eq!(schemas["ReportName"]["enum"], json!(reports));
    // What a result's text is, and which slice of the file the citation names.
    let hit_text = schemas["Hit"]["properties"]["text"]["description"]
        .as_str()
        .unwrap();
    assert!(
        hit_text.contains("cleaned") && hit_text.contains("char_start..citation.char_end"),
        "{hit_text}"
    );
}

#[test]
fn oversized_request_heads_get_json_414_and_431() {
    let server = TestServer::start(engine());
    let addr = server.addr;
    let request = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n")
            .into_bytes()
    };
    let assert_json = |(status, head, body): (u16, String, String), expected: u16, code: &str| {
        assert_eq!(status, expected, "{head}\n{body:.300}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v = json(&body);
        assert_eq!(v["code"], code, "{body}");
        assert!(v["error"].as_str().is_some_and(|e| e.len() > 20), "{body}");
    };
    // A 40 KB request target and 100 KB of header fields: the router's own limits.
    let long = format!("/api/search?q={}", "a".repeat(40_000));
    assert_json(common::raw(addr, &request(&long, "")), 414, "uri_too_long");
    let big_header = format!("X-Padding: {}\r\n", "b".repeat(100_000));
    assert_json(
        common::raw(addr, &request("/healthz", &big_header)),
        431,
        "headers_too_large",
    );
    // Past hyper's own limits (a 70 KB target, a 300 KB head, 120 header fields) and
    // a request hyper cannot parse: its replies are made JSON too.
    let longer = format!("/api/search?q={}", "a".repeat(70_000));
    assert_json(
        common::raw(addr, &request(&longer, "")),
        414,
        "uri_too_long",
    );
    let huge_header = format!("X-Padding: {}\r\n", "b".repeat(300_000));
    assert_json(
        common::raw(addr, &request("/healthz", &huge_header)),
        431,
        "headers_too_large",
    );
    let many: String = (0..120).map(|i| format!("X-Field-{i}: 1\r\n")).collect();
    assert_json(
        common::raw(addr, &request("/healthz", &many)),
        431,
        "headers_too_large",
    );
    assert_json(
        common::raw(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        ),
        400,
        "bad_request",
    );
    // Every query the document allows fits the limit: 2,000 characters of 4 bytes
    // (24 KB percent-encoded) reach the engine, which answers them (here: nothing to
    // search in those characters), and 2,000 Chinese characters are searched.
    let widest = format!("/api/search?mode=bm25&q={}", encode(&"𠀀".repeat(2000)));
    assert!(widest.len() > 24_000);
    let (status, body) = server.get(&widest);
    assert_eq!(
        (status, json(&body)["code"].clone()),
        (400, json!("no_searchable_text")),
        "{body}"
    );
    let chinese = format!(
        "/api/search?mode=bm25&q={}",
        encode(&"大模型应用".repeat(400))
    );
    let (status, body) = server.get(&chinese);
    assert_eq!(status, 200, "{body:.300}");
    // The connection that asked within the limits is served normally afterwards.
    let (status, _) = server.get("/healthz");
    assert_eq!(status, 200);
}

#[test]
fn a_request_past_its_time_limit_gets_a_json_503() {
    let llm = FakeLlm::start(Some("慢[1]"), std::time::Duration::from_secs(3));
    let options = wenda::server::ServeOptions {
        request_timeout: std::time::Duration::from_millis(400),
        ..Default::default()
    };
    let server = TestServer::start_with_options(engine(), Some(llm.client()), options);
    let started = std::time::Instant::now();
    let (status, body) =
        server.post_json("/api/ask", r#"{"question": "百丽时尚有多少家直营门店？"}"#);
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(json(&body)["code"], "timeout", "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("0.4 s"),
        "{body}"
    );
}

#[test]
fn every_bad_input_gets_a_4xx_json_error() {
    let server = TestServer::start(engine());
    let long = "大".repeat(2001);
    let long_json = format!(r#"{{"query": "{long}"}}"#);
    // (method, path, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/api/search?q=",
            None,
            String::new(),
            400,
            "empty_query",
        ),
        (
            "GET",
            "/api/search?q=%20%20%20",
            None,
            String::new(),
            400,
            "empty_query",
        ),
        (
            "GET",
            "/api/search",
            None,
            String::new(),
            400,
            "empty_query",
        ),
        (
            "GET",
            "/api/search?q=%EF%BC%9F%EF%BC%81",
            None,
            String::new(),
            400,
            "no_searchable_text",
        ),
        (
            "GET",
            "/api/search?q=ai&k=0",
            None,
            String::new(),
            400,
            "bad_k",
        ),
        (
            "GET",
            "/api/search?q=ai&k=101",
            None,
            String::new(),
            400,
            "bad_k",
        ),
        (
            "GET",
            "/api/search?q=ai&k=abc",
            None,
            String::new(),
            400,
            "invalid_parameters",
        ),
        (
            "GET",
            "/api/search?q=ai&mode=fuzzy",
            None,
            String::new(),
            400,
            "unknown_mode",
        ),
        (
            "GET",
            "/api/search?q=ai&mode=dense",
            None,
            String::new(),
            400,
            "mode_unavailable",
        ),
        (
            "GET",
            "/api/search?q=ai&source=..%2F..%2Fetc%2Fpasswd",
            None,
            String::new(),
            400,
            "unknown_source",
        ),
        (
            "POST",
            "/api/search",
            Some("application/json"),
            long_json,
            400,
            "query_too_long",
        ),
        (
            "POST",
            "/api/search",
            Some("application/json"),
            "{\"query\": ".into(),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/api/search",
            Some("application/json"),
            "[1, 2]".into(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/search",
            Some("application/json"),
            r#"{"query": 5}"#.into(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/search",
            Some("text/plain"),
            r#"{"query": "ai"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/ask",
            None,
            r#"{"question": "ai"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/ask",
            Some("application/json"),
            r#"{"question": ""}"#.into(),
            400,
            "empty_query",
        ),
        (
            "POST",
            "/api/ask",
            Some("application/json"),
            r#"{"question": "ai", "k": 1000}"#.into(),
            400,
            "bad_k",
        ),
        (
            "POST",
            "/api/ask",
            Some("application/json"),
            "not json".into(),
            400,
            "malformed_json",
        ),
        (
            "GET",
            "/api/nothing-here",
            None,
            String::new(),
            404,
            "not_found",
        ),
        (
            "DELETE",
            "/api/search",
            None,
            String::new(),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/documents/%FF.txt",
            None,
            String::new(),
            400,
            "invalid_parameters",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let (got, reply) = server.request(method, path, ct, body.as_bytes());
        assert_eq!(got, status, "{method} {path} {body:.40}: {reply}");
        let v = json(&reply);
        assert_eq!(v["code"], code, "{method} {path}: {reply}");
        assert!(v["error"].as_str().is_some_and(|e| e.len() > 10), "{reply}");
        // Messages speak of fields and JSON, not of Rust types.
        let message = v["error"].as_str().unwrap();
        for rust in ["struct ", "usize", "SearchParams", "AskParams"] {
            assert!(!message.contains(rust), "{method} {path}: {message}");
        }
    }
    // A body over the limit is refused before it is read as JSON.
    let huge = format!(r#"{{"query": "{}"}}"#, "a".repeat(200_000));
    let (status, reply) = server.post_json("/api/search", &huge);
    assert_eq!(status, 413, "{reply}");
}

/// An OpenAI-compatible chat-completions endpoint for tests: answers every request
/// with `reply` (or fails with 500, or answers after `delay`), counting the requests
/// and keeping the last body.
struct FakeLlm {
    addr: std::net::SocketAddr,
    calls: Arc<std::sync::atomic::AtomicUsize>,
    last_body: Arc<std::sync::Mutex<String>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeLlm {
    fn start(reply: Option<&str>, delay: std::time::Duration) -> FakeLlm {
        use axum::http::StatusCode;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let last_body = Arc::new(std::sync::Mutex::new(String::new()));
        let (c, b) = (calls.clone(), last_body.clone());
        let reply = reply.map(str::to_string);
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |body: String| {
                let (c, b, reply) = (c.clone(), b.clone(), reply.clone());
                async move {
                    c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    *b.lock().unwrap() = body;
                    tokio::time::sleep(delay).await;
                    match reply {
                        Some(text) => (
                            StatusCode::OK,
                            serde_json::json!({"choices": [{"message": {"role": "assistant", "content": text}}]})
                                .to_string(),
                        ),
                        None => (StatusCode::INTERNAL_SERVER_ERROR, "overloaded".to_string()),
                    }
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLlm {
            addr,
            calls,
            last_body,
            _runtime: runtime,
        }
    }

    fn client(&self) -> wenda::generate::LlmClient {
        wenda::generate::LlmClient::new(
            format!("http://{}/v1/chat/completions", self.addr),
            "test-model",
        )
        .with_timeout(std::time::Duration::from_secs(2))
    }

    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn ask_uses_the_language_model_and_falls_back_to_extractive_answers() {
    let question = r#"{"question": "百丽时尚有多少家直营门店？", "k": 5}"#;
    let fast = std::time::Duration::ZERO;

    // The model's markers are checked and renumbered by first use.
    let llm = FakeLlm::start(Some("百丽时尚在国内拥有约9000家直营门店[2]。见[7]。"), fast);
    let server = TestServer::start_with(engine(), Some(llm.client()));
    let (status, body) = server.post_json("/api/ask", question);
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["generated_by"], "llm", "{body}");
    assert_eq!(v["answer"], "百丽时尚在国内拥有约9000家直营门店[1]。见。");
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["marker"], 1);
    // The model saw the question and the numbered passages, one of them the cited one.
    let sent: Value = json(&llm.last_body.lock().unwrap());
    assert_eq!(sent["model"], "test-model");
    let user = sent["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("百丽时尚有多少家直营门店") && user.contains("[2] "),
        "{user}"
    );
    let cited = sources[0]["text"].as_str().unwrap();
    assert!(
        user.contains(cited.trim()),
        "the cited passage was not sent"
    );

    // A question the reports do not answer never reaches the model.
    let calls = llm.calls();
    let (_, body) = server.post_json("/api/ask", r#"{"question": "足球世界杯冠军是哪支球队？"}"#);
    assert_eq!(json(&body)["found"], false, "{body}");
    assert_eq!(llm.calls(), calls);
    drop(server);

    // An error, a reply that cites nothing, or a timeout: the extractive answer.
    for (reply, delay) in [
        (None, fast),
        (Some("资料中没有相关信息。"), fast),
        (Some("太迟了[1]"), std::time::Duration::from_secs(4)),
    ] {
        let llm = FakeLlm::start(reply, delay);
        let server = TestServer::start_with(engine(), Some(llm.client()));
        let (status, body) = server.post_json("/api/ask", question);
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["generated_by"], "extractive", "{reply:?}: {body}");
        assert!(v["answer"].as_str().unwrap().contains("9000"), "{body}");
        assert_eq!(llm.calls(), 1);
    }
}

#[test]
fn past_its_capacity_the_server_answers_503_with_retry_after_at_once() {
    // One request at a time; an answer held up by a slow language model fills it.
    let llm = FakeLlm::start(Some("慢[1]"), std::time::Duration::from_millis(1500));
    let server = TestServer::start_with_capacity(engine(), Some(llm.client()), 1);
    let addr = server.addr;
    let slow = std::thread::spawn(move || {
        common::http(
            addr,
            "POST",
            "/api/ask",
            Some("application/json"),
            r#"{"question": "百丽时尚有多少家直营门店？"}"#.as_bytes(),
        )
    });
    while llm.calls() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    let (status, head, body) = common::http_with_head(
        addr,
        "GET",
        "/api/search?q=%E5%A4%A7%E6%A8%A1%E5%9E%8B",
        None,
        b"",
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "it waited"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(json(&body)["code"], "overloaded", "{body}");
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    // Capacity is back once the answer is done.
    let (status, body) = server.get("/api/search?q=%E5%A4%A7%E6%A8%A1%E5%9E%8B");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn half_sent_requests_are_cut_off_and_do_not_hold_up_shutdown() {
    use std::io::{Read, Write};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state =
        wenda::server::AppState::new(engine(), Arc::new(common::corpus().documents()), None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = wenda::server::ServeOptions {
        header_read_timeout: std::time::Duration::from_millis(500),
        shutdown_grace: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let server = runtime.spawn(wenda::server::serve_with(
        listener,
        state,
        async {
            let _ = stop_rx.await;
        },
        options,
    ));
    // A slowloris client: half a request head, then silence.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the half-sent request was held for {:?}",
        started.elapsed()
    );
    // An idle connection does not keep the server from stopping.
    let _idle = std::net::TcpStream::connect(addr).unwrap();
    let (status, _) = common::http(addr, "GET", "/healthz", None, b"");
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    stop_tx.send(()).unwrap();
    runtime.block_on(server).unwrap().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn invalid_utf8_in_a_query_string_and_huge_offsets_are_refused() {
    let server = TestServer::start(engine());
    let (status, body) = server.get("/api/search?q=AI%FF&mode=bm25");
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["code"], "invalid_parameters", "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("UTF-8"),
        "{body}"
    );
    let (status, _) = server.get("/api/search?q=AI%E5%A4%A7&mode=bm25");
    assert_eq!(status, 200);
    let source = engine().passages()[0].citation.source.clone();
    for query in [
        "start=18446744073709551615",
        "start=18446744073709551614&end=18446744073709551615",
        "start=0&end=18446744073709551615",
    ] {
        let (status, body) = server.get(&format!("/api/documents/{source}?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(json(&body)["code"], "bad_span", "{body}");
    }
}
