//! The dev question set, the spans a retrieval system returns, and the README's
//! relevance rule: same source and the passage covers at least half of an evidence span.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::{QueryOutcome, TopItem};
use super::{EvalError, read_jsonl};

/// One evidence span of a dev question: an exact substring of a corpus file located by
/// code point offsets, so that a retrieved passage can be judged by overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// File name of the report in `corpus/` the span comes from.
    pub source: String,
    /// The exact text of the span (informational; relevance uses the offsets).
    pub text: String,
    /// 0-based start offset in Unicode code points (`text.chars()`), inclusive.
    pub char_start: usize,
    /// 0-based end offset in Unicode code points, exclusive.
    pub char_end: usize,
    /// 1-based line of `char_start` in the file, for humans reading reports.
    pub line: usize,
}

impl Evidence {
    /// Length of the span in code points (`char_end - char_start`, 0 if reversed).
    pub fn span_len(&self) -> usize {
        self.char_end.saturating_sub(self.char_start)
    }

    /// Short `source:start-end` label used in miss listings.
    pub fn label(&self) -> String {
        format!("{}:{}-{}", self.source, self.char_start, self.char_end)
    }
}

/// One dev-set question with its reference answer and the evidence spans that
/// make a retrieved passage relevant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// Unique question id, e.g. `d001`.
    pub id: String,
    /// The question text as a user would ask it.
    pub question: String,
    /// A short reference answer (not used by the retrieval metrics).
    pub answer: String,
    /// Evidence spans; hitting any one of them makes a passage relevant.
    pub evidence: Vec<Evidence>,
    /// Question category (`lexical`, `paraphrase`, `numeric`, `entity`, `multi`) used to
    /// break metrics down.
    pub kind: String,
}

/// Loads the dev questions from a JSONL file (one [`Question`] per line).
///
/// Blank lines are skipped. Rejects, naming the line: malformed JSON or missing fields,
/// empty or duplicate ids, empty `kind`, no evidence, and evidence spans with
/// `char_end <= char_start`. A mismatch between `text` and the offsets' length is only
/// logged, because relevance uses the offsets.
pub fn load_questions(path: &Path) -> Result<Vec<Question>, EvalError> {
    let records: Vec<(usize, Question)> = read_jsonl(path, "question")?;
    if records.is_empty() {
        return Err(EvalError::Empty {
            path: path.to_path_buf(),
            what: "questions",
        });
    }
    let invalid = |line: usize, message: String| EvalError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut questions = Vec::with_capacity(records.len());
    for (line, q) in records {
        if q.id.trim().is_empty() {
            return Err(invalid(
                line,
                "empty question id \"\"; give every question a unique non-empty id".into(),
            ));
        }
        if let Some(first) = first_line.get(&q.id) {
            return Err(invalid(
                line,
                format!(
                    "question id {:?} is already used on line {first}; give every question a unique id",
                    q.id
                ),
            ));
        }
        first_line.insert(q.id.clone(), line);
        if q.kind.trim().is_empty() {
            return Err(invalid(
                line,
                format!(
                    "question {:?} has an empty \"kind\"; set it to lexical, paraphrase, numeric, entity or multi",
                    q.id
                ),
            ));
        }
        if q.evidence.is_empty() {
            return Err(invalid(
                line,
                format!(
                    "question {:?} has no evidence spans, so no passage can be relevant; add at least one",
                    q.id
                ),
            ));
        }
        for (i, ev) in q.evidence.iter().enumerate() {
            if ev.source.trim().is_empty() {
                return Err(invalid(
                    line,
                    format!(
                        "evidence #{} of question {:?} has an empty \"source\"; set it to the corpus file name",
                        i + 1,
                        q.id
                    ),
                ));
            }
            if ev.char_end <= ev.char_start {
                return Err(invalid(
                    line,
                    format!(
                        "evidence #{} of question {:?} has char_start {} >= char_end {}; \
                         offsets are 0-based end-exclusive code points, so char_end must be larger",
                        i + 1,
                        q.id,
                        ev.char_start,
                        ev.char_end
                    ),
                ));
            }
            let text_len = ev.text.chars().count();
            if text_len != ev.span_len() {
                tracing::warn!(
                    file = %path.display(),
                    line,
                    question = %q.id,
                    "evidence #{} text has {} code points but char_end - char_start = {}; relevance uses the offsets",
                    i + 1,
                    text_len,
                    ev.span_len()
                );
            }
        }
        questions.push(q);
    }
    Ok(questions)
}

/// One ranked passage as the retrieval system returns it, carrying its exact span
/// in the original file (which is also what a citation needs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RetrievedSpan {
    /// The passage (chunk) id in the index.
    pub id: String,
    /// File name of the corpus document the passage comes from.
    pub source: String,
    /// 0-based start offset in Unicode code points in the original file, inclusive.
    pub char_start: usize,
    /// 0-based end offset in Unicode code points in the original file, exclusive.
    pub char_end: usize,
}

impl RetrievedSpan {
    /// Whether this passage is a hit for `evidence` under the README rule: same source
    /// and [`covers_half`] of the evidence span.
    pub fn hits(&self, evidence: &Evidence) -> bool {
        self.source == evidence.source
            && covers_half(
                self.char_start,
                self.char_end,
                evidence.char_start,
                evidence.char_end,
            )
    }

    /// Whether this passage hits at least one evidence span of `question`.
    pub fn is_relevant_to(&self, question: &Question) -> bool {
        question.evidence.iter().any(|ev| self.hits(ev))
    }
}

/// Whether the passage span `[passage_start, passage_end)` covers at least half of the
/// evidence span `[evidence_start, evidence_end)`: `overlap * 2 >= evidence length`.
///
/// Exact integer arithmetic, no rounding of one half: an evidence span of odd length `L`
/// needs `ceil(L / 2)` covered code points (5 → 3, 2 is not enough), one of even length
/// exactly `L / 2` (4 → 2). An empty evidence span is never hit.
pub fn covers_half(
    passage_start: usize,
    passage_end: usize,
    evidence_start: usize,
    evidence_end: usize,
) -> bool {
    let evidence_len = evidence_end.saturating_sub(evidence_start);
    if evidence_len == 0 {
        return false;
    }
    let overlap = passage_end
        .min(evidence_end)
        .saturating_sub(passage_start.max(evidence_start));
    // overlap * 2 >= len  <=>  overlap >= ceil(len / 2), written without overflow.
    overlap >= evidence_len - evidence_len / 2
}

/// The distinct evidence spans of a question as `(source, start, end)`, in file order of
/// first appearance; duplicates count once as the README's "each distinct evidence span".
fn distinct_spans(question: &Question) -> Vec<&Evidence> {
    let mut seen = HashSet::new();
    question
        .evidence
        .iter()
        .filter(|ev| ev.span_len() > 0)
        .filter(|ev| seen.insert((ev.source.as_str(), ev.char_start, ev.char_end)))
        .collect()
}

/// Judges one dev question against the ranked passages the system returned for it.
///
/// Each distinct evidence span is one relevant item: a passage's gain is 1 when it hits
/// a span no higher-ranked passage already hit (see [`QueryOutcome`]). The miss listing
/// gets the evidence labels and the top 3 passages.
pub fn judge_question(question: &Question, ranked: &[RetrievedSpan]) -> QueryOutcome {
    let spans = distinct_spans(question);
    let hit_sets: Vec<Vec<usize>> = ranked
        .iter()
        .map(|passage| {
            spans
                .iter()
                .enumerate()
                .filter(|(_, ev)| passage.hits(ev))
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let mut outcome = QueryOutcome::new(
        &question.id,
        &question.question,
        &question.kind,
        spans.len(),
        &hit_sets,
    );
    outcome.expected = spans.iter().map(|ev| ev.label()).collect();
    outcome.top = ranked
        .iter()
        .take(3)
        .map(|p| TopItem {
            id: p.id.clone(),
            source: Some(p.source.clone()),
            char_start: Some(p.char_start),
            char_end: Some(p.char_end),
        })
        .collect();
    outcome
}

/// Lists, for TREC qrels, every passage of the whole index that is relevant to each
/// question under the README rule, as `(question id, passage id, 1)`.
///
/// Rows follow question order, then index order; a passage id is listed once per question.
/// Questions with no relevant passage in the index get no row (worth a look: the chunker
/// may split every evidence span so that no chunk covers half of it).
pub fn dev_qrels(questions: &[Question], passages: &[RetrievedSpan]) -> Vec<(String, String, u32)> {
    let mut by_source: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, p) in passages.iter().enumerate() {
        by_source.entry(p.source.as_str()).or_default().push(index);
    }
    let mut rows = Vec::new();
    for q in questions {
        let mut sources: Vec<&str> = Vec::new();
        for ev in &q.evidence {
            if !sources.contains(&ev.source.as_str()) {
                sources.push(ev.source.as_str());
            }
        }
        let mut candidates: Vec<usize> = sources
            .iter()
            .filter_map(|s| by_source.get(s))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable(); // index order across sources
        let mut listed = HashSet::new();
        let before = rows.len();
        for p in candidates.into_iter().map(|i| &passages[i]) {
            if p.is_relevant_to(q) && listed.insert(p.id.as_str()) {
                rows.push((q.id.clone(), p.id.clone(), 1));
            }
        }
        if rows.len() == before {
            tracing::warn!(question = %q.id, "no passage in the index covers half of any evidence span");
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(source: &str, start: usize, end: usize) -> Evidence {
        Evidence {
            source: source.into(),
            text: "x".repeat(end - start),
            char_start: start,
            char_end: end,
            line: 1,
        }
    }

    fn span(id: &str, source: &str, start: usize, end: usize) -> RetrievedSpan {
        RetrievedSpan {
            id: id.into(),
            source: source.into(),
            char_start: start,
            char_end: end,
        }
    }

    fn question(id: &str, kind: &str, evidence: Vec<Evidence>) -> Question {
        Question {
            id: id.into(),
            question: format!("question {id}"),
            answer: "a".into(),
            evidence,
            kind: kind.into(),
        }
    }

    #[test]
    fn relevance_boundary_even_length() {
        // Evidence [100, 110): length 10, needs overlap >= 5.
        let e = ev("a.txt", 100, 110);
        assert!(span("p", "a.txt", 105, 200).hits(&e)); // overlap [105,110) = 5 = exactly half
        assert!(!span("p", "a.txt", 106, 200).hits(&e)); // overlap 4 < 5
        assert!(span("p", "a.txt", 0, 105).hits(&e)); // overlap [100,105) = 5
        assert!(!span("p", "a.txt", 0, 104).hits(&e)); // overlap 4
        assert!(span("p", "a.txt", 90, 120).hits(&e)); // full cover
        assert!(span("p", "a.txt", 102, 108).hits(&e)); // passage inside evidence, overlap 6
        assert!(!span("p", "a.txt", 110, 120).hits(&e)); // touching end-exclusive: overlap 0
        // Same offsets, other source: never a hit.
        assert!(!span("p", "b.txt", 90, 120).hits(&e));
    }

    #[test]
    fn relevance_boundary_odd_length() {
        // Evidence [0, 5): length 5, half is 2.5, so 3 code points are needed (2*3 >= 5, 2*2 < 5).
        assert!(covers_half(2, 10, 0, 5)); // overlap 3
        assert!(!covers_half(3, 10, 0, 5)); // overlap 2
        // Length 1: one code point needed.
        assert!(covers_half(0, 1, 0, 1));
        assert!(!covers_half(1, 2, 0, 1));
        // Empty evidence is never hit; reversed passage covers nothing.
        assert!(!covers_half(0, 10, 5, 5));
        assert!(!covers_half(8, 2, 0, 10));
    }

    #[test]
    fn two_spans_hit_by_same_passage() {
        // Both spans inside one passage at rank 2: one gain at rank 2 covering 2 spans,
        // so DCG = 1/log2(3) = 0.6309, IDCG = 1 + 1/log2(3) = 1.6309, nDCG = 0.3869.
        let q = question("q", "multi", vec![ev("a.txt", 10, 20), ev("a.txt", 30, 40)]);
        let ranked = vec![span("x", "a.txt", 100, 200), span("y", "a.txt", 0, 50)];
        let o = judge_question(&q, &ranked);
        assert_eq!(o.num_relevant, 2);
        assert_eq!(o.hit_ranks(), vec![2]);
        assert_eq!(o.new_relevant_at, vec![false, true]);
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((o.ndcg_at(10) - expected).abs() < 1e-12);
        assert!((o.ndcg_at(10) - 0.386_852_807_234_541_6).abs() < 1e-9);
        assert_eq!(o.reciprocal_rank_at(10), 0.5);
    }

    #[test]
    fn repeated_hits_of_same_span_count_once() {
        // One span, hit at ranks 1 and 2: gains [1, 0], DCG = 1 = IDCG -> nDCG 1.
        // Without dedup the DCG would be 1.63 > IDCG.
        let q = question("q", "lexical", vec![ev("a.txt", 10, 20)]);
        let ranked = vec![span("x", "a.txt", 0, 30), span("y", "a.txt", 5, 25)];
        let o = judge_question(&q, &ranked);
        assert_eq!(o.relevant_at, vec![true, true]);
        assert_eq!(o.new_relevant_at, vec![true, false]);
        assert_eq!(o.hit_ranks(), vec![1, 2]);
        assert!((o.ndcg_at(10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn duplicate_evidence_counts_once() {
        let q = question(
            "q",
            "lexical",
            vec![ev("a.txt", 10, 20), ev("a.txt", 10, 20)],
        );
        let o = judge_question(&q, &[span("x", "a.txt", 0, 30)]);
        assert_eq!(o.num_relevant, 1);
        assert!((o.ndcg_at(10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn judge_fills_top_three_and_expected() {
        let q = question("q", "entity", vec![ev("a.txt", 10, 20)]);
        let ranked: Vec<_> = (0..5)
            .map(|i| span(&format!("p{i}"), "b.txt", i * 10, i * 10 + 10))
            .collect();
        let o = judge_question(&q, &ranked);
        assert!(o.is_miss());
        assert_eq!(o.top.len(), 3);
        assert_eq!(o.top[2].label(), "p2 b.txt:20-30");
        assert_eq!(o.expected, vec!["a.txt:10-20".to_string()]);
    }

    #[test]
    fn dev_qrels_lists_every_relevant_passage_once() {
        let questions = vec![
            question("q1", "multi", vec![ev("a.txt", 10, 20), ev("b.txt", 0, 4)]),
            question("q2", "lexical", vec![ev("c.txt", 0, 10)]),
        ];
        let passages = vec![
            span("b0", "b.txt", 0, 100), // covers q1's b span
            span("a0", "a.txt", 0, 15),  // covers [10,15) = 5 of 10: relevant
            span("a1", "a.txt", 15, 40), // covers [15,20) = 5 of 10: relevant
            span("a2", "a.txt", 16, 40), // 4 of 10: not relevant
            span("c9", "a.txt", 0, 10),  // wrong source for q2, misses q1
            span("a0", "a.txt", 0, 15),  // duplicate id: listed once
        ];
        let rows = dev_qrels(&questions, &passages);
        assert_eq!(
            rows,
            vec![
                ("q1".to_string(), "b0".to_string(), 1),
                ("q1".to_string(), "a0".to_string(), 1),
                ("q1".to_string(), "a1".to_string(), 1),
            ]
        );
    }

    fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    const GOOD: &str = r#"{"id": "d001", "question": "哪家公司？", "answer": "联通", "evidence": [{"source": "a.txt", "text": "方向二", "char_start": 4, "char_end": 7, "line": 2}], "kind": "entity"}"#;

    #[test]
    fn load_questions_reads_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let second = GOOD.replace("d001", "d002").replace("entity", "numeric");
        let path = write(dir.path(), "dev.jsonl", &format!("{GOOD}\n\n{second}\n"));
        let qs = load_questions(&path).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].id, "d001");
        assert_eq!(qs[0].evidence[0].char_end, 7);
        assert_eq!(qs[1].kind, "numeric");
    }

    #[test]
    fn load_questions_malformed_line_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "dev.jsonl",
            &format!("{GOOD}\n{{\"id\": \"d002\", \n"),
        );
        let err = load_questions(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EvalError::Json { line: 2, .. }), "{msg}");
        assert!(msg.contains("line 2 of"), "{msg}");
        assert!(msg.contains("dev.jsonl"), "{msg}");
    }

    #[test]
    fn load_questions_missing_field_names_field() {
        let dir = tempfile::tempdir().unwrap();
        let bad = GOOD.replace(r#", "kind": "entity""#, "");
        let path = write(dir.path(), "dev.jsonl", &format!("{bad}\n"));
        let msg = load_questions(&path).unwrap_err().to_string();
        assert!(msg.contains("line 1 of") && msg.contains("kind"), "{msg}");
    }

    #[test]
    fn load_questions_rejects_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let dup = write(dir.path(), "dup.jsonl", &format!("{GOOD}\n{GOOD}\n"));
        let msg = load_questions(&dup).unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("d001") && msg.contains("line 1"),
            "{msg}"
        );

        let reversed = GOOD.replace(r#""char_end": 7"#, r#""char_end": 4"#);
        let rev = write(dir.path(), "rev.jsonl", &format!("\n{reversed}\n"));
        let err = load_questions(&rev).unwrap_err();
        assert!(matches!(err, EvalError::Invalid { line: 2, .. }), "{err}");

        let no_ev = GOOD.replace(
            r#"[{"source": "a.txt", "text": "方向二", "char_start": 4, "char_end": 7, "line": 2}]"#,
            "[]",
        );
        let noev = write(dir.path(), "noev.jsonl", &format!("{no_ev}\n"));
        assert!(
            load_questions(&noev)
                .unwrap_err()
                .to_string()
                .contains("no evidence")
        );

        let empty = write(dir.path(), "empty.jsonl", "\n\n");
        assert!(matches!(
            load_questions(&empty),
            Err(EvalError::Empty { .. })
        ));
    }
}
