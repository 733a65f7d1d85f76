//! BEIR-format retrieval sets (`corpus.jsonl`, `queries.jsonl`, `qrels.tsv`), judged by
//! passage id through the qrels into the same [`QueryOutcome`] as the dev set.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::{QueryOutcome, TopItem};
use super::{EvalError, read_jsonl, read_lines, snippet};

/// Header line `qrels.tsv` starts with.
const QRELS_HEADER: [&str; 3] = ["query-id", "corpus-id", "score"];

/// One passage of a BEIR corpus (`{"id"|"_id", "title", "text"}`); the id is the
/// relevance key and `title` defaults to empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeirDoc {
    /// Corpus id (also read from BEIR's `_id`).
    #[serde(alias = "_id")]
    pub id: String,
    /// Article title; empty when absent.
    #[serde(default)]
    pub title: String,
    /// Passage text.
    pub text: String,
}

/// One BEIR query (`{"id"|"_id", "text"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeirQuery {
    /// Query id (also read from BEIR's `_id`).
    #[serde(alias = "_id")]
    pub id: String,
    /// Query text.
    pub text: String,
}

/// A BEIR folder loaded in memory: the corpus to index, the judged queries, and the
/// graded qrels (query id → corpus id → grade; grade > 0 counts as relevant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeirSet {
    /// Folder name, e.g. `cmrc2018-dev`.
    pub name: String,
    /// All passages of `corpus.jsonl`, in file order.
    pub corpus: Vec<BeirDoc>,
    /// Queries with at least one relevant judgment, in file order.
    pub queries: Vec<BeirQuery>,
    /// Judgments from `qrels.tsv`: query id → corpus id → grade.
    pub qrels: HashMap<String, HashMap<String, u32>>,
    /// Number of queries dropped from `queries` for having no judgment with grade > 0.
    pub skipped_queries: usize,
}

impl BeirSet {
    /// Loads `corpus.jsonl`, `queries.jsonl` and `qrels.tsv` from `dir`.
    ///
    /// Malformed lines, duplicate ids and bad qrels rows are errors naming file and line.
    /// Queries without a relevant judgment are skipped and counted in `skipped_queries`;
    /// judgments naming unknown queries or corpus ids are kept but logged as warnings.
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());

        let corpus_path = dir.join("corpus.jsonl");
        let corpus = unique_records::<BeirDoc>(&corpus_path, "corpus document", |d| &d.id)?;
        if corpus.is_empty() {
            return Err(EvalError::Empty {
                path: corpus_path,
                what: "corpus documents",
            });
        }

        let queries_path = dir.join("queries.jsonl");
        let all_queries = unique_records::<BeirQuery>(&queries_path, "query", |q| &q.id)?;
        if all_queries.is_empty() {
            return Err(EvalError::Empty {
                path: queries_path,
                what: "queries",
            });
        }

        let qrels_path = dir.join("qrels.tsv");
        let qrels = load_qrels(&qrels_path)?;

        let doc_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
        let query_ids: HashSet<&str> = all_queries.iter().map(|q| q.id.as_str()).collect();
        let unknown_docs = qrels
            .values()
            .flat_map(|docs| docs.keys())
            .filter(|d| !doc_ids.contains(d.as_str()))
            .count();
        if unknown_docs > 0 {
            tracing::warn!(
                file = %qrels_path.display(),
                "{unknown_docs} judgments name corpus ids missing from corpus.jsonl; those passages can never be retrieved"
            );
        }
        let unknown_queries = qrels
            .keys()
            .filter(|q| !query_ids.contains(q.as_str()))
            .count();
        if unknown_queries > 0 {
            tracing::warn!(
                file = %qrels_path.display(),
                "{unknown_queries} judged query ids are missing from queries.jsonl and are ignored"
            );
        }

        let total = all_queries.len();
        let queries: Vec<BeirQuery> = all_queries
            .into_iter()
            .filter(|q| {
                qrels
                    .get(&q.id)
                    .is_some_and(|docs| docs.values().any(|&grade| grade > 0))
            })
            .collect();
        let skipped_queries = total - queries.len();
        if skipped_queries > 0 {
            tracing::info!(
                set = %name,
                "skipped {skipped_queries} of {total} queries that have no relevant judgment in qrels.tsv"
            );
        }
        if queries.is_empty() {
            return Err(EvalError::Empty {
                path: qrels_path,
                what: "relevant judgments (score > 0) for any query of queries.jsonl",
            });
        }

        Ok(BeirSet {
            name,
            corpus,
            queries,
            qrels,
            skipped_queries,
        })
    }

    /// Judges one query against the corpus ids the system returned, best first.
    pub fn judge(&self, query: &BeirQuery, ranked_ids: &[impl AsRef<str>]) -> QueryOutcome {
        judge_by_qrels(
            &query.id,
            &query.text,
            self.qrels.get(&query.id),
            ranked_ids,
        )
    }

    /// All judgments as `(query id, corpus id, grade)` rows sorted by query then corpus
    /// id, for writing a TREC qrels file.
    pub fn qrels_rows(&self) -> Vec<(String, String, u32)> {
        let mut rows: Vec<(String, String, u32)> = self
            .qrels
            .iter()
            .flat_map(|(q, docs)| docs.iter().map(|(d, &g)| (q.clone(), d.clone(), g)))
            .collect();
        rows.sort();
        rows
    }
}

/// Judges a ranked list of corpus ids by qrels: each corpus id with grade > 0 is one
/// relevant item (binary gain), repeated ids gain once; the group is `"all"`.
pub fn judge_by_qrels(
    query_id: &str,
    query_text: &str,
    judgments: Option<&HashMap<String, u32>>,
    ranked_ids: &[impl AsRef<str>],
) -> QueryOutcome {
    let mut relevant: Vec<&str> = judgments
        .into_iter()
        .flatten()
        .filter(|(_, grade)| **grade > 0)
        .map(|(id, _)| id.as_str())
        .collect();
    relevant.sort_unstable();
    let index: HashMap<&str, usize> = relevant
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let hit_sets: Vec<Vec<usize>> = ranked_ids
        .iter()
        .map(|id| index.get(id.as_ref()).map(|&i| vec![i]).unwrap_or_default())
        .collect();
    let mut outcome = QueryOutcome::new(query_id, query_text, "all", relevant.len(), &hit_sets);
    outcome.expected = relevant.iter().map(|id| id.to_string()).collect();
    outcome.top = ranked_ids
        .iter()
        .take(3)
        .map(|id| TopItem {
            id: id.as_ref().to_string(),
            source: None,
            char_start: None,
            char_end: None,
        })
        .collect();
    outcome
}

/// Reads a JSONL file of records whose ids must be non-empty and unique.
fn unique_records<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    id: impl Fn(&T) -> &String,
) -> Result<Vec<T>, EvalError> {
    let records: Vec<(usize, T)> = read_jsonl(path, what)?;
    let mut first_line: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut out = Vec::with_capacity(records.len());
    for (line, record) in records {
        let key = id(&record);
        if key.trim().is_empty() {
            return Err(EvalError::Invalid {
                path: path.to_path_buf(),
                line,
                message: format!("{what} has an empty id \"\"; give every {what} a unique id"),
            });
        }
        if let Some(first) = first_line.get(key) {
            return Err(EvalError::Invalid {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "{what} id {key:?} is already used on line {first}; ids must be unique"
                ),
            });
        }
        first_line.insert(key.clone(), line);
        out.push(record);
    }
    Ok(out)
}

/// Reads `qrels.tsv`: header `query-id<TAB>corpus-id<TAB>score`, then one judgment a line.
fn load_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>, EvalError> {
    let lines = read_lines(path)?;
    let mut rows = lines.iter().peekable();
    match rows.peek() {
        None => {
            return Err(EvalError::Empty {
                path: path.to_path_buf(),
                what: "judgments",
            });
        }
        Some((line, text)) => {
            let fields: Vec<&str> = text.split('\t').map(str::trim).collect();
            if fields == QRELS_HEADER {
                rows.next();
            } else if split_row(text).is_some_and(|f| f[2].parse::<u32>().is_ok()) {
                tracing::warn!(
                    file = %path.display(),
                    "line {line} is not the header query-id<TAB>corpus-id<TAB>score; reading it as a judgment"
                );
            } else {
                return Err(EvalError::Invalid {
                    path: path.to_path_buf(),
                    line: *line,
                    message: format!(
                        "expected the header \"query-id<TAB>corpus-id<TAB>score\", found {:?}; \
                         add that header as the first line",
                        snippet(text)
                    ),
                });
            }
        }
    }
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    let mut overwritten = 0usize;
    for (line, text) in rows {
        let invalid = |message: String| EvalError::Invalid {
            path: path.to_path_buf(),
            line: *line,
            message,
        };
        let Some([query, doc, score]) = split_row(text) else {
            return Err(invalid(format!(
                "expected 3 tab-separated fields query-id, corpus-id, score, found {:?}; fix or remove that line",
                snippet(text)
            )));
        };
        let grade: u32 = score.parse().map_err(|_| {
            invalid(format!(
                "score {score:?} is not a non-negative integer; use 0 for not relevant, 1 or more for relevant"
            ))
        })?;
        if qrels
            .entry(query.to_string())
            .or_default()
            .insert(doc.to_string(), grade)
            .is_some()
        {
            overwritten += 1;
        }
    }
    if overwritten > 0 {
        tracing::warn!(
            file = %path.display(),
            "{overwritten} repeated (query-id, corpus-id) pairs; the last score of each is used"
        );
    }
    Ok(qrels)
}

/// Splits a qrels row into 3 non-empty fields by tabs, or by whitespace if it has no tabs.
fn split_row(text: &str) -> Option<[&str; 3]> {
    let fields: Vec<&str> = if text.contains('\t') {
        text.split('\t').map(str::trim).collect()
    } else {
        text.split_whitespace().collect()
    };
    match fields.as_slice() {
        [q, d, s] if !q.is_empty() && !d.is_empty() && !s.is_empty() => Some([q, d, s]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(dir: &Path, corpus: &str, queries: &str, qrels: &str) {
        std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
        std::fs::write(dir.join("qrels.tsv"), qrels).unwrap();
    }

    const CORPUS: &str = concat!(
        r#"{"id": "D0", "title": "战国无双3", "text": "《战国无双3》是由光荣和ω-force开发的。"}"#,
        "\n",
        r#"{"_id": "D1", "text": "梵語的學術研究"}"#,
        "\n",
        r#"{"id": "D2", "title": "", "text": "第三段"}"#,
        "\n"
    );
    const QUERIES: &str = concat!(
        r#"{"id": "Q0", "text": "哪两个公司？"}"#,
        "\n",
        r#"{"id": "Q1", "text": "梵语？"}"#,
        "\n",
        r#"{"id": "Q2", "text": "没有判断"}"#,
        "\n",
        r#"{"id": "Q3", "text": "只有零分"}"#,
        "\n"
    );
    const QRELS: &str = "query-id\tcorpus-id\tscore\nQ0\tD0\t1\nQ1\tD1\t2\nQ1\tD2\t1\nQ3\tD2\t0\n";

    #[test]
    fn loads_folder_and_skips_unjudged_queries() {
        let dir = tempfile::tempdir().unwrap();
        let set_dir = dir.path().join("mini-dev");
        std::fs::create_dir(&set_dir).unwrap();
        write_set(&set_dir, CORPUS, QUERIES, QRELS);
        let set = BeirSet::load(&set_dir).unwrap();
        assert_eq!(set.name, "mini-dev");
        assert_eq!(set.corpus.len(), 3);
        assert_eq!(set.corpus[1].id, "D1"); // read from "_id"
        assert_eq!(set.corpus[1].title, ""); // defaulted
        let ids: Vec<&str> = set.queries.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, vec!["Q0", "Q1"]); // Q2 has no qrels, Q3 only grade 0
        assert_eq!(set.skipped_queries, 2);
        assert_eq!(set.qrels["Q1"]["D1"], 2);
        assert_eq!(
            set.qrels_rows(),
            vec![
                ("Q0".into(), "D0".into(), 1),
                ("Q1".into(), "D1".into(), 2),
                ("Q1".into(), "D2".into(), 1),
                ("Q3".into(), "D2".into(), 0),
            ]
        );

        // Q1 has 2 relevant ids; ranking [D9, D1, D1, D2]:
        // gains [0, 1, 0, 1] -> DCG = 1/log2(3) + 1/log2(5) = 1.061606,
        // IDCG = 1 + 1/log2(3) = 1.630930, nDCG = 0.650920; MRR = 1/2.
        let o = set.judge(&set.queries[1], &["D9", "D1", "D1", "D2"]);
        assert_eq!(o.kind, "all");
        assert_eq!(o.num_relevant, 2);
        assert_eq!(o.hit_ranks(), vec![2, 3, 4]);
        assert_eq!(o.new_relevant_at, vec![false, true, false, true]);
        assert!((o.ndcg_at(10) - 0.650_920).abs() < 1e-6);
        assert_eq!(o.reciprocal_rank_at(10), 0.5);
        assert_eq!(o.top.len(), 3);
        assert_eq!(o.expected, vec!["D1".to_string(), "D2".to_string()]);
    }

    #[test]
    fn grade_zero_is_not_relevant() {
        let mut judgments = HashMap::new();
        judgments.insert("D0".to_string(), 0);
        judgments.insert("D1".to_string(), 1);
        let o = judge_by_qrels("q", "t", Some(&judgments), &["D0", "D1"]);
        assert_eq!(o.num_relevant, 1);
        assert_eq!(o.first_hit_rank(), Some(2));
        let none = judge_by_qrels("q", "t", None, &["D0"]);
        assert_eq!(none.num_relevant, 0);
        assert!(none.is_miss());
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        write_set(d, &format!("{CORPUS}{{\"id\": \"D3\"\n"), QUERIES, QRELS);
        let err = BeirSet::load(d).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EvalError::Json { line: 4, .. }), "{msg}");
        assert!(msg.contains("corpus.jsonl"), "{msg}");

        write_set(
            d,
            CORPUS,
            QUERIES,
            "query-id\tcorpus-id\tscore\nQ0\tD0\t1\nQ1\tD1\n",
        );
        let err = BeirSet::load(d).unwrap_err();
        assert!(matches!(err, EvalError::Invalid { line: 3, .. }), "{err}");
        assert!(err.to_string().contains("qrels.tsv"), "{err}");

        write_set(
            d,
            CORPUS,
            QUERIES,
            "query-id\tcorpus-id\tscore\nQ0\tD0\tyes\n",
        );
        let msg = BeirSet::load(d).unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("\"yes\""), "{msg}");

        write_set(d, CORPUS, QUERIES, "qid docid rel extra\nQ0\tD0\t1\n");
        let msg = BeirSet::load(d).unwrap_err().to_string();
        assert!(msg.contains("line 1") && msg.contains("header"), "{msg}");

        let dup = format!("{QUERIES}{{\"id\": \"Q0\", \"text\": \"again\"}}\n");
        write_set(d, CORPUS, &dup, QRELS);
        let msg = BeirSet::load(d).unwrap_err().to_string();
        assert!(
            msg.contains("line 5") && msg.contains("\"Q0\"") && msg.contains("line 1"),
            "{msg}"
        );

        write_set(
            d,
            CORPUS,
            QUERIES,
            "query-id\tcorpus-id\tscore\nQ0\tD0\t0\n",
        );
        assert!(matches!(BeirSet::load(d), Err(EvalError::Empty { .. })));

        let missing = d.join("nope");
        let msg = BeirSet::load(&missing).unwrap_err().to_string();
        assert!(
            msg.contains("corpus.jsonl") && msg.contains("cannot read"),
            "{msg}"
        );
    }

    #[test]
    fn headerless_qrels_are_read_as_data() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), CORPUS, QUERIES, "Q0 D0 1\n");
        let set = BeirSet::load(dir.path()).unwrap();
        assert_eq!(set.queries.len(), 1);
        assert_eq!(set.skipped_queries, 3);
    }
}
