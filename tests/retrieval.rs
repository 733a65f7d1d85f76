//! Retrieval through the public API with a deterministic stand-in encoder
//! ([`common::BigramEncoder`]): fusion, explained ranks, the source filter in dense
//! mode and unavailable modes, all without the real model (they run in debug builds).

mod common;

use std::sync::{Arc, OnceLock};

use common::BigramEncoder;
use wenda::retrieve::{Engine, Fusion, Mode, SearchRequest, fuse};
use wenda::{Error, ErrorCode};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<(tempfile::TempDir, Engine)> = OnceLock::new();
    &ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let engine = common::engine(dir.path().to_path_buf(), Some(Arc::new(BigramEncoder)));
            (dir, engine)
        })
        .1
}

fn request(query: &str, mode: Mode, k: usize) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        k,
        mode: Some(mode),
        source: None,
    }
}

const QUESTION: &str = "大模型在金融行业的风险控制应用";

#[test]
fn the_default_mode_is_hybrid_with_an_encoder_and_bm25_without() {
    assert_eq!(engine().default_mode(), Mode::Hybrid);
    let response = engine().search(&SearchRequest::new(QUESTION)).unwrap();
    assert_eq!(response.mode, Mode::Hybrid);

    let dir = tempfile::tempdir().unwrap();
    let lexical = common::engine(dir.path().to_path_buf(), None);
    assert_eq!(lexical.default_mode(), Mode::Bm25);
    assert_eq!(lexical.modes(), vec![Mode::Bm25]);
    let response = lexical.search(&SearchRequest::new(QUESTION)).unwrap();
    assert_eq!(response.mode, Mode::Bm25);
    for mode in [Mode::Dense, Mode::Hybrid] {
        match lexical.search(&request(QUESTION, mode, 5)) {
            Err(Error::InvalidRequest { code, message }) => {
                assert_eq!(code, ErrorCode::ModeUnavailable);
                assert!(message.contains("bm25"), "{message}");
            }
            other => panic!("{mode}: expected mode_unavailable, got {other:?}"),
        }
    }
}

#[test]
fn hybrid_ranks_are_the_fusion_of_the_single_mode_rankings() {
    let e = engine();
    let depth = wenda::retrieve::FUSION_CANDIDATES;
    let bm25 = e
        .rank(&request(QUESTION, Mode::Bm25, depth), e.fusion(), None)
        .unwrap();
    let dense = e
        .rank(&request(QUESTION, Mode::Dense, depth), e.fusion(), None)
        .unwrap();
    let pairs = |r: &wenda::retrieve::Ranking| -> Vec<(u32, f32)> {
        r.passages.iter().map(|p| (p.ord, p.score)).collect()
    };
    for fusion in [
        Fusion::Rrf { k: 60.0 },
        Fusion::Weighted { dense_weight: 0.4 },
    ] {
        let hybrid = e
            .rank(&request(QUESTION, Mode::Hybrid, 10), fusion, None)
            .unwrap();
        let expected = fuse(&pairs(&bm25), &pairs(&dense), fusion);
        let got: Vec<u32> = hybrid.passages.iter().map(|p| p.ord).collect();
        let want: Vec<u32> = expected.iter().take(10).map(|p| p.0).collect();
        assert_eq!(got, want, "{fusion:?}");
        // Every hit explains itself with the single-mode ranks.
        for p in &hybrid.passages {
            assert!(p.bm25.is_some() || p.dense.is_some());
            if let Some(b) = p.bm25 {
                assert_eq!(bm25.passages[b.rank - 1].ord, p.ord);
                assert_eq!(bm25.passages[b.rank - 1].score, b.score);
            }
            if let Some(d) = p.dense {
                assert_eq!(dense.passages[d.rank - 1].ord, p.ord);
            }
        }
    }
}

#[test]
fn presentation_keeps_the_ranking_order_and_highlights_query_words() {
    let e = engine();
    let ranking = e
        .rank(&request(QUESTION, Mode::Hybrid, 5), e.fusion(), None)
        .unwrap();
    let ords: Vec<u32> = ranking.passages.iter().map(|p| p.ord).collect();
    let response = e.present(ranking).unwrap();
    assert_eq!(response.results.len(), 5);
    for (i, (hit, ord)) in response.results.iter().zip(&ords).enumerate() {
        assert_eq!(hit.rank, i + 1);
        assert_eq!(hit.id, e.passages()[*ord as usize].id);
    }
    assert!(response.results.iter().any(|h| h.snippet.contains("<b>")));
}

#[test]
fn dense_search_honours_the_source_filter() {
    let e = engine();
    let source = e.passages()[0].citation.source.clone();
    let mut req = request(QUESTION, Mode::Dense, 20);
    req.source = Some(source.clone());
    let response = e.search(&req).unwrap();
    assert_eq!(response.results.len(), 20);
    assert!(
        response.results.iter().all(|h| h.citation.source == source),
        "{:?}",
        response
            .results
            .iter()
            .map(|h| &h.citation.source)
            .collect::<Vec<_>>()
    );
    // Unfiltered, the same query reaches other reports too.
    let all = e.search(&request(QUESTION, Mode::Dense, 20)).unwrap();
    assert!(all.results.iter().any(|h| h.citation.source != source));
}

#[test]
fn a_precomputed_query_vector_gives_the_same_ranking() {
    let e = engine();
    let vector = e.embed_query(QUESTION).unwrap().unwrap();
    let req = request(QUESTION, Mode::Hybrid, 10);
    let a = e.rank(&req, e.fusion(), None).unwrap();
    let b = e.rank(&req, e.fusion(), Some(&vector)).unwrap();
    assert_eq!(a.passages, b.passages);
}

#[test]
fn every_readable_sentence_of_a_passage_has_a_vector_and_the_closest_is_the_question() {
    use wenda::corpus::readable_sentences;
    use wenda::embed::Encoder;
    let e = engine();
    let (ord, passage) = e
        .passages()
        .iter()
        .enumerate()
        .find(|(_, p)| readable_sentences(&p.text).len() >= 3)
        .expect("a passage with three readable sentences");
    let sentences = readable_sentences(&passage.text);
    // Asking with one of its sentences: that sentence is the closest in meaning.
    let target = sentences.len() / 2;
    let qv = BigramEncoder.encode_query(&sentences[target]).unwrap();
    let cosines = e.sentence_similarities(ord as u32, &qv).unwrap();
    assert_eq!(cosines.len(), sentences.len());
    let best = (0..cosines.len())
        .max_by(|a, b| cosines[*a].total_cmp(&cosines[*b]))
        .unwrap();
    assert_eq!(best, target, "{cosines:?}");
    // The manifest counts every readable sentence of every passage.
    assert_eq!(e.manifest().sentences, {
        let total: usize = e
            .passages()
            .iter()
            .map(|p| readable_sentences(&p.text).len())
            .sum();
        total
    });
}

/// [`BigramEncoder`] counting the queries it embeds.
struct CountingEncoder(std::sync::atomic::AtomicUsize);

impl wenda::embed::Encoder for CountingEncoder {
    fn model_id(&self) -> &str {
        BigramEncoder.model_id()
    }
    fn dim(&self) -> usize {
        BigramEncoder.dim()
    }
    fn encode_query(&self, query: &str) -> wenda::Result<Vec<f32>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        BigramEncoder.encode_query(query)
    }
    fn encode_passages(
        &self,
        texts: &[&str],
        progress: &dyn wenda::progress::Progress,
    ) -> wenda::Result<Vec<Vec<f32>>> {
        BigramEncoder.encode_passages(texts, progress)
    }
}

#[test]
fn a_question_asked_again_is_embedded_once() {
    use wenda::retrieve::CacheOutcome;
    let dir = tempfile::tempdir().unwrap();
    let counter = Arc::new(CountingEncoder(Default::default()));
    let e = common::engine(dir.path().to_path_buf(), Some(counter.clone()));
    let embedded = || counter.0.load(std::sync::atomic::Ordering::SeqCst);
    let first = e.search(&request(QUESTION, Mode::Hybrid, 5)).unwrap();
    assert_eq!(first.timings.query_cache, Some(CacheOutcome::Miss));
    assert_eq!(embedded(), 1);
    // The same question with other spacing, in another mode and through ask: cached.
    let spaced = format!("  {QUESTION}\t ");
    let again = e.search(&request(&spaced, Mode::Dense, 5)).unwrap();
    assert_eq!(again.timings.query_cache, Some(CacheOutcome::Hit));
    let ask = wenda::answer::AskRequest {
        question: QUESTION.into(),
        k: 5,
        source: None,
        mode: None,
    };
    wenda::answer::ask(&e, &ask).unwrap();
    assert_eq!(embedded(), 1, "the model ran again for a cached question");
    let ids = |r: &wenda::retrieve::SearchResponse| -> Vec<String> {
        r.results.iter().map(|h| h.id.clone()).collect()
    };
    let hybrid_again = e.search(&request(QUESTION, Mode::Hybrid, 5)).unwrap();
    assert_eq!(ids(&first), ids(&hybrid_again));
    // BM25 needs no vector; a new question is a miss; clearing forgets.
    let bm25 = e.search(&request(QUESTION, Mode::Bm25, 5)).unwrap();
    assert_eq!(bm25.timings.query_cache, None);
    e.search(&request("医疗行业的智能诊断", Mode::Dense, 5))
        .unwrap();
    assert_eq!(embedded(), 2);
    e.clear_query_cache();
    let cleared = e.search(&request(QUESTION, Mode::Dense, 5)).unwrap();
    assert_eq!(cleared.timings.query_cache, Some(CacheOutcome::Miss));
    assert_eq!(embedded(), 3);
}

#[test]
fn an_english_question_searches_the_chinese_words_of_its_english() {
    let e = engine();
    let question = "When computing power is insufficient, what do companies rent?";
    let concepts = e.translate(question);
    assert!(
        concepts.iter().any(|c| c.chinese == ["算力"]),
        "{concepts:?}"
    );
    let terms = e.query_terms(question);
    assert!(terms.iter().any(|t| t == "算力"), "{terms:?}");
    // BM25 alone now finds the reports' passages on computing power.
    let response = e.search(&request(question, Mode::Bm25, 5)).unwrap();
    assert!(!response.results.is_empty());
    assert!(
        response
            .results
            .iter()
            .take(3)
            .all(|h| h.text.contains("算力")),
        "{:?}",
        response.results.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
    // A Chinese question is searched by its own words only.
    let chinese = "算力不足时企业怎么办";
    assert_eq!(e.query_terms(chinese), e.analyzer().query_terms(chinese));
    assert!(e.translate("大模型").is_empty());
}

#[test]
fn a_search_response_lists_the_terms_it_searched() {
    let e = engine();
    let response = e
        .search(&request("computing power for companies", Mode::Bm25, 3))
        .unwrap();
    assert!(
        response.terms.iter().any(|t| t == "算力"),
        "{:?}",
        response.terms
    );
    assert!(
        response.terms.iter().any(|t| t == "computing"),
        "{:?}",
        response.terms
    );
    let json = serde_json::to_value(&response).unwrap();
    assert!(json["terms"].as_array().unwrap().len() >= 2);
}

#[test]
fn an_english_question_is_embedded_with_the_chinese_words_of_its_english() {
    let e = engine();
    let question = "When computing power is insufficient, what do companies rent?";
    let bilingual = e
        .bilingual_query(question)
        .expect("the glossary knows its words");
    assert!(bilingual.starts_with(question), "{bilingual}");
    assert!(bilingual.contains("算力"), "{bilingual}");
    // Names are left out (Belle is no common word), a Chinese question is embedded as is.
    let named = e
        .bilingual_query("How many stores does Belle Fashion have?")
        .unwrap_or_default();
    assert!(!named.contains("时尚"), "{named}");
    assert_eq!(e.bilingual_query("算力不足时企业怎么办"), None);
    // Dense retrieval searches with the bilingual text's vector.
    use wenda::embed::Encoder;
    let ranking = e
        .rank(&request(question, Mode::Dense, 3), Fusion::default(), None)
        .unwrap();
    assert_eq!(
        ranking.query_vector,
        Some(BigramEncoder.encode_query(&bilingual).unwrap())
    );
}

#[test]
fn an_english_question_s_confidence_is_measured_with_its_own_vector() {
    use wenda::embed::Encoder;
    let e = engine();
    let question = "When computing power is insufficient, what do companies rent?";
    let stats = |query: &str, vector: Option<&[f32]>| {
        e.rank(&request(query, Mode::Dense, 5), Fusion::default(), vector)
            .unwrap()
            .dense_stats
            .expect("dense statistics")
    };
    let own = BigramEncoder.encode_query(question).unwrap();
    let bilingual = e.bilingual_query(question).unwrap();
    // Searched with the bilingual text, judged as the English question alone would be.
    assert_eq!(stats(question, None), stats(question, Some(&own)));
    assert_ne!(stats(question, None), stats(&bilingual, None));
}
