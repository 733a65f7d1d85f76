//! Answers for people: the sentences of the retrieved passages that best
//! answer the question, each followed by a citation marker like `[1]`, and
//! the list of sources those markers point to.
//!
//! Without a language model the answer is extractive. Written by hand because
//! choosing and ordering evidence sentences is the core of what staff read.
//! With one ([`crate::generate`]), the model writes the answer from the same
//! relevant passages, and the extractive answer is the fallback.

use std::collections::HashSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::analysis::Analyzer;
use crate::corpus::{Citation, is_han, split_sentences};
use crate::error::Result;
use crate::generate::{LlmClient, renumber_citations};
use crate::retrieve::{Engine, Hit, Mode, SearchRequest};

/// Passages retrieved for an answer by default: enough evidence for a
/// short answer, few enough that every source shown is worth reading.
pub const DEFAULT_ANSWER_PASSAGES: usize = 5;

/// Most sentences in an extractive answer: a short paragraph.
pub const MAX_ANSWER_SENTENCES: usize = 3;

/// Sentences shorter than this (in characters) are fragments (headings,
/// table cells) and are not used on their own.
pub const MIN_SENTENCE_CHARS: usize = 8;

/// Sentences longer than this are cut at a clause boundary for display.
pub const MAX_SENTENCE_CHARS: usize = 160;

/// Share of the question's term weight (idf-weighted) that the best passage
/// must contain for BM25 evidence to count as relevant. Questions about
/// things the reports never mention share at most a generic word or two
/// ("大模型", "应用") with any passage; real questions share their topic words.
pub const MIN_TERM_COVERAGE: f32 = 0.5;

/// A question as the ask endpoint receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskRequest {
    /// The question, in Chinese or English.
    pub question: String,
    /// Passages to retrieve (1..=100).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Restrict to one report.
    #[serde(default)]
    pub source: Option<String>,
    /// Retrieval mode (default hybrid where available).
    #[serde(default)]
    pub mode: Option<Mode>,
}

fn default_k() -> usize {
    DEFAULT_ANSWER_PASSAGES
}

/// One source an answer cites.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// The marker number used in the answer text (`[marker]`).
    pub marker: usize,
    /// Passage id.
    pub id: String,
    /// Retrieval score of the passage.
    pub score: f32,
    /// HTML snippet with matched words in `<b>`.
    pub snippet: String,
    /// The passage text.
    pub text: String,
    /// Where it lies in its report.
    pub citation: Citation,
}

/// Who wrote an answer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratedBy {
    /// Sentences chosen from the retrieved passages.
    Extractive,
    /// A language model, from the same passages ([`crate::generate`]).
    Llm,
}

/// An answer with its sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// The question as asked.
    pub question: String,
    /// False when nothing relevant was found (the answer then says so).
    pub found: bool,
    /// Answer text with citation markers.
    pub answer: String,
    /// Who wrote the text.
    pub generated_by: GeneratedBy,
    /// Sources in marker order.
    pub sources: Vec<Source>,
    /// Retrieval mode used.
    pub mode: Mode,
    /// Total time in milliseconds.
    pub took_ms: f64,
}

/// The reply when the reports do not answer the question.
pub const NOT_FOUND_ANSWER: &str =
    "没有在报告中找到与这个问题相关的内容。请换一种说法，或用报告中可能出现的关键词提问。";

/// Answers a question from the engine's passages (extractive).
pub fn ask(engine: &Engine, request: &AskRequest) -> Result<Answer> {
    ask_with(engine, request, None)
}

/// Answers a question from the engine's passages, written by `llm` when given and
/// working, else extractive. The relevance gate comes first either way: a question the
/// reports do not answer gets the not-found reply without asking the model.
pub fn ask_with(engine: &Engine, request: &AskRequest, llm: Option<&LlmClient>) -> Result<Answer> {
    let started = Instant::now();
    let search = SearchRequest {
        query: request.question.clone(),
        k: request.k,
        mode: request.mode,
        source: request.source.clone(),
    };
    let ranking = engine.rank(&search, engine.fusion(), None)?;
    let mode = ranking.mode;
    let terms = weighted_terms(engine, &ranking.terms);
    let response = engine.present(ranking)?;
    let analyzer = Analyzer::new();
    let cross_lingual = !request.question.chars().any(is_han);
    let relevant: Vec<&Hit> = response
        .results
        .iter()
        .filter(|h| is_relevant(h, &terms, &analyzer, cross_lingual))
        .collect();
    if relevant.is_empty() {
        return Ok(Answer {
            question: request.question.clone(),
            found: false,
            answer: NOT_FOUND_ANSWER.to_string(),
            generated_by: GeneratedBy::Extractive,
            sources: Vec::new(),
            mode,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }
    let generated = llm.and_then(|llm| generate(llm, &request.question, &relevant));
    let (answer, sources, generated_by) = match generated {
        Some((answer, sources)) => (answer, sources, GeneratedBy::Llm),
        None => {
            let (answer, sources) = compose(&relevant, &terms, &analyzer);
            (answer, sources, GeneratedBy::Extractive)
        }
    };
    Ok(Answer {
        question: request.question.clone(),
        found: true,
        answer,
        generated_by,
        sources,
        mode,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The model's answer with its cited sources, or `None` (logged) when it failed or
/// cited nothing.
fn generate(llm: &LlmClient, question: &str, hits: &[&Hit]) -> Option<(String, Vec<Source>)> {
    let passages: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    let text = match llm.complete(question, &passages) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!("{e}; answering extractively");
            return None;
        }
    };
    let Some((text, order)) = renumber_citations(&text, hits.len()) else {
        tracing::warn!(
            url = llm.url(),
            "the generated answer cites no passage; answering extractively"
        );
        return None;
    };
    let sources = order
        .iter()
        .enumerate()
        .map(|(i, h)| source(i + 1, hits[*h]))
        .collect();
    Some((text, sources))
}

fn source(marker: usize, hit: &Hit) -> Source {
    Source {
        marker,
        id: hit.id.clone(),
        score: hit.score,
        snippet: hit.snippet.clone(),
        text: hit.text.clone(),
        citation: hit.citation.clone(),
    }
}

/// The analysed question terms with weights that favour rare (topical) words.
fn weighted_terms(engine: &Engine, terms: &[String]) -> Vec<(String, f32)> {
    let n = engine.passages().len().max(1) as f32;
    terms
        .iter()
        .cloned()
        .map(|t| {
            let df = engine.document_frequency(&t) as f32;
            // BM25's idf, floored at a small positive weight.
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln().max(0.05);
            (t, idf)
        })
        .collect()
}

fn coverage(text: &str, terms: &[(String, f32)], analyzer: &Analyzer) -> f32 {
    let total: f32 = terms.iter().map(|t| t.1).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let words: HashSet<String> = analyzer.analyze(text).into_iter().map(|t| t.text).collect();
    terms
        .iter()
        .filter(|(t, _)| words.contains(t))
        .map(|t| t.1)
        .sum::<f32>()
        / total
}

/// Whether a retrieved passage is evidence for the question.
///
/// Dense similarity cannot decide this alone: with multilingual-e5-small,
/// unrelated Chinese questions ("红烧肉怎么做", 0.85) score higher against
/// this corpus than relevant English ones ("How many direct-operated stores
/// does Belle Fashion have?", 0.76), and neither the top score nor its margin
/// over the 10th–20th hits separates them. So Chinese questions need shared
/// topic words; a question without Chinese characters cannot share them with
/// Chinese text, and there the dense ranking is trusted.
fn is_relevant(
    hit: &Hit,
    terms: &[(String, f32)],
    analyzer: &Analyzer,
    cross_lingual: bool,
) -> bool {
    coverage(&hit.text, terms, analyzer) >= MIN_TERM_COVERAGE
        || (cross_lingual && hit.dense.is_some())
}

/// The sentences of a passage worth showing on their own: split by the corpus' rule
/// ([`split_sentences`]), bullets trimmed, fragments shorter than
/// [`MIN_SENTENCE_CHARS`] dropped.
pub fn sentences(text: &str) -> Vec<String> {
    split_sentences(text)
        .into_iter()
        .map(|s| {
            s.trim()
                .trim_start_matches(['•', '◆', '●', '-', '*', '·', '▪', ' '])
                .trim()
                .to_string()
        })
        .filter(|s| s.chars().count() >= MIN_SENTENCE_CHARS)
        .collect()
}

fn shorten(sentence: &str) -> String {
    if sentence.chars().count() <= MAX_SENTENCE_CHARS {
        return sentence.to_string();
    }
    let cut: String = sentence.chars().take(MAX_SENTENCE_CHARS).collect();
    match cut.rfind(['，', '；', '、', ',']) {
        Some(i) if i > cut.len() / 2 => format!("{}……", &cut[..i]),
        _ => format!("{cut}……"),
    }
}

struct Candidate {
    hit_index: usize,
    position: usize,
    text: String,
    score: f32,
}

fn compose(hits: &[&Hit], terms: &[(String, f32)], analyzer: &Analyzer) -> (String, Vec<Source>) {
    let mut candidates = Vec::new();
    for (hit_index, hit) in hits.iter().enumerate() {
        for (position, sentence) in sentences(&hit.text).into_iter().enumerate() {
            // Word overlap with the question, discounted by the passage's rank
            // so that the best passage's sentences win ties.
            let score = coverage(&sentence, terms, analyzer) / (1.0 + 0.15 * hit_index as f32);
            candidates.push(Candidate {
                hit_index,
                position,
                text: sentence,
                score,
            });
        }
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.hit_index.cmp(&b.hit_index))
    });
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for c in candidates {
        if chosen.len() == MAX_ANSWER_SENTENCES {
            break;
        }
        // Overlapping passages repeat sentences: keep each sentence once.
        let key: String = c.text.chars().filter(|ch| ch.is_alphanumeric()).collect();
        if c.score <= 0.0 && !chosen.is_empty() || !seen.insert(key) {
            continue;
        }
        chosen.push(c);
    }
    if chosen.is_empty() {
        // Found by meaning alone (e.g. an English question): lead with the top passage.
        if let Some(first) = sentences(&hits[0].text).into_iter().next() {
            chosen.push(Candidate {
                hit_index: 0,
                position: 0,
                text: first,
                score: 0.0,
            });
        }
    }
    // Read in a sensible order: by source, then as the text runs.
    chosen.sort_by_key(|c| (c.hit_index, c.position));
    let mut markers: Vec<usize> = Vec::new();
    let mut answer = String::new();
    for c in &chosen {
        let marker = match markers.iter().position(|h| *h == c.hit_index) {
            Some(i) => i + 1,
            None => {
                markers.push(c.hit_index);
                markers.len()
            }
        };
        answer.push_str(&shorten(&c.text));
        answer.push_str(&format!("[{marker}]"));
    }
    let sources = markers
        .iter()
        .enumerate()
        .map(|(i, h)| source(i + 1, hits[*h]))
        .collect();
    (answer, sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_chinese_marks_and_drop_fragments_and_bullets() {
        let s =
            sentences("• 金融行业是大模型落地最快的领域之一。短句。医疗大模型辅助医生书写病历！");
        assert_eq!(
            s,
            vec![
                "金融行业是大模型落地最快的领域之一。",
                "医疗大模型辅助医生书写病历！"
            ]
        );
    }

    #[test]
    fn long_sentences_are_cut_at_a_clause() {
        let long = format!("{}，{}。", "大".repeat(120), "模".repeat(80));
        let short = shorten(&long);
        assert!(short.ends_with("……"));
        assert!(short.chars().count() <= MAX_SENTENCE_CHARS + 2);
    }

    fn hit(rank: usize, text: &str) -> Hit {
        Hit {
            rank,
            id: format!("r#{rank}"),
            score: 1.0 / rank as f32,
            text: text.into(),
            snippet: String::new(),
            citation: Citation {
                source: format!("r{rank}.txt"),
                title: "报告".into(),
                section: String::new(),
                line_start: 1,
                line_end: 1,
                char_start: 0,
                char_end: text.chars().count(),
            },
            bm25: None,
            dense: None,
        }
    }

    #[test]
    fn composition_picks_matching_sentences_once_and_numbers_their_sources() {
        let analyzer = Analyzer::new();
        let terms: Vec<(String, f32)> = analyzer
            .query_terms("银行 风险控制")
            .into_iter()
            .map(|t| (t, 1.0))
            .collect();
        let shared = "银行利用大模型加强风险控制能力。";
        let a = hit(1, &format!("报告介绍了行业背景和发展历程。{shared}"));
        let b = hit(2, &format!("{shared}零售门店数字化也在推进之中。"));
        let (answer, sources) = compose(&[&a, &b], &terms, &analyzer);
        // The shared sentence appears once, cited to the first passage that has it.
        assert_eq!(answer.matches("风险控制").count(), 1, "{answer}");
        assert!(answer.starts_with(shared), "{answer}");
        assert!(answer.contains("[1]"), "{answer}");
        assert_eq!(sources[0].id, "r#1");
        assert!(
            !answer.contains("零售门店"),
            "unrelated sentence kept: {answer}"
        );
        // Every marker points at a listed source.
        for s in &sources {
            assert!(answer.contains(&format!("[{}]", s.marker)));
        }
    }
}
