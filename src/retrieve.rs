//! Retrieval: BM25, dense and hybrid search over a [`StoredIndex`], with
//! explainable scores and per-stage timings. [`Engine`] is the one entry
//! point the CLI, the server and the evaluation call.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, Concept, Glossary, romanization};
use crate::cluster::{ClusterStore, StoreConfig};
use crate::corpus::{Citation, Corpus, Passage, clean_for_reading, is_han};
use crate::embed::Encoder;
use crate::error::{Error, ErrorCode, Result};
use crate::index::{self, Expectation, StoredIndex};
use crate::progress::Progress;

/// Longest accepted query, in characters: far above any real question (the
/// dev set's longest is under 60), low enough to bound analysis and embedding cost.
pub const MAX_QUERY_CHARS: usize = 2000;

/// Largest `k` a caller may ask for.
pub const MAX_K: usize = 100;

/// Default number of results.
pub const DEFAULT_K: usize = 10;

/// How many candidates each retriever contributes to fusion: deep enough
/// that a passage ranked low by one retriever but high by the other still
/// meets, as in the RRF paper's setups (top 100–1000).
pub const FUSION_CANDIDATES: usize = 100;

/// The RRF constant k from Cormack, Clarke & Büttcher (SIGIR 2009), who found 60
/// robust across collections.
pub const RRF_K: f32 = 60.0;

/// Weight of the dense score in weighted fusion (BM25 gets `1 - weight`);
/// both scores are first min–max normalized over the candidates (the convex
/// combination of Bruch et al., "An Analysis of Fusion Functions for Hybrid
/// Retrieval", TOIS 2023, which beats RRF when the weight is tuned). On the
/// dev set, MRR@10 was 0.799 / 0.818 / 0.837 / 0.808 / 0.789 for weights
/// 0.2–0.6 (RRF k=60: 0.768). On drcd-dev nDCG@10 was 0.969 / 0.970 for
/// 0.3 / 0.4, above BM25 alone (0.957) and RRF k=60 (0.943); on cmrc2018-dev
/// 0.992 at 0.4, above BM25 (0.986) and RRF k=60 (0.984).
pub const DENSE_WEIGHT: f32 = 0.4;

/// Which retrievers answer a query: `bm25` (words), `dense` (embedding similarity) or
/// `hybrid` (both, fused).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Default,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 over jieba tokens only.
    #[value(alias = "lexical")]
    Bm25,
    /// Embedding cosine only.
    #[value(alias = "vector")]
    Dense,
    /// Both, fused.
    #[default]
    Hybrid,
}

impl Mode {
    /// Every mode, in the order reports list them.
    pub const ALL: [Mode; 3] = [Mode::Bm25, Mode::Dense, Mode::Hybrid];

    /// The mode's name as used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bm25 => "bm25",
            Mode::Dense => "dense",
            Mode::Hybrid => "hybrid",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bm25" | "lexical" => Ok(Mode::Bm25),
            "dense" | "vector" => Ok(Mode::Dense),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(Error::invalid(
                ErrorCode::UnknownMode,
                format!("unknown mode {other:?}: use bm25, dense or hybrid"),
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How BM25 and dense rankings are combined in hybrid mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Fusion {
    /// Reciprocal rank fusion: sum of 1 / (k + rank).
    Rrf {
        /// The RRF constant.
        k: f32,
    },
    /// Convex combination of min–max normalized scores.
    Weighted {
        /// Weight of the dense score.
        dense_weight: f32,
    },
    /// Weighted fusion whose dense weight follows the question: its script sets the base,
    /// `dense_weight` for a question with Chinese characters, at least
    /// [`CROSS_LINGUAL_DENSE_WEIGHT`] for one without any (its BM25 side searches
    /// dictionary translations); how far dense's best passage stands out scales it
    /// ([`DENSE_MARGIN_REFERENCE`]).
    Adaptive {
        /// Weight of the dense score for a question in Chinese.
        dense_weight: f32,
    },
}

/// Dense weight of [`Fusion::Adaptive`] for a question not in Chinese. Its BM25 side
/// searches the Chinese words a bilingual glossary gives for its English words
/// ([`Engine::query_terms`]): a guess per word, so dense counts a little more than for a
/// Chinese question. On dev-en.jsonl plus the three English questions of dev.jsonl (15),
/// hybrid R@5 / MRR@10 were 0.667 / 0.578 at 0.4, 0.733 / 0.633 at 0.45, 0.733 / 0.602 at
/// 0.5, 0.667 / 0.596 at 0.6, 0.667 / 0.564 at 0.7; dense alone 0.600 / 0.447. Before the
/// glossary (BM25 R@5 0.083 on dev-en, only the reports' English lines) the best weight
/// was 0.8. An English question that quotes a Chinese term ("Tencent's few-shot digital
/// human (数智人)") keeps the Chinese weight: that term is what finds the passage.
pub const CROSS_LINGUAL_DENSE_WEIGHT: f32 = 0.45;

/// The dense margin (best cosine minus the mean at [`DENSE_BACKGROUND_RANKS`]) at which
/// [`Fusion::Adaptive`] keeps its base dense weight; the weight scales with the margin
/// over this, within [`DENSE_WEIGHT_SCALE`]. When no passage stands out in meaning, the
/// dense order is close to noise and BM25's exact words should decide; when one does,
/// dense should count more. Measured with multilingual-e5-small (another model needs it
/// measured again): dev margins run 0.011–0.058 (quartiles 0.019 / 0.030 / 0.038). On dev
/// hybrid MRR@10 (paraphrase MRR, dev-en R@5) was 0.878 (0.790, 0.750) without scaling and
/// 0.883 (0.853, 0.750) at 0.015, 0.889 (0.821, 0.750) at 0.02, 0.889 (0.819, 0.833) at
/// 0.0225, 0.886 (0.812, 0.833) at 0.025 and 0.0275, 0.886 (0.812, 0.833) at 0.03, 0.848
/// (0.750, 0.750) at 0.035: 0.02 is inside the plateau, at about the lower quartile.
pub const DENSE_MARGIN_REFERENCE: f32 = 0.02;

/// Bounds on the factor [`DENSE_MARGIN_REFERENCE`] applies to the base dense weight
/// (0.4 → 0.3–0.5). Wider bounds (0.5–1.5) gave the same dev MRR and lost one question at
/// rank 10.
pub const DENSE_WEIGHT_SCALE: std::ops::RangeInclusive<f32> = 0.75..=1.25;

impl Fusion {
    /// Short name used in reports: `rrf60`, `weighted0.3`.
    pub fn label(&self) -> String {
        match self {
            Fusion::Rrf { k } => format!("rrf{k}"),
            Fusion::Weighted { dense_weight } => format!("weighted{dense_weight}"),
            Fusion::Adaptive { dense_weight } => format!("adaptive{dense_weight}"),
        }
    }

    /// The fusion to use for `query`, given what dense retrieval saw for it:
    /// [`Fusion::Adaptive`] becomes the weighted fusion for the query's language and
    /// dense margin; the others stay as they are.
    pub fn for_query(self, query: &str, dense: Option<DenseStats>) -> Fusion {
        match self {
            Fusion::Adaptive { dense_weight } => {
                let base = if query.chars().any(is_han) {
                    dense_weight
                } else {
                    dense_weight.max(CROSS_LINGUAL_DENSE_WEIGHT)
                };
                let scale = dense.map_or(1.0, |d| {
                    ((d.top - d.background) / DENSE_MARGIN_REFERENCE)
                        .clamp(*DENSE_WEIGHT_SCALE.start(), *DENSE_WEIGHT_SCALE.end())
                });
                Fusion::Weighted {
                    // A NaN margin (a damaged vector) keeps the base weight.
                    dense_weight: if scale.is_nan() {
                        base
                    } else {
                        (base * scale).min(1.0)
                    },
                }
            }
            other => other,
        }
    }
}

impl FromStr for Fusion {
    type Err = Error;
    /// Parses `rrf`, `rrf:K`, `weighted`, `weighted:W`, `adaptive` or `adaptive:W`
    /// (W = dense weight in 0..=1).
    fn from_str(s: &str) -> Result<Fusion> {
        let bad = || {
            Error::invalid(
                ErrorCode::UnknownFusion,
                format!(
                    "unknown fusion {s:?}: use rrf, rrf:K (K > 0), weighted, weighted:W, adaptive or adaptive:W (0 <= W <= 1)"
                ),
            )
        };
        let (name, value) = match s.trim().split_once(':') {
            Some((n, v)) => (n, Some(v.parse::<f32>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("rrf", None) => Ok(Fusion::Rrf { k: RRF_K }),
            ("rrf", Some(k)) if k > 0.0 => Ok(Fusion::Rrf { k }),
            ("weighted", None) => Ok(Fusion::Weighted {
                dense_weight: DENSE_WEIGHT,
            }),
            ("weighted", Some(w)) if (0.0..=1.0).contains(&w) => {
                Ok(Fusion::Weighted { dense_weight: w })
            }
            ("adaptive", None) => Ok(Fusion::Adaptive {
                dense_weight: DENSE_WEIGHT,
            }),
            ("adaptive", Some(w)) if (0.0..=1.0).contains(&w) => {
                Ok(Fusion::Adaptive { dense_weight: w })
            }
            _ => Err(bad()),
        }
    }
}

impl Default for Fusion {
    /// Adaptive fusion with [`DENSE_WEIGHT`] for Chinese questions: weighted fusion was
    /// better than RRF on every set we measured, and English questions need the dense side.
    fn default() -> Self {
        Fusion::Adaptive {
            dense_weight: DENSE_WEIGHT,
        }
    }
}

/// One search as a caller asks for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The question or keywords.
    pub query: String,
    /// Number of results (1..=[`MAX_K`]).
    pub k: usize,
    /// Retrieval mode; `None` is the engine's default ([`Engine::default_mode`]).
    pub mode: Option<Mode>,
    /// Restrict to one corpus file.
    pub source: Option<String>,
}

impl SearchRequest {
    /// A request with default `k` and mode.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: query.into(),
            k: DEFAULT_K,
            mode: None,
            source: None,
        }
    }
}

/// Rank (1-based) and score a passage got from one retriever.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RankedScore {
    /// 1-based rank among that retriever's candidates.
    #[schema(minimum = 1)]
    pub rank: usize,
    /// That retriever's score.
    pub score: f32,
}

/// One passage of a [`Ranking`]: its ordinal, final score and what each retriever said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedPassage {
    /// Ordinal of the passage in the index.
    pub ord: u32,
    /// Final score (BM25, cosine, or fused, by mode).
    pub score: f32,
    /// What BM25 said, when it found this passage.
    pub bm25: Option<RankedScore>,
    /// What dense retrieval said, when it found this passage.
    pub dense: Option<RankedScore>,
}

/// The ranking step's result: ordinals and scores, no text. Evaluation and answers
/// consume it directly; [`Engine::present`] turns it into hits with snippets for people.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// The query as given.
    pub query: String,
    /// The terms BM25 searched, for snippets and term weights: the query's analysed words
    /// (jieba) first, then the Chinese words of its translations, or for a Chinese query
    /// the abbreviations the collection writes for its words ([`Engine::query_terms`]).
    pub terms: Vec<String>,
    /// How many of `terms`, from the start, are the query's own words.
    pub own_terms: usize,
    /// The mode actually used.
    pub mode: Mode,
    /// Best first, at most `k`.
    pub passages: Vec<RankedPassage>,
    /// Time per stage so far (snippets not yet made).
    pub timings: StageTimings,
    /// Dense scores' summary, when dense retrieval ran: for an English question, of its
    /// own vector, not the bilingual one it was ranked with ([`Engine::bilingual_query`]).
    pub dense_stats: Option<DenseStats>,
    /// The vector dense retrieval ranked with, when it ran (answers compare sentences with
    /// it): for an English question, its bilingual text's ([`Engine::bilingual_query`]).
    pub query_vector: Option<Vec<f32>>,
    /// Milliseconds the ranking took.
    pub took_ms: f64,
}

/// One ranked passage, ready to show.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hit {
    /// 1-based rank in the final list.
    #[schema(minimum = 1)]
    pub rank: usize,
    /// Passage id (`<file stem>#<ordinal>`).
    pub id: String,
    /// Final score (BM25, cosine, or fused, by mode).
    pub score: f32,
    /// The cleaned passage as it was indexed: PDF line wraps joined, page headers,
    /// page numbers and U+FFFD left out. It is not byte-for-byte the file; the exact
    /// cited slice is characters `citation.char_start..citation.char_end` of
    /// `citation.source`.
    pub text: String,
    /// HTML snippet with matched words in `<b>`.
    pub snippet: String,
    /// Where the passage lies in its report.
    pub citation: Citation,
    /// What BM25 said, when it found this passage (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub bm25: Option<RankedScore>,
    /// What dense retrieval said, when it found this passage (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dense: Option<RankedScore>,
}

/// Dense ranks past which scores count as the query's background similarity: with
/// multilingual-e5-small every Chinese query scores 0.8–0.9 against any passage, so how
/// far the best passage stands out from ranks 11–50 says more than its raw score.
pub const DENSE_BACKGROUND_RANKS: std::ops::Range<usize> = 10..50;

/// Share of a passage's dense score that comes from its closest readable sentence (the
/// sentence vectors answers are made from), the rest from the passage's own vector: one
/// vector for a whole passage blurs the one sentence a question is about. Measured with
/// the adaptive fusion, hybrid nDCG@10 on drcd-dev / cmrc2018-dev and R@5 / MRR@10 on dev:
///
/// | share | drcd | cmrc | dev | dev paraphrase |
/// |---|---|---|---|---|
/// | 0 | 0.972 | 0.993 | 0.925 / 0.889 | 0.875 / 0.821 |
/// | 0.3 | 0.979 | 0.995 | 0.950 / 0.900 | 0.938 / 0.849 |
/// | 0.35 | 0.980 (0.9798) | — | 0.950 / 0.898 | 0.938 / 0.844 |
/// | 0.4 | 0.980 (0.9802) | 0.994 | 0.950 / 0.886 | 0.938 / 0.844 |
/// | 0.5 | 0.981 | — | 0.950 / 0.859 | 0.938 / 0.776 |
///
/// Traditional-Chinese drcd gains with the share and dev's first ranks lose past 0.35;
/// 0.4 is where both stay at their targets (drcd 0.98, dev MRR 0.88). The passage's best
/// cosine and the background of [`DenseStats`] stay passage-level: the answer gate and
/// the adaptive fusion are fitted on them.
pub const SENTENCE_SHARE: f32 = 0.4;

/// What dense retrieval saw for a query, beyond the passages kept: the best cosine and
/// the mean cosine at [`DENSE_BACKGROUND_RANKS`] (the answer gate uses both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseStats {
    /// Cosine of the best passage.
    pub top: f32,
    /// Mean cosine at ranks 11–50 (see `dense_stats_of` for short rankings).
    pub background: f32,
    /// Whether all of ranks 11–50 were there to measure the background: in a collection
    /// (or report searched) of fewer passages it is the mean of the least similar few, and
    /// the margin over it is not comparable with a large collection's.
    pub full_background: bool,
}

/// Milliseconds spent in each stage of one search.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageTimings {
    /// Query analysis (jieba).
    #[schema(minimum = 0)]
    pub analysis_ms: f64,
    /// BM25 search.
    #[schema(minimum = 0)]
    pub bm25_ms: f64,
    /// Query embedding.
    #[schema(minimum = 0)]
    pub embedding_ms: f64,
    /// Dense top-k.
    #[schema(minimum = 0)]
    pub dense_ms: f64,
    /// Fusion of the two rankings.
    #[schema(minimum = 0)]
    pub fusion_ms: f64,
    /// Snippets and result assembly.
    #[schema(minimum = 0)]
    pub snippets_ms: f64,
    /// Whether the query vector came from the query cache (`hit`) or the model (`miss`);
    /// absent when no vector was needed or the caller supplied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_cache: Option<CacheOutcome>,
}

/// Whether a query vector was found in [`Engine`]'s query cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    /// Found: the model did not run.
    Hit,
    /// Not found: the model ran and the vector was kept.
    Miss,
}

/// Query vectors kept by an [`Engine`] (least recently used dropped first): the page
/// asks `/api/search` and `/api/ask` with the same question, and people repeat
/// questions, so the model runs once per distinct question. 1024 vectors of 384 f32 are
/// 1.5 MB.
pub const QUERY_CACHE_ENTRIES: usize = 1024;

/// The answer to a search request: the best passages first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResponse {
    /// The query as given.
    pub query: String,
    /// The mode actually used.
    pub mode: Mode,
    /// The words BM25 searched and the snippets highlight: the query's analysed words
    /// and, for a question without Chinese characters, the Chinese words the collection
    /// uses for its English words and phrases (dictionary translations); for a Chinese
    /// question, the abbreviations the collection writes for words it lacks (个人电脑 → pc).
    pub terms: Vec<String>,
    /// Total time in milliseconds.
    #[schema(minimum = 0)]
    pub took_ms: f64,
    /// Time per stage.
    pub timings: StageTimings,
    /// Ranked passages, best first (at most k; empty when nothing matches).
    pub results: Vec<Hit>,
}

/// Whether opening may (re)build a missing or stale index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildPolicy {
    /// Rebuild when missing or stale (with a log line saying why).
    IfNeeded,
    /// Never build: a missing or stale index is an error naming the command to run.
    Never,
}

/// Where the engine finds its index and how it ranks.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Folder holding the index.
    pub index_dir: PathBuf,
    /// Whether a missing or stale index may be built.
    pub rebuild: RebuildPolicy,
    /// Fusion used in hybrid mode.
    pub fusion: Fusion,
    /// Query vectors the engine keeps ([`QUERY_CACHE_ENTRIES`] by default; 0: none).
    pub query_cache_entries: usize,
    /// Which store answers BM25 and dense top-k: the embedded index, or a cluster.
    pub store: StoreConfig,
}

/// The search engine: index (with its analyzer), optional embedder, fusion settings.
pub struct Engine {
    index: StoredIndex,
    /// The cluster answering top-k requests, when the store is a cluster; the embedded
    /// index answers otherwise.
    cluster: Option<ClusterStore>,
    encoder: Option<Arc<dyn Encoder>>,
    fusion: Fusion,
    /// Query vectors by model id and query ([`QUERY_CACHE_ENTRIES`]).
    query_vectors: QueryCache,
    /// [`Engine::folded_text`], made on first use.
    folded_text: std::sync::OnceLock<String>,
    /// [`Engine::folded_text`] as characters, for finding names read from pinyin.
    folded_chars: std::sync::OnceLock<Vec<char>>,
}

/// Query vectors by (model id, query with whitespace collapsed), least recently used
/// dropped first.
/// A top-k of (passage ordinal, score) and the milliseconds it took.
type TimedTopK = (Vec<(u32, f32)>, f64);

type QueryCache = Mutex<Option<LruCache<(String, String), Arc<Vec<f32>>>>>;

/// An empty query cache of `entries` vectors, or none for 0.
fn query_cache(entries: usize) -> QueryCache {
    Mutex::new(NonZeroUsize::new(entries).map(LruCache::new))
}

impl Engine {
    /// Opens (and, if allowed and needed, builds) the index for the corpus.
    pub fn open(
        config: &EngineConfig,
        corpus: &Corpus,
        encoder: Option<Arc<dyn Encoder>>,
        progress: &dyn Progress,
    ) -> Result<Engine> {
        let expected = Expectation {
            corpus_fingerprint: corpus.fingerprint().to_string(),
            model_id: encoder.as_ref().map(|e| e.model_id().to_string()),
        };
        let index = match index::open(&config.index_dir, &expected) {
            Ok(index) => index,
            Err(Error::IndexUnusable { problem, .. })
                if config.rebuild == RebuildPolicy::IfNeeded =>
            {
                tracing::info!(
                    "building the index at {}: {problem}",
                    config.index_dir.display()
                );
                index::build(
                    &config.index_dir,
                    corpus.passages(),
                    &corpus.report_labels(),
                    &expected.corpus_fingerprint,
                    encoder.as_deref(),
                    progress,
                )?
            }
            Err(e) => return Err(e),
        };
        let cluster = match &config.store {
            StoreConfig::Embedded => None,
            StoreConfig::Cluster(cluster) => Some(ClusterStore::open(
                cluster.clone(),
                &index,
                &corpus.report_labels(),
                progress,
            )?),
        };
        Ok(Engine {
            index,
            cluster,
            encoder,
            fusion: config.fusion,
            query_vectors: query_cache(config.query_cache_entries),
            folded_text: std::sync::OnceLock::new(),
            folded_chars: std::sync::OnceLock::new(),
        })
    }

    /// Builds an engine over arbitrary passages in `index_dir` (used for
    /// benchmark collections that are not our corpus).
    pub fn build_from_passages(
        index_dir: &Path,
        passages: &[Passage],
        encoder: Option<Arc<dyn Encoder>>,
        fusion: Fusion,
        progress: &dyn Progress,
    ) -> Result<Engine> {
        let index = index::build(
            index_dir,
            passages,
            &HashMap::new(),
            "external",
            encoder.as_deref(),
            progress,
        )?;
        Ok(Engine {
            index,
            cluster: None,
            encoder,
            fusion,
            query_vectors: query_cache(QUERY_CACHE_ENTRIES),
            folded_text: std::sync::OnceLock::new(),
            folded_chars: std::sync::OnceLock::new(),
        })
    }

    /// Cosine of each readable sentence of passage `ord`
    /// ([`crate::corpus::readable_sentences`], in order) with `query_vector`; `None`
    /// when the index has no sentence vectors.
    pub fn sentence_similarities(&self, ord: u32, query_vector: &[f32]) -> Option<Vec<f32>> {
        let sentences = self.index.sentences.as_ref()?;
        Some(sentences.similarities(ord as usize, query_vector))
    }

    /// The vector of `query` from the query cache, or from `encoder` (then kept). The key
    /// is the model id and the query with its whitespace collapsed, so a question asked
    /// again with other spacing is a hit.
    fn cached_query_vector(
        &self,
        encoder: &dyn Encoder,
        query: &str,
    ) -> Result<(Arc<Vec<f32>>, CacheOutcome)> {
        let key = (
            encoder.model_id().to_string(),
            query.split_whitespace().collect::<Vec<_>>().join(" "),
        );
        let lock = || self.query_vectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = lock().as_mut().and_then(|c| c.get(&key)) {
            return Ok((v.clone(), CacheOutcome::Hit));
        }
        // The model runs outside the lock, so concurrent queries do not wait on each other.
        let v = Arc::new(encoder.encode_query(query)?);
        if let Some(cache) = lock().as_mut() {
            cache.put(key, v.clone());
        }
        Ok((v, CacheOutcome::Miss))
    }

    /// Forgets every cached query vector (benchmarks measure the model's cost with it).
    pub fn clear_query_cache(&self) {
        if let Some(cache) = self
            .query_vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            cache.clear();
        }
    }

    /// The analyzer of the index (jieba with the collection's vocabulary): questions are
    /// analysed with it so their terms are the index's terms.
    pub fn analyzer(&self) -> &Analyzer {
        self.index.lexical.analyzer()
    }

    /// All passages of the index, in ordinal order.
    pub fn passages(&self) -> &[Passage] {
        &self.index.passages
    }

    /// The manifest of the index in use.
    pub fn manifest(&self) -> &index::Manifest {
        &self.index.manifest
    }

    /// Modes this engine can serve (dense needs the model and vectors).
    pub fn modes(&self) -> Vec<Mode> {
        if self.encoder.is_some() && self.index.dense.is_some() {
            Mode::ALL.to_vec()
        } else {
            vec![Mode::Bm25]
        }
    }

    /// The embedding model's id (`name@revision`), or None for a lexical-only engine: the
    /// answer's relevance thresholds depend on it ([`crate::answer::GateCalibration`]).
    pub fn model_id(&self) -> Option<&str> {
        self.encoder.as_deref().map(|e| e.model_id())
    }

    /// Number of passages containing an analysed term (for term weights).
    pub fn document_frequency(&self, term: &str) -> u64 {
        self.index.lexical.document_frequency(term)
    }

    /// The BM25 terms of `query`: its analysed words first, then, for a question without
    /// Chinese characters, the Chinese words the collection uses for its English words and
    /// phrases ([`Glossary::translate`]), so BM25 can match the reports; for a Chinese one,
    /// the abbreviations the collection writes for its words no passage holds
    /// ([`Engine::abbreviations_used`]).
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        self.searched_terms(query).0
    }

    /// [`Engine::query_terms`], and how many of them, from the start, are the query's own.
    fn searched_terms(&self, query: &str) -> (Vec<String>, usize) {
        let analyzer = self.analyzer();
        let mut terms = analyzer.query_terms(query);
        let own = terms.len();
        if !query.chars().any(is_han) {
            let concepts = self.translate(query);
            tracing::debug!(
                "translated {query:?}: {}",
                concepts
                    .iter()
                    .map(|c| format!("{}={}", c.english, c.chinese.join("|")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for concept in concepts {
                for word in concept.chinese {
                    for term in analyzer.query_terms(&word) {
                        if !terms.contains(&term) {
                            terms.push(term);
                        }
                    }
                }
            }
        } else {
            for term in self.abbreviations_used(&terms) {
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
        (terms, own)
    }

    /// The terms of the abbreviations this collection writes for those of `words` no
    /// passage contains ([`Glossary::abbreviations`]: 个人电脑 → pc, 光学字符识别 → ocr):
    /// the reports often write a concept as its abbreviation, and a question in words
    /// should find it.
    pub fn abbreviations_used(&self, words: &[String]) -> Vec<String> {
        let analyzer = self.analyzer();
        let mut found = Vec::new();
        for word in words {
            if self.document_frequency(word) > 0 {
                continue;
            }
            for abbreviation in Glossary::bundled().abbreviations(word) {
                for term in analyzer.query_terms(abbreviation) {
                    if self.document_frequency(&term) > 0 && !found.contains(&term) {
                        found.push(term);
                    }
                }
            }
        }
        found
    }

    /// For a query without Chinese that the glossary translates, the text embedded for
    /// dense retrieval: the query, then the Chinese words of its common words (names left
    /// out: [`Glossary::without_names`]). The multilingual model puts an English question
    /// far from Chinese text; its own words in the passages' language bring it near them
    /// (dense MRR@10 on dev-en.jsonl 0.409 → 0.594, on eval/en-answers.jsonl 0.519 → 0.659).
    /// The retrieval confidence is still measured with the query alone (see
    /// [`Engine::rank`]), where its calibration was made.
    pub fn bilingual_query(&self, query: &str) -> Option<String> {
        if query.chars().any(is_han) {
            return None;
        }
        let words: Vec<String> = self
            .translate(&Glossary::bundled().without_names(query))
            .into_iter()
            .flat_map(|c| c.chinese)
            .collect();
        (!words.is_empty()).then(|| format!("{query} {}", words.join(" ")))
    }

    /// The English words and phrases of `query` the bundled glossary knows, each with the
    /// Chinese words this collection uses most for it. A Chinese word counts as used when
    /// every one of its terms occurs; how much, by its rarest term's document frequency.
    pub fn translate(&self, query: &str) -> Vec<Concept> {
        let mut concepts =
            Glossary::bundled().translate(query, |word| self.translation_frequency(word));
        concepts.extend(self.pinyin_names(query));
        concepts
    }

    /// The names `query` writes in pinyin ([`romanization::pinyin_runs`]), each with the
    /// characters the collection writes it in, when it does ("Tongyi Qianwen" → 通义千问).
    /// A run the collection does not write whole is tried word by word ("Taikang Zhangbei"
    /// → 泰康, 张北).
    pub fn pinyin_names(&self, query: &str) -> Vec<Concept> {
        let runs = romanization::pinyin_runs(query, |w| Glossary::bundled().knows(w));
        if runs.is_empty() {
            return Vec::new();
        }
        let text = self
            .folded_chars
            .get_or_init(|| self.folded_text().chars().collect());
        // The spelling the collection writes most often among those the analyzer keeps as
        // words of two characters or more: one it cuts into single characters is a
        // chance run of syllables ("Meta" read as me ta finds 么他 in 为什么他们).
        let lookups = std::cell::Cell::new(0);
        let written = |words: &[String]| {
            lookups.set(lookups.get() + 1);
            if lookups.get() > romanization::MAX_NAME_LOOKUPS {
                return None;
            }
            romanization::spellings(words, text)
                .into_iter()
                .map(|(chinese, _)| chinese)
                .find(|chinese| {
                    let terms = self.analyzer().query_terms(chinese);
                    !terms.is_empty() && terms.iter().all(|t| t.chars().count() >= 2)
                })
                .map(|chinese| Concept {
                    english: words.join(" ").to_lowercase(),
                    chinese: vec![chinese],
                })
        };
        let mut concepts = Vec::new();
        for run in runs {
            match written(&run) {
                Some(concept) => concepts.push(concept),
                None if run.len() > 1 => {
                    concepts.extend(run.iter().filter_map(|w| written(std::slice::from_ref(w))))
                }
                None => {}
            }
        }
        concepts
    }

    /// How often the collection uses a Chinese word a glossary gives (its rarest term's
    /// document frequency), or None when it never writes it. A word the analyzer cuts
    /// into words of two characters or more is used when they all are (国家电网公司: the
    /// reports write 国家电网 and 公司); one cut into single characters too counts only
    /// where some passage has it whole, since single characters occur apart in any large
    /// text (风电厂 is 风 and 电厂, and the reports name no wind farm; 本日 is 本 and 日), and so
    /// does one left with a single character once its stop word is dropped (过人
    /// "outstanding" is 人 alone, which every report writes).
    fn translation_frequency(&self, word: &str) -> Option<u64> {
        // The glossary's words are simplified; the text is asked folded the same way.
        let terms = self.analyzer().query_terms(word);
        let rarest = terms.iter().map(|t| self.document_frequency(t)).min()?;
        let has_single_characters =
            word.chars().count() > 1 && terms.iter().any(|t| t.chars().count() == 1);
        if rarest == 0 || (has_single_characters && !self.folded_text().contains(word)) {
            return None;
        }
        Some(rarest)
    }

    /// The passages' text folded as the analyzer folds it ([`crate::analysis::fold_text`]:
    /// traditional → simplified, full width → half), one passage a line, made on the
    /// first English question: whether the collection writes a glossary word whole is
    /// asked of it, so that a report in traditional characters counts too.
    fn folded_text(&self) -> &str {
        self.folded_text.get_or_init(|| {
            self.passages()
                .iter()
                .map(|p| crate::analysis::fold_text(&p.text))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// The English words and two-word phrases of `query` whose translations the
    /// collection never uses ([`Glossary::unused_words_and_phrases`]): subjects the
    /// reports do not mention.
    pub fn unused_english_words(&self, query: &str) -> Vec<String> {
        // Which of some strings the passages' text holds, in one pass over it.
        let holds_any = |candidates: &[String]| -> bool {
            match aho_corasick::AhoCorasick::new(candidates) {
                Ok(automaton) => automaton.is_match(self.folded_text()),
                // Cannot search: take the phrase as said, so that nothing is refused for it.
                Err(_) => true,
            }
        };
        Glossary::bundled().unused_words_and_phrases(
            query,
            |word| self.translation_frequency(word),
            &holds_any,
        )
    }

    /// The fusion in use.
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// Checks a request and returns the trimmed query.
    pub fn validate<'a>(&self, request: &'a SearchRequest) -> Result<&'a str> {
        let q = request.query.trim();
        if q.is_empty() {
            return Err(Error::invalid(
                ErrorCode::EmptyQuery,
                "the query is empty: type a question or keywords",
            ));
        }
        // Counted before trimming, as the OpenAPI document's maxLength counts.
        let n = request.query.chars().count();
        if n > MAX_QUERY_CHARS {
            return Err(Error::invalid(
                ErrorCode::QueryTooLong,
                format!("the query has {n} characters; the limit is {MAX_QUERY_CHARS}"),
            ));
        }
        if !Analyzer::has_searchable_chars(q) {
            return Err(Error::invalid(
                ErrorCode::NoSearchableText,
                "the query has no letters, digits or Chinese characters to search for",
            ));
        }
        if request.k == 0 || request.k > MAX_K {
            return Err(Error::invalid(
                ErrorCode::BadK,
                format!("k must be between 1 and {MAX_K}, got {}", request.k),
            ));
        }
        if let Some(mode) = request.mode
            && !self.modes().contains(&mode)
        {
            return Err(Error::invalid(
                ErrorCode::ModeUnavailable,
                format!(
                    "mode {mode} needs the embedding model and passage vectors; run `wenda index` with the model available, or use mode bm25"
                ),
            ));
        }
        if let Some(src) = &request.source
            && !self
                .index
                .passages
                .iter()
                .any(|p| &p.citation.source == src)
        {
            return Err(Error::invalid(
                ErrorCode::UnknownSource,
                format!("no report named {src:?}; see the list of documents for valid names"),
            ));
        }
        Ok(q)
    }

    /// The mode used when a request names none: hybrid where the model and vectors are
    /// loaded, else BM25.
    pub fn default_mode(&self) -> Mode {
        if self.modes().contains(&Mode::Hybrid) {
            Mode::Hybrid
        } else {
            Mode::Bm25
        }
    }

    /// Runs one search: ranking, then presentation.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        self.present(self.rank(request, self.fusion, None)?)
    }

    /// The vector dense retrieval ranks `query` with (None without a model): its
    /// bilingual text's for an English question ([`Engine::bilingual_query`]). A caller
    /// running the same query in several modes embeds it once.
    pub fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>> {
        match &self.encoder {
            Some(e) => {
                let query = query.trim();
                let text = self.bilingual_query(query);
                Ok(Some(e.encode_query(text.as_deref().unwrap_or(query))?))
            }
            None => Ok(None),
        }
    }

    /// Ranks passages for a request with `fusion` in hybrid mode, reusing `query_vector`
    /// from [`Engine::embed_query`] when given. No texts or snippets: see [`Engine::present`].
    pub fn rank(
        &self,
        request: &SearchRequest,
        fusion: Fusion,
        query_vector: Option<&[f32]>,
    ) -> Result<Ranking> {
        let started = Instant::now();
        let query = self.validate(request)?;
        let mode = request.mode.unwrap_or_else(|| self.default_mode());
        let mut timings = StageTimings::default();
        let source = request.source.as_deref();
        let passages = &self.index.passages;
        let depth = match mode {
            Mode::Hybrid => FUSION_CANDIDATES.max(request.k),
            _ => request.k,
        };

        let t = Instant::now();
        let (terms, own_terms) = self.searched_terms(query);
        timings.analysis_ms = ms(t);

        // With a cluster, hybrid sends its BM25 request beside the query embedding and the
        // dense request, so the two round trips overlap; the embedded store answers BM25 in
        // about a millisecond and keeps the sequential order.
        let concurrent_bm25 = mode == Mode::Hybrid && self.cluster.is_some();
        let mut bm25 = Vec::new();
        if mode != Mode::Dense && !concurrent_bm25 {
            let t = Instant::now();
            bm25 = match &self.cluster {
                None => self
                    .index
                    .lexical
                    .search(&terms, depth, source)?
                    .into_iter()
                    .map(|h| (h.ord, h.score))
                    .collect(),
                Some(cluster) => cluster.bm25_top_k(&terms, depth, source)?,
            };
            timings.bm25_ms = ms(t);
        }
        let mut dense = Vec::new();
        let mut dense_stats = None;
        let mut used_vector: Option<Vec<f32>> = None;
        let background_bm25 = std::thread::scope(|scope| -> Result<Option<TimedTopK>> {
            let task = match (&self.cluster, concurrent_bm25) {
                (Some(cluster), true) => Some(scope.spawn(|| {
                    let t = Instant::now();
                    cluster
                        .bm25_top_k(&terms, depth, source)
                        .map(|r| (r, ms(t)))
                })),
                _ => None,
            };
            if mode != Mode::Bm25 {
                let (Some(encoder), Some(vectors)) = (&self.encoder, &self.index.dense) else {
                    return Err(Error::invalid(
                        ErrorCode::ModeUnavailable,
                        "dense retrieval is not available",
                    ));
                };
                let t = Instant::now();
                let bilingual = self.bilingual_query(query);
                let qv = match query_vector {
                    Some(v) => v.to_vec(),
                    None => {
                        let text = bilingual.as_deref().unwrap_or(query);
                        let (v, outcome) = self.cached_query_vector(encoder.as_ref(), text)?;
                        timings.query_cache = Some(outcome);
                        v.as_ref().clone()
                    }
                };
                // The confidence and the fusion's margin were calibrated on the query's own
                // vector, whose closeness to the passages says how well it is covered; the
                // bilingual text is nearer to every Chinese passage, an off-topic question
                // too ("Which team won the 2023 NBA finals? 团队 最终").
                let own = match &bilingual {
                    Some(_) => Some(self.cached_query_vector(encoder.as_ref(), query)?.0),
                    None => None,
                };
                timings.embedding_ms = ms(t);
                let t = Instant::now();
                let keep =
                    |ord: u32| source.is_none_or(|s| passages[ord as usize].citation.source == s);
                let fetched = depth.max(DENSE_BACKGROUND_RANKS.end);
                let top_k = |v: &[f32]| -> Result<Vec<(u32, f32)>> {
                    Ok(match &self.cluster {
                        None => vectors
                            .top_k(v, fetched, &keep)
                            .into_iter()
                            .map(|h| (h.ord, h.score))
                            .collect(),
                        Some(cluster) => cluster.dense_top_k(v, fetched, source)?,
                    })
                };
                dense = top_k(&qv)?;
                dense_stats = match &own {
                    Some(v) => dense_stats_of(&top_k(v)?),
                    None => dense_stats_of(&dense),
                };
                // Every candidate fetched is rescored before the list is cut to its depth.
                if let Some(sentences) = self.index.sentences.as_ref() {
                    for (ord, score) in dense.iter_mut() {
                        let best = sentences
                            .similarities(*ord as usize, &qv)
                            .into_iter()
                            .fold(f32::NEG_INFINITY, f32::max);
                        if best.is_finite() {
                            *score = (1.0 - SENTENCE_SHARE) * *score + SENTENCE_SHARE * best;
                        }
                    }
                    dense.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                }
                dense.truncate(depth);
                used_vector = Some(qv);
                timings.dense_ms = ms(t);
            }
            task.map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(Error::Unavailable {
                        code: ErrorCode::EngineUnavailable,
                        message: "the BM25 request to the search engine failed".into(),
                    })
                })
            })
            .transpose()
        })?;
        if let Some((ranking, took)) = background_bm25 {
            bm25 = ranking;
            timings.bm25_ms = took;
        }

        let t = Instant::now();
        let ranked: Vec<(u32, f32)> = match mode {
            Mode::Bm25 => bm25.clone(),
            Mode::Dense => dense.clone(),
            Mode::Hybrid => fuse(&bm25, &dense, fusion.for_query(query, dense_stats)),
        };
        let bm25_by_ord = explain(&bm25);
        let dense_by_ord = explain(&dense);
        let passages = ranked
            .into_iter()
            .take(request.k)
            .map(|(ord, score)| RankedPassage {
                ord,
                score,
                bm25: bm25_by_ord.get(&ord).copied(),
                dense: dense_by_ord.get(&ord).copied(),
            })
            .collect();
        timings.fusion_ms = ms(t);
        Ok(Ranking {
            query: request.query.clone(),
            terms,
            own_terms,
            mode,
            passages,
            timings,
            dense_stats,
            query_vector: used_vector,
            took_ms: ms(started),
        })
    }

    /// Turns a ranking into hits for people: passage texts, citations and snippets with
    /// the query's words highlighted.
    pub fn present(&self, ranking: Ranking) -> Result<SearchResponse> {
        let t = Instant::now();
        let snippets = self.index.lexical.snippets(&ranking.terms)?;
        let results = ranking
            .passages
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let p = &self.index.passages[r.ord as usize];
                let mut citation = p.citation.clone();
                citation.section = clean_for_reading(&citation.section);
                Hit {
                    rank: i + 1,
                    id: p.id.clone(),
                    score: r.score,
                    text: p.text.clone(),
                    snippet: snippets.html(&clean_for_reading(&p.text)),
                    citation,
                    bm25: r.bm25,
                    dense: r.dense,
                }
            })
            .collect();
        let mut timings = ranking.timings;
        timings.snippets_ms = ms(t);
        Ok(SearchResponse {
            query: ranking.query,
            mode: ranking.mode,
            terms: ranking.terms,
            took_ms: ranking.took_ms + timings.snippets_ms,
            timings,
            results,
        })
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The best score and the background mean of a dense ranking (best first): the mean at
/// [`DENSE_BACKGROUND_RANKS`], or, when the ranking is that short (a source filter), of
/// everything after the best; the best itself when it stands alone.
fn dense_stats_of(ranking: &[(u32, f32)]) -> Option<DenseStats> {
    let top = ranking.first()?.1;
    let tail = if ranking.len() > DENSE_BACKGROUND_RANKS.start {
        &ranking[DENSE_BACKGROUND_RANKS.start..ranking.len().min(DENSE_BACKGROUND_RANKS.end)]
    } else {
        &ranking[1..]
    };
    let background = if tail.is_empty() {
        top
    } else {
        tail.iter().map(|x| x.1).sum::<f32>() / tail.len() as f32
    };
    Some(DenseStats {
        top,
        background,
        full_background: ranking.len() >= DENSE_BACKGROUND_RANKS.end,
    })
}

fn explain(ranking: &[(u32, f32)]) -> HashMap<u32, RankedScore> {
    ranking
        .iter()
        .enumerate()
        .map(|(i, (ord, score))| {
            (
                *ord,
                RankedScore {
                    rank: i + 1,
                    score: *score,
                },
            )
        })
        .collect()
}

/// Combines two rankings (best first) into one, best first; ties break by ordinal.
pub fn fuse(bm25: &[(u32, f32)], dense: &[(u32, f32)], fusion: Fusion) -> Vec<(u32, f32)> {
    let mut scores: HashMap<u32, f32> = HashMap::new();
    match fusion {
        Fusion::Rrf { k } => {
            for ranking in [bm25, dense] {
                for (i, (ord, _)) in ranking.iter().enumerate() {
                    *scores.entry(*ord).or_default() += 1.0 / (k + (i + 1) as f32);
                }
            }
        }
        Fusion::Weighted { dense_weight } | Fusion::Adaptive { dense_weight } => {
            for (ranking, weight) in [(bm25, 1.0 - dense_weight), (dense, dense_weight)] {
                let (lo, hi) = ranking
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| {
                        (lo.min(*s), hi.max(*s))
                    });
                let span = hi - lo;
                for (ord, s) in ranking {
                    let normalized = if span > 0.0 { (s - lo) / span } else { 1.0 };
                    *scores.entry(*ord).or_default() += weight * normalized;
                }
            }
        }
    }
    let mut fused: Vec<(u32, f32)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lexical-only engine over one passage per text (for the tests of other modules
    /// too).
    pub(crate) fn lexical_engine(dir: &Path, texts: &[&str]) -> Engine {
        let passages: Vec<Passage> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Passage {
                id: format!("t.txt#{i}"),
                citation: crate::corpus::Citation {
                    source: "t.txt".into(),
                    title: String::new(),
                    section: String::new(),
                    line_start: i + 1,
                    line_end: i + 1,
                    char_start: 0,
                    char_end: text.chars().count(),
                },
                text: text.to_string(),
            })
            .collect();
        Engine::build_from_passages(
            dir,
            &passages,
            None,
            Fusion::default(),
            &crate::progress::NoProgress,
        )
        .expect("a lexical engine builds")
    }

    #[test]
    fn the_background_is_full_only_with_ranks_11_to_50() {
        let ranking = |n: usize| -> Vec<(u32, f32)> {
            (0..n).map(|i| (i as u32, 0.9 - i as f32 * 0.001)).collect()
        };
        let short = dense_stats_of(&ranking(DENSE_BACKGROUND_RANKS.end - 1)).unwrap();
        assert!(!short.full_background);
        let full = dense_stats_of(&ranking(DENSE_BACKGROUND_RANKS.end)).unwrap();
        assert!(full.full_background);
        // Ranks 11-50: cosines 0.890 down to 0.851, mean 0.8705.
        assert!((full.background - 0.8705).abs() < 1e-4, "{full:?}");
        assert!(dense_stats_of(&[]).is_none());
    }

    #[test]
    fn a_chinese_word_the_collection_writes_as_its_abbreviation_is_searched_as_that() {
        let dir = tempfile::tempdir().unwrap();
        let engine = lexical_engine(
            dir.path(),
            &[
                "银行柜员的PC端配备了智能助手。",
                "个人用户可以在手机上办理业务。",
            ],
        );
        let terms = engine.query_terms("柜员的个人电脑配备了什么？");
        assert!(terms.contains(&"pc".to_string()), "{terms:?}");
        // The question's own words come first; a word the collection holds is not expanded,
        // nor one whose abbreviation it does not write (投资回报率 → ROI).
        assert_eq!(terms[0], "柜员");
        let terms = engine.query_terms("个人用户的投资回报率是多少？");
        assert!(!terms.iter().any(|t| t == "roi"), "{terms:?}");
        assert!(engine.abbreviations_used(&["个人".to_string()]).is_empty());
        assert_eq!(engine.abbreviations_used(&["个人电脑".to_string()]), ["pc"]);
    }

    #[test]
    fn a_glossary_word_cut_into_single_characters_is_used_only_where_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let engine = lexical_engine(
            dir.path(),
            &[
                "本报告发布于3月1日。",
                "国家电网有限公司与多家公司合作建设大模型。",
                "這座風電廠建在山上，風很大。",
                "每个人都可以使用大模型。",
            ],
        );
        // Written whole in traditional characters counts: the glossary is simplified.
        assert!(engine.translation_frequency("风电厂").is_some());
        // 本 and 日 are both in the collection, 本日 nowhere.
        assert!(engine.document_frequency("本") > 0 && engine.document_frequency("日") > 0);
        assert_eq!(engine.translation_frequency("本日"), None);
        // Words of two characters or more compose: the reports' 国家电网 and 公司.
        assert!(engine.translation_frequency("国家电网公司").is_some());
        assert!(engine.translation_frequency("报告").is_some());
        assert_eq!(engine.translation_frequency("渔业"), None);
        // 过人 "outstanding" is 人 once its stop word 过 is dropped: the collection writes
        // 人, not 过人.
        assert_eq!(engine.analyzer().query_terms("过人"), ["人"]);
        assert!(engine.document_frequency("人") > 0);
        assert_eq!(engine.translation_frequency("过人"), None);
    }

    #[test]
    fn names_written_in_pinyin_are_searched_as_the_collection_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let engine = lexical_engine(
            dir.path(),
            &[
                "阿里巴巴于2023年4月正式推出通义千问大模型。",
                "泰康保险集团成立于1996年，总部位于北京。",
                "为什么他们选择大模型？",
            ],
        );
        let names = |q: &str| -> Vec<(String, Vec<String>)> {
            engine
                .pinyin_names(q)
                .into_iter()
                .map(|c| (c.english, c.chinese))
                .collect()
        };
        // The glossary knows Alibaba ("Alibaba, PRC e-commerce company"), not Tongyi Qianwen.
        assert_eq!(
            names("When did Alibaba launch Tongyi Qianwen?"),
            vec![("tongyi qianwen".to_string(), vec!["通义千问".to_string()])]
        );
        // A run the collection does not write whole is read word by word.
        assert_eq!(
            names("Where is Taikang Hunyuan based?"),
            vec![("taikang".to_string(), vec!["泰康".to_string()])]
        );
        // "Meta" reads me ta, and 么他 stands in 为什么他们, but it is no word.
        assert!(names("Does Meta build large models?").is_empty());
        // The names' words are searched with BM25.
        let terms = engine.query_terms("When did Alibaba launch Tongyi Qianwen?");
        assert!(terms.contains(&"阿里巴巴".to_string()), "{terms:?}");
        assert!(terms.contains(&"千问".to_string()), "{terms:?}");
    }

    #[test]
    fn rrf_rewards_agreement_between_retrievers() {
        let bm25 = [(1, 9.0), (2, 8.0), (3, 7.0)];
        let dense = [(3, 0.9), (1, 0.8), (4, 0.7)];
        let fused = fuse(&bm25, &dense, Fusion::Rrf { k: 60.0 });
        let order: Vec<u32> = fused.iter().map(|x| x.0).collect();
        assert_eq!(order, vec![1, 3, 2, 4]);
        let expected_top = 1.0 / 61.0 + 1.0 / 62.0;
        assert!((fused[0].1 - expected_top).abs() < 1e-6);
    }

    #[test]
    fn weighted_fusion_uses_normalized_scores() {
        let bm25 = [(1, 20.0), (2, 10.0)];
        let dense = [(2, 0.9), (1, 0.5)];
        // bm25 norm: 1→1, 2→0; dense norm: 2→1, 1→0.
        let dense_heavy = fuse(&bm25, &dense, Fusion::Weighted { dense_weight: 0.8 });
        assert_eq!(dense_heavy[0].0, 2);
        assert!((dense_heavy[0].1 - 0.8).abs() < 1e-6);
        let bm25_heavy = fuse(&bm25, &dense, Fusion::Weighted { dense_weight: 0.2 });
        assert_eq!(bm25_heavy[0].0, 1);
    }

    #[test]
    fn fusion_specs_parse_and_reject_nonsense() {
        assert_eq!("rrf".parse::<Fusion>().unwrap(), Fusion::Rrf { k: 60.0 });
        assert_eq!("rrf:20".parse::<Fusion>().unwrap(), Fusion::Rrf { k: 20.0 });
        assert_eq!(
            "weighted:0.3".parse::<Fusion>().unwrap(),
            Fusion::Weighted { dense_weight: 0.3 }
        );
        for bad in ["rrf:0", "weighted:2", "magic", "weighted:x"] {
            assert!(bad.parse::<Fusion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn adaptive_fusion_follows_the_language_and_the_dense_margin() {
        let adaptive: Fusion = "adaptive".parse().unwrap();
        assert_eq!(adaptive, Fusion::default());
        let weighted = |w| Fusion::Weighted { dense_weight: w };
        // The margin is a difference of floats: compare weights to a millionth.
        let assert_weight = |fusion: Fusion, want: f32| match fusion {
            Fusion::Weighted { dense_weight } => {
                assert!(
                    (dense_weight - want).abs() < 1e-6,
                    "{dense_weight} != {want}"
                )
            }
            other => panic!("{other:?}"),
        };
        let typical = Some(DenseStats {
            top: 0.85,
            background: 0.85 - DENSE_MARGIN_REFERENCE,
            full_background: true,
        });
        // Exact Chinese terms at a typical margin: BM25 keeps its usual share.
        assert_weight(
            adaptive.for_query("百丽时尚有多少家直营门店？", typical),
            DENSE_WEIGHT,
        );
        // An English question quoting a Chinese term keeps it too.
        assert_weight(
            adaptive.for_query("What does Tencent's digital human (数智人) do?", typical),
            DENSE_WEIGHT,
        );
        // No Chinese at all: dense counts more.
        assert_weight(
            adaptive.for_query("How many stores does Belle have?", typical),
            CROSS_LINGUAL_DENSE_WEIGHT,
        );
        // Nothing stands out in meaning: BM25 leads, within the bounds.
        let flat = Some(DenseStats {
            top: 0.85,
            background: 0.849,
            full_background: true,
        });
        let lowest = DENSE_WEIGHT * DENSE_WEIGHT_SCALE.start();
        assert_weight(adaptive.for_query("大模型", flat), lowest);
        // One passage stands far out: dense leads, within the bounds.
        let clear = Some(DenseStats {
            top: 0.9,
            background: 0.7,
            full_background: true,
        });
        let highest = DENSE_WEIGHT * DENSE_WEIGHT_SCALE.end();
        assert_weight(adaptive.for_query("大模型", clear), highest);
        // Without dense statistics, or with a NaN margin, the base weight.
        assert_weight(adaptive.for_query("大模型", None), DENSE_WEIGHT);
        let broken = Some(DenseStats {
            top: f32::NAN,
            background: 0.8,
            full_background: true,
        });
        assert_weight(adaptive.for_query("大模型", broken), DENSE_WEIGHT);
        // Fixed fusions ignore the language and the margin.
        assert_eq!(weighted(0.3).for_query("How many?", flat), weighted(0.3));
        assert_weight(
            "adaptive:0.9"
                .parse::<Fusion>()
                .unwrap()
                .for_query("How?", typical),
            0.9,
        );
        assert!("adaptive:1.5".parse::<Fusion>().is_err());
    }

    #[test]
    fn modes_parse_and_unknown_modes_are_rejected() {
        assert_eq!("BM25".parse::<Mode>().unwrap(), Mode::Bm25);
        assert_eq!("hybrid".parse::<Mode>().unwrap(), Mode::Hybrid);
        let err = "fuzzy".parse::<Mode>().unwrap_err();
        assert!(err.to_string().contains("bm25, dense or hybrid"));
    }
}
