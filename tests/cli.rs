//! The `wenda` binary as a user runs it: index, search, eval, and bad input.
//! These run BM25 only (no model needed); the model is covered elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn wenda(index: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wenda"))
        .arg("--corpus")
        .arg(root().join("corpus"))
        .arg("--index")
        .arg(index)
        .arg("--quiet")
        .args(args)
        .env_remove("WENDA_LOG")
        .output()
        .expect("wenda runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn index_then_search_prints_cited_passages_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = wenda(dir.path(), &["index", "--lexical-only"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("passages from 5 reports"),
        "{}",
        text(&out.stdout)
    );

    let out = wenda(
        dir.path(),
        &[
            "search",
            "百丽时尚有多少家直营门店？",
            "--mode",
            "bm25",
            "-k",
            "3",
            "--no-build",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("leadleo-2023-llm-application-report.txt:"),
        "{stdout}"
    );
    assert!(stdout.contains("9000"), "{stdout}");

    let out = wenda(
        dir.path(),
        &[
            "search",
            "AIGC 审计合规",
            "--mode",
            "bm25",
            "--json",
            "--no-build",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(json["mode"], "bm25");
    let first = &json["results"][0];
    assert_eq!(first["rank"], 1);
    let citation = &first["citation"];
    for key in [
        "source",
        "title",
        "section",
        "line_start",
        "line_end",
        "char_start",
        "char_end",
    ] {
        assert!(!citation[key].is_null(), "citation lacks {key}: {citation}");
    }
    assert!(
        first["snippet"].as_str().unwrap().contains("<b>"),
        "{first}"
    );
    let timings = &json["timings"];
    assert!(timings["bm25_ms"].as_f64().is_some(), "{json}");
    assert!(
        json["took_ms"].as_f64().unwrap() >= timings["bm25_ms"].as_f64().unwrap(),
        "the total covers the BM25 stage: {json}"
    );
}

#[test]
fn bad_input_gets_a_clear_message_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let built = wenda(dir.path(), &["index", "--lexical-only"]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let cases: &[(&[&str], &str)] = &[
        (&["search", "   ", "--mode", "bm25"], "empty"),
        (&["search", "？！。，", "--mode", "bm25"], "no letters"),
        (
            &["search", "大模型", "--mode", "fuzzy"],
            "possible values: bm25, dense, hybrid",
        ),
        (
            &["search", "大模型", "--device", "tpu"],
            "invalid value 'tpu'",
        ),
        (
            &["search", "大模型", "--mode", "bm25", "-k", "0"],
            "between 1 and 100",
        ),
        (
            &["search", "大模型", "--mode", "bm25", "-k", "100000"],
            "between 1 and 100",
        ),
        (
            &[
                "search",
                "大模型",
                "--mode",
                "bm25",
                "--source",
                "../etc/passwd",
            ],
            "no report named",
        ),
    ];
    for (args, expected) in cases {
        let out = wenda(dir.path(), args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let long = "大".repeat(2001);
    let out = wenda(dir.path(), &["search", &long, "--mode", "bm25"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("limit is 2000"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_or_corrupt_index_is_reported_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let out = wenda(
        dir.path(),
        &["search", "大模型", "--mode", "bm25", "--no-build"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no index") && stderr.contains("wenda index"),
        "{stderr}"
    );

    assert!(
        wenda(dir.path(), &["index", "--lexical-only"])
            .status
            .success()
    );
    std::fs::write(dir.path().join("manifest.json"), "{ broken").unwrap();
    let out = wenda(
        dir.path(),
        &["search", "大模型", "--mode", "bm25", "--no-build"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("corrupt"),
        "{}",
        text(&out.stderr)
    );
    // Without --no-build the index is rebuilt and the search answers.
    let out = wenda(dir.path(), &["search", "大模型", "--mode", "bm25"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn eval_reports_the_metrics_of_the_dev_set_and_writes_trec_files() {
    let dev = root().join("../shared/eval/dev.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.txt");
    let qrels = dir.path().join("qrels.txt");
    let out = wenda(
        &dir.path().join("index"),
        &[
            "eval",
            "--set",
            dev.to_str().unwrap(),
            "--mode",
            "bm25",
            "--lexical-only",
            "--json",
            "--trec-run",
            run.to_str().unwrap(),
            "--trec-qrels",
            qrels.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let overall = &report["modes"][0]["overall"];
    assert_eq!(overall["count"], 40);
    // BM25 must beat the plain Python jieba+BM25 baseline (R@5 0.825, MRR@10 0.713).
    assert!(
        overall["recall_at_5"].as_f64().unwrap() >= 0.825,
        "{overall}"
    );
    assert!(overall["mrr_at_10"].as_f64().unwrap() >= 0.713, "{overall}");
    let run_text = std::fs::read_to_string(&run).unwrap();
    assert_eq!(
        run_text.lines().next().unwrap().split_whitespace().count(),
        6
    );
    assert!(std::fs::read_to_string(&qrels).unwrap().lines().count() >= 40);
}
