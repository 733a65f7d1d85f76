//! Reports in and out through the API of a live server: the `wenda` binary serving a copy
//! of the corpus (BM25 only) on 127.0.0.1, POST and DELETE /api/documents as jobs, the
//! administrator token, and every refused upload answered with 4xx JSON.

mod common;

use std::time::{Duration, Instant};

use common::{LiveServer, listing, multipart, new_report_markdown, scratch_collection};
use serde_json::Value;

const TOKEN: &str = "s3cret-token";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Posts a report form with the right token; status and JSON body.
fn upload(server: &LiveServer, parts: &[(&str, Option<&str>, &[u8])]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let auth = bearer(TOKEN);
    let (status, _, reply) = server.request(
        "POST",
        "/api/documents",
        &[("Content-Type", &content_type), ("Authorization", &auth)],
        body,
    );
    (status, json(&reply))
}

/// Waits for a job to end and returns its final status.
fn finished(server: &LiveServer, job: &Value) -> Value {
    let id = job["id"].as_str().expect("a job id");
    let started = Instant::now();
    loop {
        let (status, now) = server.get_json(&format!("/api/jobs/{id}"));
        assert_eq!(status, 200, "{now}");
        if now["state"] == "succeeded" || now["state"] == "failed" {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job still {now} after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(corpus: &std::path::Path, index: &std::path::Path, token: Option<&str>) -> LiveServer {
    let env: Vec<(&str, &str)> = token
        .map(|t| ("WENDA_ADMIN_TOKEN", t))
        .into_iter()
        .collect();
    LiveServer::start(corpus, index, &["--lexical-only"], &env)
}

#[test]
fn a_report_goes_in_and_out_through_the_api_of_a_live_server() {
    let (_dir, corpus, index) = scratch_collection();
    let catalog = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let server = start(&corpus, &index, Some(TOKEN));
    let (_, health) = server.get_json("/healthz");
    let version_before = health["version"].as_str().unwrap().to_string();
    assert_eq!(health["reports"], 5);

    let text = new_report_markdown();
    let (status, job) = upload(
        &server,
        &[
            ("file", Some("观察.md"), text.as_bytes()),
            ("title", None, "2025年中国大模型行业观察".as_bytes()),
            ("publisher", None, "问答测试研究院".as_bytes()),
            ("year", None, b"2025"),
        ],
    );
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["kind"], "add");
    let done = finished(&server, &job);
    assert_eq!(done["state"], "succeeded", "{done}");
    let result = &done["result"];
    let source = result["source"].as_str().unwrap().to_string();
    assert!(result["passages"].as_u64().unwrap() > 0, "{done}");
    assert_eq!(result["title"], "2025年中国大模型行业观察");

    // Searchable and citable right after, in the new version.
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["version"], result["version"]);
    assert_ne!(health["version"].as_str().unwrap(), version_before);
    assert_eq!(health["reports"], 6);
    let (status, found) = server.get_json(
        "/api/search?q=%E6%9F%90%E5%9B%BD%E6%9C%89%E9%93%B6%E8%A1%8C%E4%BF%A1%E8%B4%B7%E5%AE%A1%E6%89%B9&mode=bm25&k=3",
    );
    assert_eq!(status, 200, "{found}");
    let citation = &found["results"][0]["citation"];
    assert_eq!(citation["source"], source.as_str(), "{found}");
    let (status, span) = server.get_json(&format!(
        "/api/documents/{source}?start={}&end={}",
        citation["char_start"], citation["char_end"]
    ));
    assert_eq!(status, 200, "{span}");
    assert!(
        span["text"]
            .as_str()
            .unwrap()
            .contains("某国有银行借助大模型"),
        "{span}"
    );
    let (_, documents) = server.get_json("/api/documents");
    assert!(
        documents["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["source"] == source.as_str() && d["publisher"] == "问答测试研究院")
    );

    // The same file again is a duplicate.
    let (status, reply) = upload(&server, &[("file", Some("again.md"), text.as_bytes())]);
    assert_eq!(
        (status, reply["code"].as_str()),
        (409, Some("duplicate_document"))
    );

    // Out again: every passage and citation of it goes.
    let auth = bearer(TOKEN);
    let (status, _, reply) = server.request(
        "DELETE",
        &format!("/api/documents/{source}"),
        &[("Authorization", &auth)],
        Vec::new(),
    );
    assert_eq!(status, 202, "{reply}");
    let done = finished(&server, &json(&reply));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["passages"], result["passages"]);
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["version"].as_str().unwrap(), version_before);
    let (status, reply) = server.get_json(&format!(
        "/api/search?q=%E4%BF%A1%E8%B4%B7&mode=bm25&source={source}"
    ));
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("unknown_source"))
    );
    let (status, _) = server.get_json(&format!("/api/documents/{source}?start=0&end=5"));
    assert_eq!(status, 404);
    let (_, found) = server.get_json(
        "/api/search?q=%E6%9F%90%E5%9B%BD%E6%9C%89%E9%93%B6%E8%A1%8C%E4%BF%A1%E8%B4%B7%E5%AE%A1%E6%89%B9&mode=bm25&k=100",
    );
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["citation"]["source"] != source.as_str())
    );
    assert_eq!(std::fs::read(corpus.join("catalog.toml")).unwrap(), catalog);
    assert!(!corpus.join(&source).exists());
}

#[test]
#[cfg_attr(
    not(has_pdftotext),
    ignore = "needs pdftotext (apt-get install poppler-utils)"
)]
fn a_pdf_uploaded_through_the_api_is_searchable() {
    let (_dir, corpus, index) = scratch_collection();
    let server = start(&corpus, &index, Some(TOKEN));
    let pdf = std::fs::read(common::pdf_fixture_dir().join("zh-report.pdf")).unwrap();
    let (status, job) = upload(
        &server,
        &[
            ("file", Some("zh-report.pdf"), &pdf),
            ("publisher", None, "问答测试研究院".as_bytes()),
        ],
    );
    assert_eq!(status, 202, "{job}");
    let done = finished(&server, &job);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["format"], "pdf");
    assert_eq!(
        done["result"]["title"],
        "2025年中国大模型行业观察（测试样本）"
    );
    let (_, found) = server.get_json(
        "/api/search?q=%E5%88%B6%E9%80%A0%E4%B8%9A%E5%B7%A5%E8%89%BA%E6%96%87%E4%BB%B6%E6%A3%80%E7%B4%A2&mode=bm25&k=1",
    );
    assert_eq!(
        found["results"][0]["citation"]["source"], done["result"]["source"],
        "{found}"
    );
}

#[test]
fn write_endpoints_need_the_admin_token_and_reads_stay_open() {
    let (_dir, corpus, index) = scratch_collection();
    let text = new_report_markdown();
    let (content_type, form) = multipart(&[("file", Some("r.md"), text.as_bytes())]);

    // No token configured: writing is off, reading is not.
    let server = start(&corpus, &index, None);
    for auth in [None, Some(bearer(TOKEN))] {
        let mut headers = vec![("Content-Type", content_type.as_str())];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let (status, _, reply) = server.request("POST", "/api/documents", &headers, form.clone());
        assert_eq!(
            (status, json(&reply)["code"].as_str()),
            (403, Some("writes_disabled"))
        );
        let (status, _, reply) = server.request(
            "DELETE",
            "/api/documents/leadleo-2023-llm-application-report.txt",
            &headers[1..],
            Vec::new(),
        );
        assert_eq!(
            (status, json(&reply)["code"].as_str()),
            (403, Some("writes_disabled"))
        );
    }
    assert_eq!(server.get_json("/api/documents").0, 200);
    assert_eq!(server.get_json("/api/search?q=AIGC&mode=bm25").0, 200);
    drop(server);

    // A token configured: missing or wrong is 401 with a Bearer challenge, right is 202.
    let server = start(&corpus, &index, Some(TOKEN));
    let wrong = [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ];
    for auth in &wrong {
        let mut headers = vec![("Content-Type", content_type.as_str())];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let (status, head, reply) =
            server.request("POST", "/api/documents", &headers, form.clone());
        assert_eq!(
            (status, json(&reply)["code"].as_str()),
            (401, Some("unauthorized")),
            "{auth:?}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        let (status, _, _) = server.request(
            "DELETE",
            "/api/documents/leadleo-2023-llm-application-report.txt",
            &headers[1..],
            Vec::new(),
        );
        assert_eq!(status, 401, "{auth:?}");
    }
    assert!(
        corpus
            .join("leadleo-2023-llm-application-report.txt")
            .exists()
    );
    let (status, job) = upload(&server, &[("file", Some("r.md"), text.as_bytes())]);
    assert_eq!(status, 202, "{job}");
    assert_eq!(finished(&server, &job)["state"], "succeeded");
}

#[test]
fn hostile_names_and_oversized_or_disguised_uploads_get_4xx_json() {
    let (dir, corpus, index) = scratch_collection();
    let server = start(&corpus, &index, Some(TOKEN));
    let before = listing(&corpus);
    let text = new_report_markdown();
    let pdf = std::fs::read(common::pdf_fixture_dir().join("zh-report.pdf")).unwrap();
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary zip".to_vec();
    type Case<'a> = (Vec<(&'a str, Option<&'a str>, &'a [u8])>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("file", Some("../../etc/passwd.txt"), text.as_bytes())],
            400,
            "bad_file_name",
        ),
        (
            vec![("file", Some("..\\\\..\\\\win.md"), text.as_bytes())],
            400,
            "bad_file_name",
        ),
        (
            vec![("file", Some("/tmp/abs.md"), text.as_bytes())],
            400,
            "bad_file_name",
        ),
        (
            vec![("file", Some("evil.exe"), text.as_bytes())],
            415,
            "unsupported_format",
        ),
        (
            vec![("file", Some("report.pdf"), text.as_bytes())],
            415,
            "unsupported_format",
        ),
        (
            vec![("file", Some("report.txt"), &pdf)],
            415,
            "unsupported_format",
        ),
        (
            vec![("file", Some("report.pdf"), &zip)],
            415,
            "unsupported_format",
        ),
        (vec![("file", None, &zip)], 415, "unsupported_format"),
        (vec![("file", Some("empty.txt"), b"")], 422, "no_text"),
        (vec![("title", None, b"only a title")], 400, "invalid_body"),
        (
            vec![
                ("file", Some("r.md"), text.as_bytes()),
                ("file", Some("s.md"), b"x"),
            ],
            400,
            "invalid_body",
        ),
        (
            vec![
                ("file", Some("r.md"), text.as_bytes()),
                ("year", None, b"MMXXV"),
            ],
            400,
            "invalid_metadata",
        ),
        (
            vec![
                ("file", Some("r.md"), text.as_bytes()),
                ("year", None, b"20250"),
            ],
            400,
            "invalid_metadata",
        ),
        (
            vec![
                ("file", Some("r.md"), text.as_bytes()),
                ("title", None, b"   "),
            ],
            400,
            "invalid_metadata",
        ),
        (
            vec![
                ("file", Some("r.md"), text.as_bytes()),
                ("path", None, b"../../x"),
            ],
            400,
            "invalid_body",
        ),
    ];
    for (parts, expected_status, expected_code) in &cases {
        let (status, reply) = upload(&server, parts);
        assert_eq!(
            (status, reply["code"].as_str()),
            (*expected_status, Some(*expected_code)),
            "{:?}: {reply}",
            parts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>()
        );
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
    }

    // Not a form at all.
    let auth = bearer(TOKEN);
    let (status, _, reply) = server.request(
        "POST",
        "/api/documents",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        br#"{"file": "x"}"#.to_vec(),
    );
    assert_eq!(
        (status, json(&reply)["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    // Over the size limit (64 MiB).
    let huge = vec![b'a'; wenda::server::MAX_UPLOAD_BYTES + 1024];
    let (status, reply) = upload(&server, &[("file", Some("huge.txt"), &huge)]);
    assert_eq!(
        (status, reply["code"].as_str()),
        (413, Some("body_too_large")),
        "{reply}"
    );

    // Hostile names in removals never reach a file.
    for path in [
        "/api/documents/..%2F..%2FCargo.toml",
        "/api/documents/catalog.toml",
        "/api/documents/.wenda-change.lock",
        "/api/documents/%2Fetc%2Fpasswd",
    ] {
        let (status, _, reply) =
            server.request("DELETE", path, &[("Authorization", &auth)], Vec::new());
        assert_eq!(
            (status, json(&reply)["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, reply) = server.get_json("/api/jobs/0123456789abcdef");
    assert_eq!((status, reply["code"].as_str()), (404, Some("not_found")));

    // Nothing was written anywhere.
    assert_eq!(listing(&corpus), before);
    assert_eq!(listing(dir.path()), ["corpus", "index"]);
    let (_, health) = server.get_json("/healthz");
    assert_eq!(health["reports"], 5);
}

#[test]
fn the_openapi_document_describes_the_write_endpoints() {
    let (_dir, corpus, index) = scratch_collection();
    let server = start(&corpus, &index, None);
    let (status, spec) = server.get_json("/api/openapi.json");
    assert_eq!(status, 200);
    for (path, method) in [
        ("/api/documents", "post"),
        ("/api/documents/{source}", "delete"),
        ("/api/jobs/{id}", "get"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    let post = &spec["paths"]["/api/documents"]["post"];
    for status in ["202", "400", "401", "403", "409", "413", "415"] {
        assert!(
            post["responses"][status].is_object(),
            "POST /api/documents {status}"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["adminToken"]["scheme"],
        "bearer"
    );
    assert_eq!(
        spec["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/Health"
    );
    let health = &spec["components"]["schemas"]["Health"]["properties"];
    assert!(health["version"].is_object() && health["reports"].is_object());
}

#[test]
fn without_pdftotext_a_pdf_is_refused_at_once_and_text_still_goes_in() {
    let (_dir, corpus, index) = scratch_collection();
    let server = LiveServer::start(
        &corpus,
        &index,
        &["--lexical-only", "--pdftotext", "/nonexistent/pdftotext"],
        &[("WENDA_ADMIN_TOKEN", TOKEN)],
    );
    let pdf = std::fs::read(common::pdf_fixture_dir().join("zh-report.pdf")).unwrap();
    let (status, reply) = upload(&server, &[("file", Some("zh-report.pdf"), &pdf)]);
    assert_eq!(
        (status, reply["code"].as_str()),
        (503, Some("extractor_unavailable")),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap().contains("poppler-utils"),
        "{reply}"
    );
    let text = new_report_markdown();
    let (status, job) = upload(&server, &[("file", Some("r.md"), text.as_bytes())]);
    assert_eq!(status, 202, "{job}");
    assert_eq!(finished(&server, &job)["state"], "succeeded");
}
