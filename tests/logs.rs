//! The server's log as an operator meets it (issue #21): plain text in a file, JSON lines
//! on request, and a burst of refused requests written as a few counted warnings.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::LiveServer;

/// A scratch collection with a BM25-only index (no model needed).
fn collection() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (dir, corpus, index) = common::scratch_collection();
    let out = Command::new(env!("CARGO_BIN_EXE_wenda"))
        .arg("--corpus")
        .arg(&corpus)
        .arg("--index")
        .arg(&index)
        .args(["-q", "index", "--lexical-only"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, corpus, index)
}

/// Starts the server with its stderr in `log`, sends a few requests, stops it and
/// returns the log.
fn serve_and_log(corpus: &Path, index: &Path, log: &Path, args: &[&str]) -> String {
    let file = std::fs::File::create(log).unwrap();
    {
        let server = LiveServer::start_with_stderr(corpus, index, args, &[], Stdio::from(file));
        assert_eq!(server.get_json("/api/search?q=AIGC&mode=bm25").0, 200);
        assert_eq!(server.get_json("/api/no-such-route").0, 404);
        assert_eq!(server.get_json("/healthz").0, 200);
    }
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn a_log_written_to_a_file_has_no_colour_escapes() {
    let (dir, corpus, index) = collection();
    let log = serve_and_log(
        &corpus,
        &index,
        &dir.path().join("serve.log"),
        &["--lexical-only"],
    );
    assert!(log.contains(" INFO "), "no info lines:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape bytes in the log file:\n{log:?}"
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let (dir, corpus, index) = collection();
    let log = serve_and_log(
        &corpus,
        &index,
        &dir.path().join("serve.jsonl"),
        &["--lexical-only", "--log-format", "json"],
    );
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 2, "too few lines:\n{log}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
        assert!(value["fields"].is_object(), "{line}");
    }
}

/// Clients that search as fast as they can for `seconds`; counts of 200 and 503 replies.
fn burst(server: &LiveServer, clients: usize, seconds: u64) -> (usize, usize) {
    let addr = server.addr;
    let until = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut refused) = (0, 0);
                while Instant::now() < until {
                    let (status, _, body) = common::http_request(
                        addr,
                        "GET",
                        "/api/search?q=%E5%A4%A7%E6%A8%A1%E5%9E%8B&mode=bm25&k=50",
                        &[],
                        Vec::new(),
                    );
                    match status {
                        200 => ok += 1,
                        503 => {
                            assert!(body.contains("\"overloaded\""), "{body}");
                            refused += 1
                        }
                        other => panic!("status {other}: {body}"),
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

#[test]
fn a_burst_past_capacity_is_logged_as_a_few_counted_warnings() {
    let (dir, corpus, index) = collection();
    let path = dir.path().join("burst.log");
    let file = std::fs::File::create(&path).unwrap();
    let seconds = 3;
    let (ok, refused) = {
        let server = LiveServer::start_with_stderr(
            &corpus,
            &index,
            &["--lexical-only", "--max-in-flight", "1"],
            &[],
            Stdio::from(file),
        );
        burst(&server, 32, seconds)
    };
    assert!(ok > 0 && refused > 0, "{ok} answered, {refused} refused");
    let log = std::fs::read_to_string(&path).unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "error lines: {errors:#?}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    // One line a second at most (REFUSAL_LOG_INTERVAL), plus the first.
    assert!(
        !warnings.is_empty() && warnings.len() as u64 <= seconds + 2,
        "{refused} refusals gave {} warning lines: {warnings:#?}",
        warnings.len()
    );
    assert!(
        warnings.iter().all(|l| l.contains("refused")),
        "{warnings:#?}"
    );
}
