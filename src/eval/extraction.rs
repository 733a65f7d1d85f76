//! Answer extraction measured on a public reading-comprehension set: a BEIR folder whose
//! `answers.jsonl` gives each question its gold answers (CMRC 2018, DRCD). Every question
//! goes through the code of `POST /api/ask` ([`crate::answer::ask_with`]) over that
//! folder's own corpus, and each reply is scored against the gold answers: found, contains
//! a gold answer, its first sentence contains one, character F1, length, and whether it
//! begins with a heading or publisher line.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::EvalError;
use super::answers::{begins_with_furniture, without_markers};
use crate::analysis::fold_traditional;
use crate::answer::{Answer, AskRequest, DEFAULT_ANSWER_PASSAGES, ask_with};
use crate::error::Result;
use crate::progress::Progress;
use crate::retrieve::Engine;

/// A question with its gold answers.
#[derive(Debug, Clone)]
pub struct GoldQuestion {
    /// Question id.
    pub id: String,
    /// The question.
    pub text: String,
    /// Gold answers (any one counts).
    pub answers: Vec<String>,
}

/// Reads `answers.jsonl` of a BEIR folder (`{"id": …, "answers": [...]}` a line), keyed
/// by question id.
pub fn load_gold_answers(dir: &Path) -> Result<HashMap<String, Vec<String>>, EvalError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        answers: Vec<String>,
    }
    let rows: Vec<(usize, Row)> = super::read_jsonl(&dir.join("answers.jsonl"), "gold answer")?;
    Ok(rows.into_iter().map(|(_, r)| (r.id, r.answers)).collect())
}

/// At most `limit` items, evenly spaced over the whole list (every item when `limit` is
/// `None` or not smaller), so a sample covers every part of a set in a fixed way.
pub fn evenly_spaced<T: Clone>(items: &[T], limit: Option<usize>) -> Vec<T> {
    match limit {
        Some(n) if n < items.len() => (0..n).map(|i| items[i * items.len() / n].clone()).collect(),
        _ => items.to_vec(),
    }
}

/// Text folded for comparing answers across scripts and widths: NFKC (full-width →
/// half-width), traditional → simplified characters, lowercase, letters and digits only.
pub fn fold(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    fold_traditional(nfkc)
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Character F1 of `span` against `gold` (both folded), by shared characters counted
/// with multiplicity, as the CMRC and SQuAD scripts count tokens.
pub fn char_f1(gold: &str, span: &str) -> f64 {
    let (gold, span) = (fold(gold), fold(span));
    if gold.is_empty() || span.is_empty() {
        return 0.0;
    }
    let mut counts: HashMap<char, i64> = HashMap::new();
    for c in gold.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let mut shared = 0;
    for c in span.chars() {
        if let Some(n) = counts.get_mut(&c).filter(|n| **n > 0) {
            *n -= 1;
            shared += 1;
        }
    }
    if shared == 0 {
        return 0.0;
    }
    let precision = shared as f64 / span.chars().count() as f64;
    let recall = shared as f64 / gold.chars().count() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The sentences of an answer as shown: the pieces each followed by a citation marker.
pub fn answer_sentences(answer: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        current.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if close > 0 && after[..close].bytes().all(|b| b.is_ascii_digit()) => {
                if !current.trim().is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
                rest = &after[close + 1..];
            }
            _ => {
                current.push('[');
                rest = after;
            }
        }
    }
    current.push_str(rest);
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The scores of one reply.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractionScore {
    /// Question id.
    pub id: String,
    /// The reply claimed an answer.
    pub found: bool,
    /// The answer contains a gold answer (folded).
    pub contains_gold: bool,
    /// The answer's first sentence contains a gold answer.
    pub first_sentence_contains: bool,
    /// Character F1 against the best gold answer of the shortest answer sentence holding
    /// it (of the best sentence when none holds one); 0 on a refusal.
    pub char_f1: f64,
    /// Answer length in characters (0 on a refusal).
    pub length: usize,
    /// The answer begins with a heading, section name, publisher or advertising line.
    pub begins_with_furniture: bool,
    /// The reply's answer text (or refusal), for reading the misses in `--json` output.
    pub answer: String,
}

/// Scores one reply against the gold answers.
pub fn score_extraction(id: &str, golds: &[String], reply: &Answer) -> ExtractionScore {
    if !reply.found {
        return ExtractionScore {
            id: id.to_string(),
            found: false,
            contains_gold: false,
            first_sentence_contains: false,
            char_f1: 0.0,
            length: 0,
            begins_with_furniture: false,
            answer: reply.answer.clone(),
        };
    }
    let text = without_markers(&reply.answer);
    let folded = fold(&text);
    let golds: Vec<(&String, String)> = golds
        .iter()
        .map(|g| (g, fold(g)))
        .filter(|(_, f)| !f.is_empty())
        .collect();
    let holds = |t: &str| golds.iter().any(|(_, g)| t.contains(g.as_str()));
    let sentences = answer_sentences(&reply.answer);
    let first = sentences.first().map(|s| fold(s)).unwrap_or_default();
    // The shortest sentence holding a gold answer; else the best by F1.
    let holding = sentences
        .iter()
        .filter(|s| holds(&fold(s)))
        .min_by_key(|s| s.chars().count());
    let best_f1 = |s: &str| golds.iter().map(|(g, _)| char_f1(g, s)).fold(0.0, f64::max);
    let char_f1 = match holding {
        Some(s) => best_f1(s),
        None => sentences.iter().map(|s| best_f1(s)).fold(0.0, f64::max),
    };
    ExtractionScore {
        id: id.to_string(),
        found: true,
        contains_gold: holds(&folded),
        first_sentence_contains: holds(&first),
        char_f1,
        length: text.chars().count(),
        begins_with_furniture: begins_with_furniture(reply),
        answer: reply.answer.clone(),
    }
}

/// The means of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractionReport {
    /// Name of the set.
    pub dataset: String,
    /// Questions asked.
    pub count: usize,
    /// Share answered.
    pub found: f64,
    /// Share whose answer contains a gold answer.
    pub contains_gold: f64,
    /// Share whose first sentence contains a gold answer.
    pub first_sentence_contains: f64,
    /// Mean character F1 ([`ExtractionScore::char_f1`]).
    pub char_f1: f64,
    /// Median answer length of the answered questions.
    pub median_length: f64,
    /// Answers that begin with a heading or publisher line (should be 0).
    pub begins_with_furniture: usize,
    /// Every question's scores.
    pub scores: Vec<ExtractionScore>,
}

impl ExtractionReport {
    /// The table for people.
    pub fn to_table(&self) -> String {
        format!(
            "answer extraction: {}\n{:>5}  {:>6}  {:>8}  {:>14}  {:>7}  {:>10}  {:>17}\n{:>5}  {:>6.3}  {:>8.3}  {:>14.3}  {:>7.3}  {:>10.0}  {:>17}\n",
            self.dataset,
            "n",
            "found",
            "has gold",
            "first sentence",
            "char F1",
            "median len",
            "begins w/ heading",
            self.count,
            self.found,
            self.contains_gold,
            self.first_sentence_contains,
            self.char_f1,
            self.median_length,
            self.begins_with_furniture
        )
    }
}

/// Asks every question of `questions` of `engine` (extractive, no language model) and
/// scores the replies against their gold answers.
pub fn evaluate_extraction(
    engine: &Engine,
    name: &str,
    questions: &[GoldQuestion],
    progress: &dyn Progress,
) -> Result<ExtractionReport> {
    progress.stage("answers", questions.len() as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let scores: Vec<ExtractionScore> = questions
        .par_iter()
        .map(|q| {
            let request = AskRequest {
                question: q.text.clone(),
                k: DEFAULT_ANSWER_PASSAGES,
                source: None,
                mode: None,
            };
            let reply = ask_with(engine, &request, None)?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(16) {
                progress.position(n);
            }
            Ok(score_extraction(&q.id, &q.answers, &reply))
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let n = scores.len().max(1) as f64;
    let share =
        |f: &dyn Fn(&ExtractionScore) -> bool| scores.iter().filter(|s| f(s)).count() as f64 / n;
    let mut lengths: Vec<usize> = scores
        .iter()
        .filter(|s| s.found)
        .map(|s| s.length)
        .collect();
    lengths.sort_unstable();
    Ok(ExtractionReport {
        dataset: name.to_string(),
        count: scores.len(),
        found: share(&|s| s.found),
        contains_gold: share(&|s| s.contains_gold),
        first_sentence_contains: share(&|s| s.first_sentence_contains),
        char_f1: scores.iter().map(|s| s.char_f1).sum::<f64>() / n,
        median_length: super::answers::median(&lengths),
        begins_with_furniture: scores.iter().filter(|s| s.begins_with_furniture).count(),
        scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_joins_widths_and_scripts() {
        assert_eq!(fold("臺灣的ＡＩ發展"), fold("台湾的AI发展"));
        assert_eq!(fold("「战史演武」&「争霸演武」"), "战史演武争霸演武");
    }

    #[test]
    fn char_f1_and_sentences() {
        assert!((char_f1("锣鼓点", "锣鼓点") - 1.0).abs() < 1e-9);
        assert!((char_f1("锣鼓点", "称为锣鼓点") - 0.75).abs() < 1e-9);
        assert_eq!(char_f1("锣鼓点", ""), 0.0);
        assert_eq!(
            answer_sentences("甲是乙。[1]丙是丁。[2]"),
            vec!["甲是乙。", "丙是丁。"]
        );
    }

    #[test]
    fn samples_are_evenly_spaced() {
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(evenly_spaced(&items, Some(5)), vec![0, 2, 4, 6, 8]);
        assert_eq!(evenly_spaced(&items, None).len(), 10);
        assert_eq!(evenly_spaced(&items, Some(20)).len(), 10);
    }
}
