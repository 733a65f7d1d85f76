//! End-to-end test of the staff web page in a real browser.
//!
//! Starts `wenda serve --lexical-only` on a free port, starts `chromedriver`,
//! and drives headless Chromium through WebDriver (fantoccini): ask a
//! question, check the cited answer and the source cards, click a citation
//! marker and check the span viewer against the report on disk.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages
//! (`apt-get install chromium chromium-driver`; `.ci/run` installs them).
//! Without them the test fails; it never passes silently.
//!
//! Optional environment:
//! - `WENDA_BROWSER_SCREENSHOT=/path/page.png`: save a screenshot of the
//!   answered question with the viewer open.
//! - `WENDA_CHROMIUM`, `WENDA_CHROMEDRIVER`: other browser / driver binaries.
//! - `WENDA_BROWSER_BASE_URL=http://127.0.0.1:8080`: test a server that is
//!   already running instead of starting one (for work on the page).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const QUESTION: &str = "百丽时尚有多少家直营门店？";
const REPORT_FILE: &str = "leadleo-2023-llm-application-report.txt";
const REPORT_TITLE: &str = "2023年中国AI大模型应用研究报告";
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(180);
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Chromium flags for running as root on a machine without outside network.
const CHROME_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

// ---------- child processes ----------

/// Kills the child process when dropped, also when the test panics.
struct ChildGuard {
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Lines the server has written so far (stdout and stderr), for error messages.
type Log = Arc<Mutex<Vec<String>>>;

fn log_tail(log: &Log) -> String {
    let lines = log.lock().unwrap();
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n")
}

/// Reads `stream` line by line into `log`; sends the address of the first
/// `listening on http://...` line to `tx`. Keeps draining afterwards so the
/// server never blocks on a full pipe.
fn watch_output(stream: impl Read + Send + 'static, log: Log, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on http://".len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                let _ = tx.send(addr);
            }
            log.lock().unwrap().push(line);
        }
    });
}

/// Starts `wenda serve` on a free port and returns it with its base URL.
fn start_server(index_dir: &Path) -> (ChildGuard, String, Log) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wenda"))
        .arg("--corpus")
        .arg(&corpus)
        .arg("--index")
        .arg(index_dir)
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--lexical-only",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the wenda binary");
    let log: Log = Arc::default();
    let (tx, rx) = mpsc::channel();
    watch_output(child.stdout.take().unwrap(), log.clone(), tx.clone());
    watch_output(child.stderr.take().unwrap(), log.clone(), tx);
    let mut guard = ChildGuard { child };

    let deadline = Instant::now() + SERVER_START_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(addr) => {
                let addr: SocketAddr = addr
                    .parse()
                    .unwrap_or_else(|e| panic!("bad address {addr:?} in the server's output: {e}"));
                return (guard, format!("http://{addr}"), log);
            }
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Ok(Some(status)) = guard.child.try_wait() {
                    // Give the reader threads a moment to collect the last lines.
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "`wenda serve` exited with {status} before listening; its output:\n{}",
                        log_tail(&log)
                    );
                }
                if Instant::now() > deadline {
                    panic!(
                        "`wenda serve` printed no `listening on http://...` line within {:?}; its output:\n{}",
                        SERVER_START_TIMEOUT,
                        log_tail(&log)
                    );
                }
            }
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Finds `name` as a path or on PATH.
fn find_program(env_var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        let p = Path::new(name);
        if p.is_absolute() {
            if p.is_file() {
                return Some(p.to_path_buf());
            }
            continue;
        }
        for dir in std::env::split_paths(&path) {
            let full = dir.join(name);
            if full.is_file() {
                return Some(full);
            }
        }
    }
    None
}

fn start_chromedriver(program: &Path, log_file: &Path) -> (ChildGuard, String) {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log_file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let mut guard = ChildGuard { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = guard.child.try_wait() {
            panic!(
                "chromedriver exited with {status}; see {}",
                log_file.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, format!("http://127.0.0.1:{port}"))
}

// ---------- page helpers ----------

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

async fn js(client: &Client, script: &str, args: Vec<Value>) -> Result<Value, String> {
    client
        .execute(script, args)
        .await
        .map_err(|e| format!("script failed: {e}"))
}

/// Polls `script` (which returns an object) until `done` accepts its value.
async fn wait_for(
    client: &Client,
    what: &str,
    script: &str,
    done: impl Fn(&Value) -> Result<bool, String>,
) -> Result<Value, String> {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let state = js(client, script, vec![]).await?;
        if done(&state)? {
            return Ok(state);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {PAGE_TIMEOUT:?} waiting for {what}; page state: {state:#}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const ANSWER_STATE: &str = r#"
    const text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent : null; };
    const status = document.querySelector('#status');
    return {
        cites: document.querySelectorAll('#answer .cite').length,
        answer: text('#answer'),
        status: status && !status.hidden ? status.textContent : '',
        error: !!(status && !status.hidden && status.classList.contains('error')),
        cards: Array.from(document.querySelectorAll('#sources > *')).map((c) => c.textContent),
    };
"#;

const VIEWER_STATE: &str = r#"
    const viewer = document.querySelector('#viewer');
    const cited = viewer ? viewer.querySelector('.cited') : null;
    return {
        visible: !!viewer && !viewer.hidden && viewer.getClientRects().length > 0,
        text: viewer ? viewer.textContent : null,
        cited: cited ? cited.textContent : null,
    };
"#;

fn answer_ready(state: &Value) -> Result<bool, String> {
    if state["error"].as_bool() == Some(true) {
        return Err(format!("the page shows an error: {}", state["status"]));
    }
    Ok(state["cites"].as_u64().unwrap_or(0) > 0)
}

fn check_answer(state: &Value) -> Outcome {
    let answer = state["answer"].as_str().unwrap_or_default();
    ensure!(
        answer.contains("9000"),
        "the answer does not mention 9000: {answer:?}"
    );
    let cards = state["cards"].as_array().cloned().unwrap_or_default();
    ensure!(
        cards
            .iter()
            .any(|c| c.as_str().is_some_and(|t| t.contains(REPORT_FILE))),
        "no source card cites {REPORT_FILE}: {cards:#?}"
    );
    Ok(())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The whole scenario; errors come back as text so the caller can close the
/// browser session before failing.
async fn scenario(client: &Client, base: &str, report_text: &str) -> Outcome {
    let err = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");

    client
        .goto(&format!("{base}/"))
        .await
        .map_err(err("open the page"))?;

    // The report filter is filled from GET /api/documents.
    wait_for(
        client,
        "the report list in #source",
        "return { options: Array.from(document.querySelectorAll('#source option')).map((o) => [o.value, o.textContent]) };",
        |s| {
            Ok(s["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o[0] == REPORT_FILE)))
        },
    )
    .await?;
    let first = js(
        client,
        "return document.querySelector('#source option').textContent;",
        vec![],
    )
    .await?;
    ensure!(
        first == "全部报告",
        "the first report option is {first}, not 全部报告"
    );

    // Ask.
    let input = client
        .find(Locator::Css("#question"))
        .await
        .map_err(err("find #question"))?;
    input.click().await.map_err(err("focus #question"))?;
    input
        .send_keys(QUESTION)
        .await
        .map_err(err("type the question"))?;
    let typed = js(
        client,
        "return document.querySelector('#question').value;",
        vec![],
    )
    .await?;
    ensure!(
        typed == QUESTION,
        "#question holds {typed} after typing {QUESTION}"
    );
    client
        .find(Locator::Css("#ask"))
        .await
        .map_err(err("find #ask"))?
        .click()
        .await
        .map_err(err("click #ask"))?;

    let state = wait_for(
        client,
        "a cited answer in #answer",
        ANSWER_STATE,
        answer_ready,
    )
    .await?;
    check_answer(&state)?;

    // Click the first citation marker whose source is the leadleo report.
    let marker = js(
        client,
        r#"
        const file = arguments[0];
        for (const cite of document.querySelectorAll('#answer .cite')) {
            const card = document.querySelector(`#sources [data-marker="${cite.dataset.marker}"]`);
            if (card && card.textContent.includes(file)) return cite.dataset.marker;
        }
        return null;
        "#,
        vec![json!(REPORT_FILE)],
    )
    .await?;
    let marker = marker
        .as_str()
        .ok_or_else(|| {
            format!(
                "no citation marker in the answer points at {REPORT_FILE}; page state: {state:#}"
            )
        })?
        .to_string();
    client
        .find(Locator::Css(&format!(
            "#answer .cite[data-marker=\"{marker}\"]"
        )))
        .await
        .map_err(err("find the citation marker"))?
        .click()
        .await
        .map_err(err("click the citation marker"))?;

    let viewer = wait_for(
        client,
        "the span viewer with the cited span",
        VIEWER_STATE,
        |s| {
            Ok(s["visible"] == true
                && s["text"].as_str().is_some_and(|t| t.contains(REPORT_TITLE))
                && s["cited"].as_str().is_some_and(|t| !t.trim().is_empty()))
        },
    )
    .await?;
    let cited = viewer["cited"].as_str().unwrap_or_default();
    ensure!(
        report_text.contains(cited),
        "the highlighted span is not text of {REPORT_FILE}: {cited:?}"
    );

    if let Some(path) = std::env::var_os("WENDA_BROWSER_SCREENSHOT") {
        let png = client
            .screenshot()
            .await
            .map_err(err("take a screenshot"))?;
        std::fs::write(&path, png).map_err(|e| format!("write {path:?}: {e}"))?;
    }

    // The viewer closes.
    client
        .find(Locator::Css("#viewer-close"))
        .await
        .map_err(err("find #viewer-close"))?
        .click()
        .await
        .map_err(err("click #viewer-close"))?;
    wait_for(client, "the viewer to close", VIEWER_STATE, |s| {
        Ok(s["visible"] == false)
    })
    .await?;

    // A link with ?q= asks at once.
    client
        .goto(&format!("{base}/?q={}", percent_encode(QUESTION)))
        .await
        .map_err(err("open the page with ?q="))?;
    let state = wait_for(
        client,
        "a cited answer from ?q=",
        ANSWER_STATE,
        answer_ready,
    )
    .await?;
    check_answer(&state)?;
    let typed = js(
        client,
        "return document.querySelector('#question').value;",
        vec![],
    )
    .await?;
    ensure!(typed == QUESTION, "?q= did not fill #question: {typed}");

    // A question the reports cannot answer: refused, with the closest passages offered.
    client
        .goto(&format!(
            "{base}/?q={}",
            percent_encode("足球世界杯冠军是哪支球队？")
        ))
        .await
        .map_err(err("open the page with an unanswerable ?q="))?;
    let refused = r#"
        const label = document.querySelector('#sources-label');
        const box = document.querySelector('#answer');
        return {
            refused: !!box && box.classList.contains('not-found'),
            label: label && !label.hidden ? label.textContent : null,
            cards: document.querySelectorAll('#sources > *').length,
        };
    "#;
    let state = wait_for(client, "the refusal with suggestions", refused, |s| {
        Ok(s["refused"] == true && s["cards"].as_u64().unwrap_or(0) > 0)
    })
    .await?;
    ensure!(
        state["label"] == "可能相关的段落",
        "suggestions are not labelled as possibly related: {state}"
    );

    // A question whose subject no report mentions: the refusal names it in words.
    client
        .goto(&format!(
            "{base}/?q={}",
            percent_encode("大模型在渔业中有哪些应用？")
        ))
        .await
        .map_err(err("open the page with a question about fisheries"))?;
    let named = r#"
        const box = document.querySelector('#answer');
        const missing = document.querySelector('#missing');
        return {
            refused: !!box && box.classList.contains('not-found'),
            missing: missing && !missing.hidden ? missing.textContent : null,
        };
    "#;
    let state = wait_for(client, "the refusal naming 渔业", named, |s| {
        Ok(s["refused"] == true && s["missing"].is_string())
    })
    .await?;
    ensure!(
        state["missing"] == "报告中未提到：渔业",
        "the refusal does not say which word the reports lack: {state}"
    );

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_answers_and_opens_cited_span() {
    let install =
        "install them with `apt-get install chromium chromium-driver` (.ci/run installs them)";
    let chromium = find_program("WENDA_CHROMIUM", &["/usr/bin/chromium", "chromium"])
        .unwrap_or_else(|| {
            panic!("Chromium is not installed (looked for /usr/bin/chromium); {install}")
        });
    let chromedriver = find_program(
        "WENDA_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "chromedriver"],
    )
    .unwrap_or_else(|| {
        panic!("chromedriver is not installed (looked for /usr/bin/chromedriver); {install}")
    });

    let report_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(REPORT_FILE);
    let report_text = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", report_path.display()));

    let scratch = tempfile::tempdir().expect("temporary folder");
    let index_dir = scratch.path().join("index");
    let profile_dir = scratch.path().join("chromium-profile");
    std::fs::create_dir_all(&profile_dir).unwrap();
    let driver_log = scratch.path().join("chromedriver.log");

    let (_server, base, server_log) = match std::env::var("WENDA_BROWSER_BASE_URL") {
        Ok(url) => (None, url.trim_end_matches('/').to_string(), Log::default()),
        Err(_) => {
            let (guard, base, log) = start_server(&index_dir);
            (Some(guard), base, log)
        }
    };
    let (_driver, driver_url) = start_chromedriver(&chromedriver, &driver_log);

    let mut args: Vec<String> = CHROME_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile_dir.display()));
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium.to_string_lossy(), "args": args }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver_url)
        .await
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
            let start = log.len().saturating_sub(4000);
            let start = (start..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            panic!(
                "could not start Chromium through chromedriver: {e}\nchromedriver log tail:\n{}",
                &log[start..]
            )
        });

    let outcome = scenario(&client, &base, &report_text).await;

    if let Err(failure) = outcome {
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failure.png");
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(&shot, png);
        }
        // Ending the session makes chromedriver quit Chromium.
        let _ = client.close().await;
        panic!(
            "{}\n(screenshot: {})\nserver output:\n{}",
            failure,
            shot.display(),
            log_tail(&server_log)
        );
    }
    client.close().await.expect("close the browser session");
}
