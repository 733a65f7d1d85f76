//! TREC run and qrels files, so rankings can be cross-checked with `trec_eval` or
//! `ir_measures` independently of this crate's metrics.

use std::fmt::Write as _;
use std::path::Path;

use super::EvalError;

/// One qrels judgment: `(query id, doc id, relevance grade)`.
pub type QrelRow = (String, String, u32);

/// The ranking of one query for a run file: `(query id, [(doc id, score)])`, best first.
pub type RunRanking = (String, Vec<(String, f32)>);

/// Checks that a value can be one whitespace-separated TREC column.
fn token<'a>(field: &'static str, value: &'a str) -> Result<&'a str, EvalError> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(EvalError::Trec {
            field,
            value: value.to_string(),
            reason: "TREC files are whitespace-separated, so it must be non-empty and contain \
                     no spaces, tabs or newlines; rename it"
                .into(),
        });
    }
    Ok(value)
}

/// Renders a TREC run: one line `qid Q0 docid rank score run_name` per retrieved passage,
/// ranks 1-based in the given order.
///
/// `trec_eval` re-sorts each query by descending score (ties by doc id) and ignores the
/// rank column, so scores should decrease along the ranking; a warning is logged when
/// they do not. Non-finite scores and ids with whitespace are errors.
pub fn render_run(run_name: &str, runs: &[RunRanking]) -> Result<String, EvalError> {
    let run_name = token("run name", run_name)?;
    let mut out = String::new();
    let mut unsorted = 0usize;
    for (query_id, ranked) in runs {
        let query_id = token("query id", query_id)?;
        let mut previous = f32::INFINITY;
        for (index, (doc_id, score)) in ranked.iter().enumerate() {
            let doc_id = token("doc id", doc_id)?;
            if !score.is_finite() {
                return Err(EvalError::Trec {
                    field: "score",
                    value: score.to_string(),
                    reason: format!(
                        "the score of {doc_id} at rank {} for query {query_id} is not finite; \
                         fix the scoring or drop that passage",
                        index + 1
                    ),
                });
            }
            if *score > previous {
                unsorted += 1;
            }
            previous = *score;
            let _ = writeln!(
                out,
                "{query_id} Q0 {doc_id} {} {score} {run_name}",
                index + 1
            );
        }
    }
    if unsorted > 0 {
        tracing::warn!(
            run = run_name,
            "{unsorted} scores increase along their ranking; trec_eval will re-sort by score"
        );
    }
    Ok(out)
}

/// Renders a TREC qrels file: one line `qid 0 docid rel` per judgment.
pub fn render_qrels(rows: &[QrelRow]) -> Result<String, EvalError> {
    let mut out = String::new();
    for (query_id, doc_id, rel) in rows {
        let query_id = token("query id", query_id)?;
        let doc_id = token("doc id", doc_id)?;
        let _ = writeln!(out, "{query_id} 0 {doc_id} {rel}");
    }
    Ok(out)
}

/// Writes [`render_run`]'s output to `path`.
pub fn write_run_file(path: &Path, run_name: &str, runs: &[RunRanking]) -> Result<(), EvalError> {
    let text = render_run(run_name, runs)?;
    std::fs::write(path, text).map_err(|source| EvalError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes [`render_qrels`]'s output to `path`.
pub fn write_qrels_file(path: &Path, rows: &[QrelRow]) -> Result<(), EvalError> {
    let text = render_qrels(rows)?;
    std::fs::write(path, text).map_err(|source| EvalError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lines_have_six_columns_and_one_based_ranks() {
        let runs: Vec<RunRanking> = vec![
            (
                "d001".into(),
                vec![("c12".into(), 3.5), ("c7".into(), 1.25)],
            ),
            ("d002".into(), vec![("c3".into(), 0.5)]),
        ];
        let text = render_run("bm25", &runs).unwrap();
        assert_eq!(
            text,
            "d001 Q0 c12 1 3.5 bm25\nd001 Q0 c7 2 1.25 bm25\nd002 Q0 c3 1 0.5 bm25\n"
        );
    }

    #[test]
    fn qrels_lines() {
        let rows: Vec<QrelRow> = vec![
            ("d001".into(), "c12".into(), 1),
            ("Q1".into(), "D1".into(), 2),
        ];
        assert_eq!(render_qrels(&rows).unwrap(), "d001 0 c12 1\nQ1 0 D1 2\n");
    }

    #[test]
    fn rejects_whitespace_ids_and_nan_scores() {
        let err = render_run("my run", &[]).unwrap_err();
        assert!(err.to_string().contains("\"my run\""), "{err}");
        let runs: Vec<RunRanking> = vec![("q 1".into(), vec![("c".into(), 1.0)])];
        assert!(matches!(
            render_run("r", &runs),
            Err(EvalError::Trec {
                field: "query id",
                ..
            })
        ));
        let runs: Vec<RunRanking> = vec![("q1".into(), vec![("c".into(), f32::NAN)])];
        assert!(matches!(
            render_run("r", &runs),
            Err(EvalError::Trec { field: "score", .. })
        ));
        let rows: Vec<QrelRow> = vec![("q1".into(), "".into(), 1)];
        assert!(matches!(
            render_qrels(&rows),
            Err(EvalError::Trec {
                field: "doc id",
                ..
            })
        ));
    }

    #[test]
    fn writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run.txt");
        let qrels = dir.path().join("qrels.txt");
        write_run_file(&run, "dense", &[("q".into(), vec![("c".into(), 0.75)])]).unwrap();
        write_qrels_file(&qrels, &[("q".into(), "c".into(), 1)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(run).unwrap(),
            "q Q0 c 1 0.75 dense\n"
        );
        assert_eq!(std::fs::read_to_string(qrels).unwrap(), "q 0 c 1\n");
        let err = write_qrels_file(&dir.path().join("no/such/dir/q.txt"), &[]).unwrap_err();
        assert!(err.to_string().contains("cannot write"), "{err}");
    }
}
