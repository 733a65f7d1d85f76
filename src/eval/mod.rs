//! Retrieval evaluation: dev-set and BEIR loaders, the span-overlap relevance rule,
//! ranking metrics (Recall@k, MRR@10, nDCG@10), report rendering and TREC export.
//!
//! Pure logic: the caller runs retrieval and hands the ranked results in. Both the
//! dev set (relevance by evidence-span overlap) and BEIR folders (relevance by passage
//! id through qrels) are judged into the same [`QueryOutcome`], so one aggregator
//! ([`Metrics::mean_of`]) and one [`Report`] serve both.

pub mod answers;
pub mod beir;
pub mod dataset;
pub mod extraction;
pub mod metrics;
pub mod run;
pub mod trec;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use beir::{BeirDoc, BeirQuery, BeirSet, judge_by_qrels};
pub use dataset::{
    Evidence, Question, RetrievedSpan, covers_half, dev_qrels, judge_question, load_questions,
};
pub use metrics::{CUTOFF, Metrics, Miss, ModeReport, QueryOutcome, Report, TopItem};
pub use trec::{QrelRow, RunRanking, render_qrels, render_run, write_qrels_file, write_run_file};

/// Everything that can go wrong while loading evaluation files or writing TREC files.
///
/// Each message names the file, the 1-based line and the offending value where there
/// is one, and says what to do about it, so a bad data file can be fixed without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}; check that the folder exists and is writable", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A JSONL line is not valid JSON or does not have the expected fields and types.
    #[error(
        "cannot parse line {line} of {} as a {what}: {detail}; the line starts with {snippet:?}; \
         fix or remove that line (one JSON object per line)",
        path.display()
    )]
    Json {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// What the line should hold ("question", "corpus document", "query").
        what: &'static str,
        /// serde_json's description of the problem, with the column.
        detail: String,
        /// The first characters of the offending line.
        snippet: String,
        /// The underlying serde_json error.
        source: serde_json::Error,
    },
    /// A line parsed but its content breaks a rule (bad offsets, duplicate id, bad score...).
    #[error("invalid record on line {line} of {}: {message}", path.display())]
    Invalid {
        /// The file holding the record.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong, with the offending value and what to do.
        message: String,
    },
    /// A file (or a whole data set) holds no usable records.
    #[error("{} holds no {what}; check that it is the right file and that it is not empty", path.display())]
    Empty {
        /// The file or folder.
        path: PathBuf,
        /// What was expected ("questions", "corpus documents", ...).
        what: &'static str,
    },
    /// A value cannot be written into a whitespace-separated TREC file.
    #[error("cannot write TREC {field} {value:?}: {reason}")]
    Trec {
        /// Which field ("query id", "doc id", "run name", "score").
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected and what to do.
        reason: String,
    },
}

/// Reads a text file as numbered lines (1-based), skipping blank lines.
///
/// Strips a UTF-8 byte-order mark and trailing `\r`, and checks UTF-8 line by line so
/// that an encoding error names its line.
pub(crate) fn read_lines(path: &Path) -> Result<Vec<(usize, String)>, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|e| EvalError::Invalid {
            path: path.to_path_buf(),
            line,
            message: format!("not valid UTF-8 ({e}); re-save the file as UTF-8"),
        })?;
        if !text.trim().is_empty() {
            lines.push((line, text.to_string()));
        }
    }
    Ok(lines)
}

/// Parses a JSONL file into records of type `T`, each paired with its 1-based line number.
///
/// Blank lines are skipped; unknown fields are ignored; the first bad line stops the
/// load with an [`EvalError::Json`] naming it.
pub(crate) fn read_jsonl<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Vec<(usize, T)>, EvalError> {
    let mut records = Vec::new();
    for (line, text) in read_lines(path)? {
        match serde_json::from_str::<T>(&text) {
            Ok(record) => records.push((line, record)),
            Err(source) => {
                let full = source.to_string();
                let suffix = format!(" at line {} column {}", source.line(), source.column());
                let detail = match full.strip_suffix(&suffix) {
                    Some(head) => format!("{head} (column {})", source.column()),
                    None => full,
                };
                return Err(EvalError::Json {
                    path: path.to_path_buf(),
                    line,
                    what,
                    detail,
                    snippet: snippet(&text),
                    source,
                });
            }
        }
    }
    Ok(records)
}

/// Shortens a line to its first 60 characters for error messages.
pub(crate) fn snippet(text: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_lines_skips_blank_strips_bom_and_cr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, b"\xEF\xBB\xBFa\r\n\n  \nb\n").unwrap();
        let lines = read_lines(&path).unwrap();
        assert_eq!(lines, vec![(1, "a".to_string()), (4, "b".to_string())]);
    }

    #[test]
    fn invalid_utf8_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, b"ok\n\xFF\xFE\n").unwrap();
        let err = read_lines(&path).unwrap_err();
        assert!(matches!(err, EvalError::Invalid { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn missing_file_names_path() {
        let err = read_lines(Path::new("/nonexistent/eval/file.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/eval/file.jsonl"),
            "{err}"
        );
    }
}

/// Loads the shared data sets that sit next to the crate (`../shared`); ignored, with
/// the reason, where they are absent (see `build.rs`).
#[cfg(test)]
mod shared_data_tests {
    use super::*;

    fn shared() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
    }

    #[test]
    #[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
    fn loads_shared_dev_set() {
        let path = shared().join("eval/dev.jsonl");
        let questions = load_questions(&path).unwrap();
        assert!(!questions.is_empty());
        // The evidence spans themselves, as retrieved passages, are all relevant.
        for q in &questions {
            let ranked: Vec<RetrievedSpan> = q
                .evidence
                .iter()
                .enumerate()
                .map(|(i, e)| RetrievedSpan {
                    id: format!("{}-{i}", q.id),
                    source: e.source.clone(),
                    char_start: e.char_start,
                    char_end: e.char_end,
                })
                .collect();
            let outcome = judge_question(q, &ranked);
            assert_eq!(outcome.first_hit_rank(), Some(1), "{}", q.id);
            assert!(outcome.ndcg_at(CUTOFF) > 0.999, "{}", q.id);
        }
    }

    #[test]
    #[cfg_attr(not(shared_data), ignore = "needs ../shared beside the checkout")]
    fn loads_shared_bench_sets() {
        for name in ["cmrc2018-dev", "drcd-dev"] {
            let dir = shared().join("bench").join(name);
            let set = BeirSet::load(&dir).unwrap();
            assert_eq!(set.name, name);
            assert!(!set.corpus.is_empty() && !set.queries.is_empty());
            assert_eq!(set.skipped_queries, 0);
        }
    }
}
