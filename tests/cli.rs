//! The `wenda` binary as a user runs it: index, search, eval, and bad input.
//! These run BM25 only (no model needed); the model is covered elsewhere.

mod common;

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

/// `wenda` over the corpus folder `corpus` (instead of the crate's own) and `index`.
fn wenda_in(corpus: &Path, index: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wenda"))
        .arg("--corpus")
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .arg("--quiet")
        .args(args)
        .env_remove("WENDA_LOG")
        .env_remove("WENDA_PDFTOTEXT")
        .output()
        .expect("wenda runs")
}

#[test]
fn reports_go_in_and_out_through_the_cli() {
    let (dir, corpus, index) = common::scratch_collection();
    let catalog = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let report = dir.path().join("Market Watch 2025.md");
    std::fs::write(&report, common::new_report_markdown()).unwrap();
    let run = |args: &[&str]| {
        let out = wenda_in(&corpus, &index, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["index", "--lexical-only"]);
    let added = run(&[
        "add",
        report.to_str().unwrap(),
        "--publisher",
        "问答测试研究院",
        "--lexical-only",
    ]);
    assert!(
        added.contains("added market-watch-2025.txt \"2025年中国大模型行业观察（测试样本）\""),
        "{added}"
    );
    let list = run(&["list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let entry = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "market-watch-2025.txt")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (entry["year"].as_u64(), entry["publisher"].as_str()),
        (Some(2025), Some("问答测试研究院"))
    );
    assert!(entry["passages"].as_u64().unwrap() > 0);
    assert!(run(&["list"]).contains("6 reports"));
    // Searchable right away, without a rebuild.
    let found = run(&[
        "search",
        "某国有银行借助大模型把信贷审批材料的平均处理时长缩短",
        "--mode",
        "bm25",
        "--no-build",
        "--json",
        "-k",
        "1",
    ]);
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(
        found["results"][0]["citation"]["source"],
        "market-watch-2025.txt"
    );

    let removed = run(&["remove", "market-watch-2025.txt", "--lexical-only"]);
    assert!(
        removed.contains("removed market-watch-2025.txt"),
        "{removed}"
    );
    assert!(run(&["list"]).contains("5 reports"));
    assert_eq!(std::fs::read(corpus.join("catalog.toml")).unwrap(), catalog);
    let out = wenda_in(
        &corpus,
        &index,
        &[
            "search",
            "信贷审批",
            "--mode",
            "bm25",
            "--no-build",
            "--source",
            "market-watch-2025.txt",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no report named"),
        "{}",
        text(&out.stderr)
    );
    let out = wenda_in(
        &corpus,
        &index,
        &["remove", "market-watch-2025.txt", "--lexical-only"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no report named"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
#[cfg_attr(
    not(has_pdftotext),
    ignore = "needs pdftotext (apt-get install poppler-utils)"
)]
fn the_pdf_fixture_yields_every_sentence_it_must() {
    let (_dir, corpus, index) = common::scratch_collection();
    let pdf = common::pdf_fixture_dir().join("zh-report.pdf");
    let out = wenda_in(
        &corpus,
        &index,
        &["add", pdf.to_str().unwrap(), "--lexical-only"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("added zh-report.txt"), "{stdout}");
    assert!(
        stdout.contains("2025年中国大模型行业观察（测试样本）"),
        "{stdout}"
    );
    // Stored as text a person can open, and every sentence whole in one passage.
    let stored = std::fs::read_to_string(corpus.join("zh-report.txt")).unwrap();
    assert!(!stored.contains('\u{fffd}'), "{stored}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(index.join("manifest.json")).unwrap())
            .unwrap();
    let passages: Vec<String> = std::fs::read_to_string(
        index
            .join(manifest["data_dir"].as_str().unwrap())
            .join("passages.jsonl"),
    )
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    .filter(|p| p["citation"]["source"] == "zh-report.txt")
    .map(|p| p["text"].as_str().unwrap().to_string())
    .collect();
    let sentences = common::fixture_sentences();
    assert_eq!(sentences.len(), 12);
    for s in &sentences {
        assert!(
            passages.iter().any(|p| p.contains(s.as_str())),
            "{s} not in any passage: {passages:#?}"
        );
    }
}

#[test]
fn a_missing_pdftotext_or_a_disguised_file_is_refused_and_text_still_works() {
    let (dir, corpus, index) = common::scratch_collection();
    let catalog = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let pdf = common::pdf_fixture_dir().join("zh-report.pdf");
    let missing = ["--pdftotext", "/nonexistent/pdftotext", "--lexical-only"];
    let out = wenda_in(
        &corpus,
        &index,
        &[&["add", pdf.to_str().unwrap()][..], &missing[..]].concat(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("pdftotext") && stderr.contains("poppler-utils"),
        "{stderr}"
    );
    assert!(
        stderr.contains(".txt and .md files need nothing"),
        "{stderr}"
    );

    let fake = dir.path().join("fake.pdf");
    std::fs::write(&fake, common::new_report_markdown()).unwrap();
    let out = wenda_in(
        &corpus,
        &index,
        &[&["add", fake.to_str().unwrap()][..], &missing[..]].concat(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("its content is text, not a PDF"),
        "{}",
        text(&out.stderr)
    );
    let binary = dir.path().join("data.txt");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let out = wenda_in(
        &corpus,
        &index,
        &[&["add", binary.to_str().unwrap()][..], &missing[..]].concat(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("neither a PDF nor UTF-8 text"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(corpus.join("catalog.toml")).unwrap(), catalog);

    let md = dir.path().join("watch.md");
    std::fs::write(&md, common::new_report_markdown()).unwrap();
    let out = wenda_in(
        &corpus,
        &index,
        &[&["add", md.to_str().unwrap()][..], &missing[..]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_kill_during_add_leaves_the_old_index_serving_and_the_catalog_whole() {
    use std::io::BufRead;
    let (dir, corpus, index) = common::scratch_collection();
    assert!(
        wenda_in(&corpus, &index, &["index", "--lexical-only"])
            .status
            .success()
    );
    let catalog = std::fs::read(corpus.join("catalog.toml")).unwrap();
    let files = common::listing(&corpus);
    let server = common::LiveServer::start(&corpus, &index, &["--lexical-only"], &[]);
    let (_, health) = server.get_json("/healthz");
    // A report large enough that its BM25 index takes a few seconds.
    let big = dir.path().join("big.txt");
    let mut body = String::from("大规模测试报告（2025年）\n\n");
    for i in 0..40_000 {
        body.push_str(&format!(
            "第{i}条：大模型在第{i}个场景中的应用带来了{}%的效率提升，相关企业共有{}家。\n",
            i * 7 % 100,
            i * 13 % 997
        ));
    }
    std::fs::write(&big, body).unwrap();

    let mut add = Command::new(env!("CARGO_BIN_EXE_wenda"))
        .arg("--corpus")
        .arg(&corpus)
        .arg("--index")
        .arg(&index)
        .args(["add", big.to_str().unwrap(), "--lexical-only"])
        .env("WENDA_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(add.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        let building = line.contains("building the index of");
        seen.push(line);
        if building {
            add.kill().unwrap();
            break;
        }
    }
    let status = add.wait().unwrap();
    assert!(
        !status.success(),
        "the add finished before the kill: {seen:#?}"
    );

    // Nothing half added: the catalog and the folder are as they were (a pending file
    // may lie there, hidden; the next change removes it).
    assert_eq!(std::fs::read(corpus.join("catalog.toml")).unwrap(), catalog);
    let now: Vec<String> = common::listing(&corpus)
        .into_iter()
        .filter(|f| !f.ends_with(".pending") && !f.ends_with(".lock"))
        .collect();
    assert_eq!(now, files);
    // The old index serves: the running server, and a new reader that may not rebuild.
    let (status, after) = server.get_json("/healthz");
    assert_eq!(status, 200);
    assert_eq!(after["version"], health["version"]);
    assert_eq!(server.get_json("/api/search?q=AIGC&mode=bm25").0, 200);
    let out = wenda_in(
        &corpus,
        &index,
        &["search", "AIGC", "--mode", "bm25", "--no-build"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The next add completes and cleans up after the killed one.
    let out = wenda_in(
        &corpus,
        &index,
        &["add", big.to_str().unwrap(), "--lexical-only"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !common::listing(&corpus)
            .iter()
            .any(|f| f.ends_with(".pending"))
    );
    let data_dirs = common::listing(&index)
        .into_iter()
        .filter(|f| f.starts_with("data-"))
        .count();
    assert_eq!(data_dirs, 1);
    // The running server switches to it without a restart.
    let started = std::time::Instant::now();
    loop {
        let (_, h) = server.get_json("/healthz");
        if h["reports"] == 6 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "the server still serves {h}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
