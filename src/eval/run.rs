//! Running an evaluation: each question through the [`Engine`] in each mode,
//! judged into a [`Report`] (and TREC rankings for external tools).

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::{
    BeirSet, CUTOFF, QueryOutcome, Question, Report, RetrievedSpan, RunRanking, judge_question,
};
use crate::corpus::{Citation, Passage};
use crate::error::Result;
use crate::index::BuildProgress;
use crate::retrieve::{Encoder, Engine, Fusion, Mode, SearchRequest};

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
    query_of: impl Fn(&T) -> &str + Sync,
    progress: &dyn BuildProgress,
) -> Result<Vec<Vec<(u32, f32)>>> {
    progress.stage(&format!("eval {mode}"), items.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let ids: std::collections::HashMap<&str, u32> = engine
        .passages()
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i as u32))
        .collect();
    let rankings = items
        .par_iter()
        .zip(vectors)
        .map(|(item, vector)| {
            let request = SearchRequest {
                query: query_of(item).to_string(),
                k: CUTOFF,
                mode,
                source: None,
            };
            let response = engine.search_prepared(&request, fusion, vector.as_deref());
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(16) {
                progress.position(n);
            }
            // A question the engine rejects (e.g. nothing searchable) retrieves nothing.
            Ok(match response {
                Ok(r) => r
                    .results
                    .iter()
                    .map(|h| (ids[h.id.as_str()], h.score))
                    .collect(),
                Err(crate::Error::InvalidQuery { .. }) => Vec::new(),
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
    query_of: impl Fn(&T) -> &str + Sync,
    progress: &dyn BuildProgress,
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

/// Evaluates the dev-set questions with the span-overlap relevance rule.
pub fn evaluate_questions(
    engine: &Engine,
    name: &str,
    questions: &[Question],
    modes: &[Mode],
    fusions: &[Fusion],
    progress: &dyn BuildProgress,
) -> Result<Evaluation> {
    let vectors = query_vectors(engine, questions, modes, |q| q.question.as_str(), progress)?;
    let mut report = Report::new(name);
    let mut runs = Vec::new();
    for (row, mode, fusion) in variants(modes, fusions) {
        let rankings = rank_all(
            engine,
            questions,
            &vectors,
            mode,
            fusion,
            |q| q.question.as_str(),
            progress,
        )?;
        let outcomes: Vec<QueryOutcome> = questions
            .iter()
            .zip(&rankings)
            .map(|(q, r)| {
                let spans: Vec<RetrievedSpan> = r
                    .iter()
                    .map(|(o, _)| span_of(&engine.passages()[*o as usize]))
                    .collect();
                judge_question(q, &spans)
            })
            .collect();
        report.add_mode(&row, &outcomes);
        runs.push((
            row,
            questions
                .iter()
                .zip(&rankings)
                .map(|(q, r)| run_of(engine, &q.id, r))
                .collect(),
        ));
    }
    Ok(Evaluation { report, runs })
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
    progress: &dyn BuildProgress,
) -> Result<Evaluation> {
    let passages = beir_passages(set);
    let fusion = fusions.first().copied().unwrap_or_default();
    let engine = Engine::build_from_passages(scratch_dir, &passages, encoder, fusion, progress)?;
    let vectors = query_vectors(&engine, &set.queries, modes, |q| q.text.as_str(), progress)?;
    let mut report = Report::new(&set.name);
    let mut runs = Vec::new();
    for (row, mode, fusion) in variants(modes, fusions) {
        let rankings = rank_all(
            &engine,
            &set.queries,
            &vectors,
            mode,
            fusion,
            |q| q.text.as_str(),
            progress,
        )?;
        let outcomes: Vec<QueryOutcome> = set
            .queries
            .iter()
            .zip(&rankings)
            .map(|(q, r)| {
                let ids: Vec<&str> = r
                    .iter()
                    .map(|(o, _)| passages[*o as usize].id.as_str())
                    .collect();
                set.judge(q, &ids)
            })
            .collect();
        report.add_mode(&row, &outcomes);
        runs.push((
            row,
            set.queries
                .iter()
                .zip(&rankings)
                .map(|(q, r)| run_of(&engine, &q.id, r))
                .collect(),
        ));
    }
    Ok(Evaluation { report, runs })
}
