//! Running an evaluation: each question through the [`Engine`] in each mode,
//! judged into a [`Report`] (and TREC rankings for external tools).

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::{
    BeirSet, CUTOFF, QueryOutcome, Question, Report, RetrievedSpan, RunRanking, judge_question,
};
use crate::corpus::{Citation, Passage};
use crate::embed::Encoder;
use crate::error::Result;
use crate::progress::Progress;
use crate::retrieve::{Engine, Fusion, Mode, SearchRequest};

/// The outcome of evaluating one set: metrics plus rankings per mode.
pub struct Evaluation {
    /// Metrics per mode, per kind, and misses.
    pub report: Report,
    /// Per run name (mode, or `hybrid:<fusion>`): ranked ids and scores per question.
    pub runs: Vec<(String, Vec<RunRanking>)>,
}

/// The (row name, mode, fusion) combinations to evaluate: one row per mode,
/// and for hybrid one row per fusion when several are compared.
fn variants(modes: &[Mode], fusions: &[Fusion]) -> Vec<(String, Mode, Fusion)> {
    let mut out = Vec::new();
    for &mode in modes {
        if mode == Mode::Hybrid && fusions.len() > 1 {
            for f in fusions {
                out.push((format!("hybrid:{}", f.label()), mode, *f));
            }
        } else {
            out.push((
                mode.as_str().to_string(),
                mode,
                fusions.first().copied().unwrap_or_default(),
            ));
        }
    }
    out
}

fn rank_all<T: Sync>(
    engine: &Engine,
    items: &[T],
    vectors: &[Option<Vec<f32>>],
    mode: Mode,
    fusion: Fusion,
    query_of: &(impl Fn(&T) -> &str + Sync),
    progress: &dyn Progress,
) -> Result<Vec<Vec<(u32, f32)>>> {
    progress.stage(&format!("eval {mode}"), items.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let rankings = items
        .par_iter()
        .zip(vectors)
        .map(|(item, vector)| {
            let request = SearchRequest {
                query: query_of(item).to_string(),
                k: CUTOFF,
                mode: Some(mode),
                source: None,
            };
            let ranking = engine.rank(&request, fusion, vector.as_deref());
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(16) {
                progress.position(n);
            }
            // A question the engine rejects (e.g. nothing searchable) retrieves nothing.
            Ok(match ranking {
                Ok(r) => r.passages.iter().map(|p| (p.ord, p.score)).collect(),
                Err(crate::Error::InvalidRequest { .. }) => Vec::new(),
                Err(e) => return Err(e),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    progress.finish();
    Ok(rankings)
}

/// Embeds every query once (when a mode needs vectors), shared by all modes and fusions.
fn query_vectors<T: Sync>(
    engine: &Engine,
    items: &[T],
    modes: &[Mode],
    query_of: &(impl Fn(&T) -> &str + Sync),
    progress: &dyn Progress,
) -> Result<Vec<Option<Vec<f32>>>> {
    if modes.iter().all(|m| *m == Mode::Bm25) {
        return Ok(vec![None; items.len()]);
    }
    progress.stage("query vectors", items.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let vectors = items
        .par_iter()
        .map(|item| {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(16) {
                progress.position(n);
            }
            // A query with nothing to embed is rejected later by the search itself.
            engine.embed_query(query_of(item)).unwrap_or(None)
        })
        .collect();
    progress.finish();
    Ok(vectors)
}

fn span_of(p: &Passage) -> RetrievedSpan {
    RetrievedSpan {
        id: p.id.clone(),
        source: p.citation.source.clone(),
        char_start: p.citation.char_start,
        char_end: p.citation.char_end,
    }
}

fn run_of(engine: &Engine, qid: &str, ranking: &[(u32, f32)]) -> RunRanking {
    let passages = engine.passages();
    (
        qid.to_string(),
        ranking
            .iter()
            .map(|(o, s)| (passages[*o as usize].id.clone(), *s))
            .collect(),
    )
}

/// The one evaluation loop: every item through every (mode, fusion) variant, judged by
/// `judge` from the ranked ordinals.
#[allow(clippy::too_many_arguments)]
fn evaluate<T: Sync>(
    engine: &Engine,
    name: &str,
    items: &[T],
    query_of: impl Fn(&T) -> &str + Sync,
    id_of: impl Fn(&T) -> &str,
    judge: impl Fn(&T, &[u32]) -> QueryOutcome,
    modes: &[Mode],
    fusions: &[Fusion],
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let vectors = query_vectors(engine, items, modes, &query_of, progress)?;
    let mut report = Report::new(name);
    let mut runs = Vec::new();
    for (row, mode, fusion) in variants(modes, fusions) {
        let rankings = rank_all(engine, items, &vectors, mode, fusion, &query_of, progress)?;
        let outcomes: Vec<QueryOutcome> = items
            .iter()
            .zip(&rankings)
            .map(|(item, r)| {
                let ords: Vec<u32> = r.iter().map(|(o, _)| *o).collect();
                judge(item, &ords)
            })
            .collect();
        report.add_mode(&row, &outcomes);
        runs.push((
            row,
            items
                .iter()
                .zip(&rankings)
                .map(|(item, r)| run_of(engine, id_of(item), r))
                .collect(),
        ));
    }
    Ok(Evaluation { report, runs })
}

/// Evaluates the dev-set questions with the span-overlap relevance rule.
pub fn evaluate_questions(
    engine: &Engine,
    name: &str,
    questions: &[Question],
    modes: &[Mode],
    fusions: &[Fusion],
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let passages = engine.passages();
    evaluate(
        engine,
        name,
        questions,
        |q| q.question.as_str(),
        |q| q.id.as_str(),
        |q, ords| {
            let spans: Vec<RetrievedSpan> = ords
                .iter()
                .map(|o| span_of(&passages[*o as usize]))
                .collect();
            judge_question(q, &spans)
        },
        modes,
        fusions,
        progress,
    )
}

/// Every passage of the engine as a span, for TREC qrels of the dev set.
pub fn all_spans(engine: &Engine) -> Vec<RetrievedSpan> {
    engine.passages().iter().map(span_of).collect()
}

/// Passages of a BEIR collection: one per corpus row, cited by its id.
pub fn beir_passages(set: &BeirSet) -> Vec<Passage> {
    set.corpus
        .iter()
        .map(|d| {
            let text = if d.title.is_empty() {
                d.text.clone()
            } else {
                format!("{}\n{}", d.title, d.text)
            };
            Passage {
                id: d.id.clone(),
                citation: Citation {
                    source: set.name.clone(),
                    title: d.title.clone(),
                    section: String::new(),
                    line_start: 1,
                    line_end: 1,
                    char_start: 0,
                    char_end: text.chars().count(),
                },
                text,
            }
        })
        .collect()
}

/// Indexes a BEIR folder into `scratch_dir` and evaluates it by qrels.
pub fn evaluate_beir(
    set: &BeirSet,
    scratch_dir: &Path,
    encoder: Option<Arc<dyn Encoder>>,
    fusions: &[Fusion],
    modes: &[Mode],
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let passages = beir_passages(set);
    let fusion = fusions.first().copied().unwrap_or_default();
    let engine = Engine::build_from_passages(scratch_dir, &passages, encoder, fusion, progress)?;
    evaluate(
        &engine,
        &set.name,
        &set.queries,
        |q| q.text.as_str(),
        |q| q.id.as_str(),
        |q, ords| {
            let ids: Vec<&str> = ords
                .iter()
                .map(|o| passages[*o as usize].id.as_str())
                .collect();
            set.judge(q, &ids)
        },
        modes,
        fusions,
        progress,
    )
}
