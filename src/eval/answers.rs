//! Measuring answers the way a staff member meets them: every question through the same
//! code path as `POST /api/ask` ([`crate::answer::ask_with`]), scored by the rules of
//! `shared/eval/README.md` (found, gold bigram recall, numbers present, cited evidence,
//! length), overall and per kind, plus the refusal rate on questions the reports cannot
//! answer.

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use super::{Question, covers_half};
use crate::answer::{Answer, AskRequest, ask_with};
use crate::error::Result;
use crate::progress::Progress;
use crate::retrieve::Engine;

/// The scores of one answer to an answerable question.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerScore {
    /// Question id.
    pub id: String,
    /// Question kind.
    pub kind: String,
    /// The reply claimed an answer.
    pub found: bool,
    /// Share of the gold answer's character bigrams found in the answer (0 on a refusal).
    pub bigram_recall: f64,
    /// Whether every number of the gold answer occurs in the answer; `None` when the
    /// gold answer has no number.
    pub numbers_present: Option<bool>,
    /// Some cited source covers at least half of an evidence span.
    pub cited_evidence: bool,
    /// Length of the answer text in characters.
    pub length: usize,
    /// The answer begins with a heading, section name, publisher or advertising line
    /// ([`begins_with_furniture`]).
    pub begins_with_furniture: bool,
    /// The reply's text.
    pub answer: String,
}

/// Mean scores of a group of answers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnswerMetrics {
    /// Questions in the group.
    pub count: usize,
    /// Share answered (`found: true`).
    pub answered: f64,
    /// Mean gold bigram recall.
    pub bigram_recall: f64,
    /// Share of numeric golds with every number present (`None` without numeric golds).
    pub numbers_present: Option<f64>,
    /// Share whose citations cover the evidence.
    pub cited_evidence: f64,
    /// Median answer length in characters.
    pub median_length: f64,
    /// Answers that begin with a heading, section name, publisher or advertising line
    /// (should be 0).
    pub begins_with_furniture: usize,
}

impl AnswerMetrics {
    /// The means over `scores`.
    pub fn of<'a>(scores: impl IntoIterator<Item = &'a AnswerScore>) -> AnswerMetrics {
        let scores: Vec<&AnswerScore> = scores.into_iter().collect();
        let n = scores.len().max(1) as f64;
        let share =
            |f: &dyn Fn(&AnswerScore) -> bool| scores.iter().filter(|s| f(s)).count() as f64 / n;
        let numeric: Vec<bool> = scores.iter().filter_map(|s| s.numbers_present).collect();
        let mut lengths: Vec<usize> = scores.iter().map(|s| s.length).collect();
        lengths.sort_unstable();
        AnswerMetrics {
            count: scores.len(),
            answered: share(&|s| s.found),
            bigram_recall: scores.iter().map(|s| s.bigram_recall).sum::<f64>() / n,
            numbers_present: (!numeric.is_empty())
                .then(|| numeric.iter().filter(|b| **b).count() as f64 / numeric.len() as f64),
            cited_evidence: share(&|s| s.cited_evidence),
            median_length: median(&lengths),
            begins_with_furniture: scores.iter().filter(|s| s.begins_with_furniture).count(),
        }
    }
}

pub(crate) fn median(sorted: &[usize]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
    }
}

/// One answer shown under `--verbose`: what was asked, expected and replied.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerMiss {
    /// Question id (empty for a negative).
    pub id: String,
    /// The question.
    pub question: String,
    /// The gold answer (empty for a negative).
    pub gold: String,
    /// The reply's text.
    pub answer: String,
    /// What went wrong, in words.
    pub problem: String,
}

/// The answer benchmark of one question set.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerReport {
    /// File name of the question set.
    pub dataset: String,
    /// Over all answerable questions.
    pub overall: AnswerMetrics,
    /// Per question kind.
    pub by_kind: BTreeMap<String, AnswerMetrics>,
    /// Negatives asked, when a negatives file was given.
    pub negatives: usize,
    /// Share of negatives refused (`found: false`).
    pub refusal_rate: Option<f64>,
    /// Refusal rate of the negatives in Chinese, and of the others (English), when any.
    pub refusal_by_language: BTreeMap<String, (usize, f64)>,
    /// Every answerable question's scores.
    pub scores: Vec<AnswerScore>,
    /// Answers that refused, missed gold bigrams or numbers, or cited no evidence; and
    /// negatives that were answered.
    pub misses: Vec<AnswerMiss>,
}

/// Text normalized for comparison: NFKC, lowercase, letters and digits only.
pub fn normalize(text: &str) -> String {
    text.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The answer text without citation markers like `[1]`.
pub(crate) fn without_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if close > 0 && after[..close].bytes().all(|b| b.is_ascii_digit()) => {
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Share of the gold text's character bigrams (after [`normalize`]) that occur in `answer`.
pub fn bigram_recall(gold: &str, answer: &str) -> f64 {
    let bigrams = |t: &str| -> HashSet<(char, char)> {
        let chars: Vec<char> = normalize(t).chars().collect();
        chars.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let gold = bigrams(gold);
    if gold.is_empty() {
        return 0.0;
    }
    let answer = bigrams(answer);
    gold.iter().filter(|b| answer.contains(b)).count() as f64 / gold.len() as f64
}

/// The numbers (`\d+(\.\d+)?`) of a normalized text. Normalization drops the dot, so a
/// decimal appears as its digits.
fn numbers(text: &str) -> Vec<String> {
    let normalized: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || *c == '.')
        .collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = normalized.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let is_decimal_dot = *c == '.'
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() || is_decimal_dot {
            current.push(*c);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a reply's answer begins with a heading, section name, publisher or advertising
/// line rather than a sentence that says something ([`crate::corpus::opens_with_furniture`]
/// on its first sentence, given the cited passage's section title). Refusals never do.
pub fn begins_with_furniture(reply: &Answer) -> bool {
    if !reply.found {
        return false;
    }
    let Some(first) = super::extraction::answer_sentences(&reply.answer)
        .into_iter()
        .next()
    else {
        return false;
    };
    let first = first.trim_start_matches('…');
    let section = reply
        .sources
        .first()
        .map(|s| s.citation.section.as_str())
        .unwrap_or("");
    crate::corpus::opens_with_furniture(first, section)
}

/// Scores one reply to an answerable question.
pub fn score_answer(question: &Question, reply: &Answer) -> AnswerScore {
    let text = if reply.found {
        without_markers(&reply.answer)
    } else {
        String::new()
    };
    let gold_numbers = numbers(&question.answer);
    let answer_numbers = numbers(&text);
    let cited_evidence = reply.found
        && reply.sources.iter().any(|s| {
            question.evidence.iter().any(|e| {
                e.source == s.citation.source
                    && covers_half(
                        s.citation.char_start,
                        s.citation.char_end,
                        e.char_start,
                        e.char_end,
                    )
            })
        });
    AnswerScore {
        id: question.id.clone(),
        kind: question.kind.clone(),
        found: reply.found,
        bigram_recall: bigram_recall(&question.answer, &text),
        numbers_present: (!gold_numbers.is_empty())
            .then(|| gold_numbers.iter().all(|n| answer_numbers.contains(n))),
        cited_evidence,
        length: text.chars().count(),
        begins_with_furniture: begins_with_furniture(reply),
        answer: reply.answer.clone(),
    }
}

/// Runs every question and negative through [`ask_with`] (no language model: the
/// extractive answer is what is measured) and scores the replies.
pub fn evaluate_answers(
    engine: &Engine,
    name: &str,
    questions: &[Question],
    negatives: &[String],
    progress: &dyn Progress,
) -> Result<AnswerReport> {
    let ask = |question: &str| {
        let request = AskRequest {
            question: question.to_string(),
            k: crate::answer::DEFAULT_ANSWER_PASSAGES,
            source: None,
            mode: None,
        };
        ask_with(engine, &request, None)
    };
    progress.stage("answers", (questions.len() + negatives.len()) as u64);
    let done = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.position(n);
    };
    let replies: Vec<Answer> = questions
        .par_iter()
        .map(|q| {
            let r = ask(&q.question);
            tick();
            r
        })
        .collect::<Result<_>>()?;
    let negative_replies: Vec<Answer> = negatives
        .par_iter()
        .map(|q| {
            let r = ask(q);
            tick();
            r
        })
        .collect::<Result<_>>()?;
    progress.finish();

    let scores: Vec<AnswerScore> = questions
        .iter()
        .zip(&replies)
        .map(|(q, r)| score_answer(q, r))
        .collect();
    let mut misses = Vec::new();
    for ((q, r), s) in questions.iter().zip(&replies).zip(&scores) {
        let mut problems = Vec::new();
        if !s.found {
            problems.push("refused".to_string());
        } else {
            if s.bigram_recall < 0.5 {
                problems.push(format!("bigram recall {:.2}", s.bigram_recall));
            }
            if s.numbers_present == Some(false) {
                problems.push("gold numbers missing".into());
            }
            if !s.cited_evidence {
                problems.push("no cited source covers the evidence".into());
            }
        }
        if !problems.is_empty() {
            misses.push(AnswerMiss {
                id: q.id.clone(),
                question: q.question.clone(),
                gold: q.answer.clone(),
                answer: r.answer.clone(),
                problem: problems.join("; "),
            });
        }
    }
    for (q, r) in negatives.iter().zip(&negative_replies) {
        if r.found {
            misses.push(AnswerMiss {
                id: String::new(),
                question: q.clone(),
                gold: String::new(),
                answer: r.answer.clone(),
                problem: "answered a question the reports cannot answer".into(),
            });
        }
    }
    let mut by_kind: BTreeMap<String, Vec<&AnswerScore>> = BTreeMap::new();
    for s in &scores {
        by_kind.entry(s.kind.clone()).or_default().push(s);
    }
    Ok(AnswerReport {
        dataset: name.to_string(),
        overall: AnswerMetrics::of(&scores),
        by_kind: by_kind
            .into_iter()
            .map(|(k, v)| (k, AnswerMetrics::of(v)))
            .collect(),
        negatives: negatives.len(),
        refusal_rate: (!negatives.is_empty()).then(|| {
            negative_replies.iter().filter(|r| !r.found).count() as f64
                / negative_replies.len() as f64
        }),
        refusal_by_language: refusal_by_language(negatives, &negative_replies),
        scores,
        misses,
    })
}

/// Refusal rates of the negatives in Chinese (`zh`) and in other languages (`en`).
fn refusal_by_language(negatives: &[String], replies: &[Answer]) -> BTreeMap<String, (usize, f64)> {
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (q, r) in negatives.iter().zip(replies) {
        let language = if crate::analysis::in_chinese(q) {
            "zh"
        } else {
            "en"
        };
        let entry = groups.entry(language.to_string()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(!r.found);
    }
    groups
        .into_iter()
        .map(|(k, (n, refused))| (k, (n, refused as f64 / n as f64)))
        .collect()
}

/// Reads a negatives file: one `{"question": …}` a line.
pub fn load_negatives(path: &std::path::Path) -> Result<Vec<String>, super::EvalError> {
    #[derive(serde::Deserialize)]
    struct Negative {
        question: String,
    }
    let records: Vec<(usize, Negative)> = super::read_jsonl(path, "negative question")?;
    Ok(records.into_iter().map(|(_, n)| n.question).collect())
}

impl AnswerReport {
    /// The table for people.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("answers: {}\n", self.dataset);
        let _ = writeln!(
            out,
            "{:<11} {:>3}  {:>8}  {:>7}  {:>7}  {:>5}  {:>10}",
            "group", "n", "answered", "bigrams", "numbers", "cited", "median len"
        );
        let row = |out: &mut String, name: &str, m: &AnswerMetrics| {
            let _ = writeln!(
                out,
                "{:<11} {:>3}  {:>8.3}  {:>7.3}  {:>7}  {:>5.3}  {:>10.0}",
                name,
                m.count,
                m.answered,
                m.bigram_recall,
                m.numbers_present
                    .map_or("-".to_string(), |v| format!("{v:.3}")),
                m.cited_evidence,
                m.median_length
            );
        };
        row(&mut out, "overall", &self.overall);
        for (kind, m) in &self.by_kind {
            row(&mut out, kind, m);
        }
        if let Some(rate) = self.refusal_rate {
            let _ = writeln!(
                out,
                "negatives   {:>3}  refused {:.3}",
                self.negatives, rate
            );
            for (language, (n, rate)) in &self.refusal_by_language {
                let _ = writeln!(out, "  {language:<9} {n:>3}  refused {rate:.3}");
            }
        }
        let _ = writeln!(
            out,
            "answers beginning with a heading or publisher line: {}",
            self.overall.begins_with_furniture
        );
        out
    }

    /// The misses for `--verbose`.
    pub fn render_misses(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for m in &self.misses {
            let _ = writeln!(out, "\n[{}] {} ({})", m.id, m.question, m.problem);
            if !m.gold.is_empty() {
                let _ = writeln!(out, "  gold:   {}", m.gold);
            }
            let _ = writeln!(out, "  answer: {}", m.answer);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_bigrams_follow_the_scoring_rules() {
        assert_eq!(normalize("ＡＩ 大模型，GPT-4！"), "ai大模型gpt4");
        assert_eq!(bigram_recall("九千家", "超过9000家。九千家门店"), 1.0);
        assert_eq!(bigram_recall("大模型", "模型"), 0.5);
        assert_eq!(bigram_recall("大模型", ""), 0.0);
        assert_eq!(without_markers("9000家[1]，见[12]与[a]"), "9000家，见与[a]");
    }

    #[test]
    fn numbers_are_found_with_their_decimals() {
        assert_eq!(numbers("增长48.5%，共1750亿参数"), vec!["48.5", "1750"]);
        assert_eq!(numbers("第３名"), vec!["3"]);
        assert!(numbers("没有数字").is_empty());
    }

    #[test]
    fn medians_and_shares() {
        let s = |found, recall: f64, numbers: Option<bool>, length| AnswerScore {
            id: "q".into(),
            kind: "k".into(),
            found,
            bigram_recall: recall,
            numbers_present: numbers,
            cited_evidence: found,
            length,
            begins_with_furniture: false,
            answer: String::new(),
        };
        let scores = [
            s(true, 1.0, Some(true), 10),
            s(true, 0.5, Some(false), 30),
            s(false, 0.0, None, 0),
        ];
        let m = AnswerMetrics::of(&scores);
        assert_eq!(m.count, 3);
        assert!((m.answered - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.bigram_recall - 0.5).abs() < 1e-9);
        assert_eq!(m.numbers_present, Some(0.5));
        assert_eq!(m.median_length, 10.0);
    }
}
