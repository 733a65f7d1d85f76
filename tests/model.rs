//! Retrieval with the real embedding model (multilingual-e5-small, fetched by
//! route 3 of models/README.md when missing). Release profile only: candle
//! in a debug build is far too slow, so there every test here is ignored.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use common::TestServer;
use wenda::eval::{load_questions, run};
use wenda::progress::NoProgress;
use wenda::retrieve::{Engine, Mode, SearchRequest};

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<(tempfile::TempDir, Arc<Engine>)> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let embedder = common::real_embedder();
            let dir = tempfile::tempdir().unwrap();
            let engine = common::engine(dir.path().to_path_buf(), Some(Arc::new(embedder)));
            (dir, Arc::new(engine))
        })
        .1
        .clone()
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn hybrid_hits_explain_both_retrievers() {
    let engine = engine();
    assert_eq!(engine.modes(), Mode::ALL.to_vec());
    let mut request = SearchRequest::new("大模型如何帮助银行做风险控制？");
    request.k = 10;
    let response = engine.search(&request).unwrap();
    assert_eq!(response.mode, Mode::Hybrid);
    assert_eq!(response.results.len(), 10);
    assert!(
        response
            .results
            .iter()
            .all(|h| h.bm25.is_some() || h.dense.is_some())
    );
    assert!(
        response
            .results
            .iter()
            .any(|h| h.bm25.is_some() && h.dense.is_some())
    );
    assert!(
        response.timings.embedding_ms > 0.0,
        "{:?}",
        response.timings
    );
    // Scores are non-increasing.
    assert!(
        response
            .results
            .windows(2)
            .all(|w| w[0].score >= w[1].score)
    );
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn dense_retrieval_crosses_languages() {
    let engine = engine();
    let mut request =
        SearchRequest::new("How many direct-operated stores does Belle Fashion have in China?");
    request.mode = Some(Mode::Dense);
    request.k = 10;
    let response = engine.search(&request).unwrap();
    assert!(
        response.results.iter().any(|h| h.text.contains("9000")),
        "{:#?}",
        response.results.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
#[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
fn hybrid_beats_the_python_baseline_on_the_dev_set() {
    let dev = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/dev.jsonl");
    let questions = load_questions(&dev).unwrap();
    let evaluation = run::evaluate_questions(
        &engine(),
        "dev",
        &questions,
        &Mode::ALL,
        &[engine().fusion()],
        &NoProgress,
    )
    .unwrap();
    let by_mode = |m: &str| {
        evaluation
            .report
            .modes
            .iter()
            .find(|r| r.mode == m)
            .unwrap()
            .overall
    };
    let (bm25, dense, hybrid) = (by_mode("bm25"), by_mode("dense"), by_mode("hybrid"));
    // A plain Python pipeline with the same model and RRF reaches 0.85 / 0.71.
    assert!(hybrid.recall_at_5 >= 0.85, "{hybrid:?}");
    assert!(hybrid.mrr_at_10 >= 0.71, "{hybrid:?}");
    assert!(
        hybrid.ndcg_at_10 >= bm25.ndcg_at_10.max(dense.ndcg_at_10),
        "{bm25:?} {dense:?} {hybrid:?}"
    );
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn the_server_answers_concurrent_hybrid_searches_and_english_questions() {
    let server = Arc::new(TestServer::start(engine()));
    let questions = [
        "金融行业大模型",
        "医疗大模型应用",
        "政务服务智能客服",
        "制造业质检",
        "AIGC 营销",
    ];
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let server = server.clone();
            let q = questions[i % questions.len()];
            std::thread::spawn(move || {
                let body = format!(r#"{{"query": "{q}", "k": 5}}"#);
                server.post_json("/api/search", &body)
            })
        })
        .collect();
    for h in handles {
        let (status, body) = h.join().unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["mode"], "hybrid");
        assert!(v["timings"]["embedding_ms"].as_f64().unwrap() > 0.0);
    }
    let (status, body) = server.post_json(
        "/api/ask",
        r#"{"question": "How many direct-operated stores does Belle Fashion have?"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["found"], true, "{body}");
    assert!(v["answer"].as_str().unwrap().contains("[1]"));
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn overlapping_embedding_calls_give_the_same_vectors() {
    // A call running alone spreads over all cores; calls that overlap run one thread
    // each. Both paths must compute the same embedding.
    let embedder = common::real_embedder();
    let questions = [
        "政务大模型由哪些企业建设？",
        "What is MaaS?",
        "医疗大模型的落地难点",
    ];
    let alone: Vec<Vec<f32>> = questions
        .iter()
        .map(|q| embedder.embed_query(q).unwrap())
        .collect();
    let overlapping: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..5)
                        .flat_map(|_| questions.iter())
                        .map(|q| embedder.embed_query(q).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for per_thread in &overlapping {
        for (i, v) in per_thread.iter().enumerate() {
            let want = &alone[i % questions.len()];
            let cosine: f32 = v.iter().zip(want).map(|(a, b)| a * b).sum();
            assert!(cosine > 0.999_999, "question {i}: cosine {cosine}");
        }
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn batched_concurrent_queries_get_the_vectors_they_would_get_alone() {
    use wenda::embed::{Encoder, QueryBatcher};
    let embedder = Arc::new(common::real_embedder());
    let questions = [
        "政务大模型由哪些企业建设？",
        "What is MaaS?",
        "医疗大模型的落地难点",
        "百丽时尚有多少家直营门店？",
        "大模型如何帮助银行做风险控制？这是一个比较长的问题，用来让批里的序列长度各不相同。",
    ];
    let alone: Vec<Vec<f32>> = questions
        .iter()
        .map(|q| embedder.embed_query(q).unwrap())
        .collect();
    // One call with all of them (sequences of different lengths packed together).
    let together = embedder.embed_queries(&questions).unwrap();
    let batcher = QueryBatcher::new(embedder.clone()).unwrap();
    // Eight clients at once: their queries queue while the model is busy and share batches.
    let concurrent: Vec<Vec<(usize, Vec<f32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let batcher = &batcher;
                s.spawn(move || {
                    (0..10)
                        .map(|i| {
                            let q = (t + i) % questions.len();
                            (q, batcher.encode_query(questions[q]).unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cosine = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    for (i, v) in together.iter().enumerate() {
        assert!(cosine(v, &alone[i]) > 0.9999, "question {i} in one call");
    }
    for (q, v) in concurrent.iter().flatten() {
        assert!(cosine(v, &alone[*q]) > 0.9999, "question {q} batched");
    }
    assert_eq!(batcher.model_id(), embedder.model_id());
}

#[test]
#[cfg_attr(debug_assertions, ignore = "real model: run with cargo test --release")]
fn english_questions_find_passages_through_translations_and_are_refused_off_topic() {
    use wenda::answer::{AskRequest, DEFAULT_ANSWER_PASSAGES, ask};
    let engine = engine();
    // "671 billion" is searched as 6710亿, the way the report writes it.
    let response = engine
        .search(&SearchRequest::new(
            "Which company's model has 671 billion parameters and uses a mixture-of-experts architecture?",
        ))
        .unwrap();
    assert!(
        response.results[0].text.contains("6710亿"),
        "{:?}",
        response.results.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
    // Its words translate into words the reports use (水, 水平), but the reports never
    // answer it: the relevance decision weighs the question's own words.
    let answer = ask(
        &engine,
        &AskRequest {
            question: "What is the boiling point of water at sea level?".to_string(),
            k: DEFAULT_ANSWER_PASSAGES,
            source: None,
            mode: None,
        },
    )
    .unwrap();
    assert!(!answer.found, "{answer:?}");
}
