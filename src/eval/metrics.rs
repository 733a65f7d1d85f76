//! Per-query judgments, the metrics over them (Recall@1/5/10, MRR@10, nDCG@10),
//! and the per-mode report with its table, JSON form and verbose miss listing.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Rank cutoff of the report's metrics: misses, MRR@10 and nDCG@10 look at the top 10.
pub const CUTOFF: usize = 10;

/// One retrieved item as shown in the miss listing: its id and, for the dev set, its span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopItem {
    /// Passage id in the index (BEIR: corpus id).
    pub id: String,
    /// Source file of the passage (dev set only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Start offset in code points (dev set only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_start: Option<usize>,
    /// End offset in code points, exclusive (dev set only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_end: Option<usize>,
}

impl TopItem {
    /// Short `id source:start-end` label (just `id` when there is no span).
    pub fn label(&self) -> String {
        match (&self.source, self.char_start, self.char_end) {
            (Some(source), Some(start), Some(end)) => format!("{} {source}:{start}-{end}", self.id),
            (Some(source), _, _) => format!("{} {source}", self.id),
            _ => self.id.clone(),
        }
    }
}

/// The judged ranked list of one query, the common form both the dev set (span
/// overlap) and BEIR sets (qrels by id) produce, so one aggregator serves both.
///
/// A "relevant item" is a distinct evidence span (dev) or a relevant corpus id (BEIR).
/// Binary gains: the passage at rank i gains 1 when it hits at least one relevant item
/// that no higher-ranked passage already hit, else 0 (`new_relevant_at`). nDCG@k then
/// uses DCG = Σ gain_i / log2(i + 1) over ranks i ≤ k and
/// IDCG = Σ_{i=1}^{min(num_relevant, k)} 1 / log2(i + 1). Recall@k is the README's
/// "share of questions with a hit in the top k", so per query it is 0 or 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryOutcome {
    /// Question / query id.
    pub query_id: String,
    /// Question text, for the miss listing.
    pub query: String,
    /// Group the query is reported under (dev `kind`; `"all"` for BEIR).
    pub kind: String,
    /// Number of distinct relevant items (evidence spans or relevant ids).
    pub num_relevant: usize,
    /// Per rank (index 0 = rank 1): the passage hits at least one relevant item.
    pub relevant_at: Vec<bool>,
    /// Per rank: the passage hits a relevant item not hit higher up (its binary gain).
    pub new_relevant_at: Vec<bool>,
    /// Labels of the relevant items (evidence `source:start-end` or corpus ids).
    pub expected: Vec<String>,
    /// The first three retrieved items, for the miss listing.
    pub top: Vec<TopItem>,
}

impl QueryOutcome {
    /// Builds an outcome from, per rank, the indices (in `0..num_relevant`) of the
    /// relevant items that passage hits; `expected` and `top` start empty for the caller.
    pub fn new(
        query_id: &str,
        query: &str,
        kind: &str,
        num_relevant: usize,
        hit_sets: &[Vec<usize>],
    ) -> Self {
        let mut seen = HashSet::new();
        let mut relevant_at = Vec::with_capacity(hit_sets.len());
        let mut new_relevant_at = Vec::with_capacity(hit_sets.len());
        for hits in hit_sets {
            let mut fresh = false;
            for &item in hits.iter().filter(|&&i| i < num_relevant) {
                fresh |= seen.insert(item);
            }
            relevant_at.push(hits.iter().any(|&i| i < num_relevant));
            new_relevant_at.push(fresh);
        }
        QueryOutcome {
            query_id: query_id.to_string(),
            query: query.to_string(),
            kind: kind.to_string(),
            num_relevant,
            relevant_at,
            new_relevant_at,
            expected: Vec::new(),
            top: Vec::new(),
        }
    }

    /// 1-based ranks of all relevant passages (including repeated hits of one item).
    pub fn hit_ranks(&self) -> Vec<usize> {
        self.relevant_at
            .iter()
            .enumerate()
            .filter(|(_, hit)| **hit)
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// 1-based rank of the first relevant passage, if any.
    pub fn first_hit_rank(&self) -> Option<usize> {
        self.relevant_at.iter().position(|hit| *hit).map(|i| i + 1)
    }

    /// Whether a relevant passage appears in the top `k` (the per-query Recall@k, 0 or 1).
    pub fn hit_at(&self, k: usize) -> bool {
        self.first_hit_rank().is_some_and(|rank| rank <= k)
    }

    /// Whether the query has no hit in the top [`CUTOFF`] (listed as a miss).
    pub fn is_miss(&self) -> bool {
        !self.hit_at(CUTOFF)
    }

    /// 1/rank of the first relevant passage within the top `k`, else 0.
    pub fn reciprocal_rank_at(&self, k: usize) -> f64 {
        match self.first_hit_rank() {
            Some(rank) if rank <= k => 1.0 / rank as f64,
            _ => 0.0,
        }
    }

    /// nDCG@k with the binary new-item gains described on [`QueryOutcome`]; 0 when the
    /// query has no relevant item.
    pub fn ndcg_at(&self, k: usize) -> f64 {
        let discount = |i: usize| 1.0 / ((i + 2) as f64).log2(); // i is 0-based
        let dcg: f64 = self
            .new_relevant_at
            .iter()
            .take(k)
            .enumerate()
            .filter(|(_, gain)| **gain)
            .map(|(i, _)| discount(i))
            .sum();
        let idcg: f64 = (0..self.num_relevant.min(k)).map(discount).sum();
        if idcg > 0.0 { dcg / idcg } else { 0.0 }
    }
}

/// Mean metrics over a group of queries; all zero when the group is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of queries averaged.
    pub count: usize,
    /// Share of queries with a hit at rank 1.
    pub recall_at_1: f64,
    /// Share of queries with a hit in the top 5.
    pub recall_at_5: f64,
    /// Share of queries with a hit in the top 10.
    pub recall_at_10: f64,
    /// Mean of 1/rank of the first hit (0 past rank 10).
    pub mrr_at_10: f64,
    /// Mean nDCG@10 with binary gains, each distinct relevant item counted once.
    pub ndcg_at_10: f64,
}

impl Metrics {
    /// Averages the per-query metrics of `outcomes` (the one aggregator for dev and BEIR).
    pub fn mean_of<'a>(outcomes: impl IntoIterator<Item = &'a QueryOutcome>) -> Self {
        let mut m = Metrics::default();
        for o in outcomes {
            m.count += 1;
            m.recall_at_1 += f64::from(u8::from(o.hit_at(1)));
            m.recall_at_5 += f64::from(u8::from(o.hit_at(5)));
            m.recall_at_10 += f64::from(u8::from(o.hit_at(10)));
            m.mrr_at_10 += o.reciprocal_rank_at(CUTOFF);
            m.ndcg_at_10 += o.ndcg_at(CUTOFF);
        }
        if m.count > 0 {
            let n = m.count as f64;
            m.recall_at_1 /= n;
            m.recall_at_5 /= n;
            m.recall_at_10 /= n;
            m.mrr_at_10 /= n;
            m.ndcg_at_10 /= n;
        }
        m
    }
}

/// A query with no hit in the top 10, kept for the `--verbose` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    /// Question / query id.
    pub query_id: String,
    /// Question text.
    pub query: String,
    /// Group (dev `kind`, or `"all"`).
    pub kind: String,
    /// Labels of what would have been relevant.
    pub expected: Vec<String>,
    /// The top 3 retrieved items.
    pub top: Vec<TopItem>,
}

/// Results of one retrieval mode (e.g. `bm25`, `dense`, `hybrid`) on one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// Retrieval mode name.
    pub mode: String,
    /// Metrics over all queries.
    pub overall: Metrics,
    /// Metrics per query group (dev `kind`; BEIR has the single group `"all"`).
    pub by_kind: BTreeMap<String, Metrics>,
    /// Queries with no hit in the top 10, in input order.
    pub misses: Vec<Miss>,
}

impl ModeReport {
    /// Aggregates the judged queries of one mode into overall and per-kind metrics plus misses.
    pub fn from_outcomes(mode: &str, outcomes: &[QueryOutcome]) -> Self {
        let mut groups: BTreeMap<String, Vec<&QueryOutcome>> = BTreeMap::new();
        for o in outcomes {
            groups.entry(o.kind.clone()).or_default().push(o);
        }
        ModeReport {
            mode: mode.to_string(),
            overall: Metrics::mean_of(outcomes),
            by_kind: groups
                .into_iter()
                .map(|(kind, group)| (kind, Metrics::mean_of(group)))
                .collect(),
            misses: outcomes
                .iter()
                .filter(|o| o.is_miss())
                .map(|o| Miss {
                    query_id: o.query_id.clone(),
                    query: o.query.clone(),
                    kind: o.kind.clone(),
                    expected: o.expected.clone(),
                    top: o.top.clone(),
                })
                .collect(),
        }
    }
}

/// The evaluation report of one data set across retrieval modes; serializes to JSON
/// (for `--json`) and renders as a plain-text table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Data set name (`dev`, `cmrc2018-dev`, ...).
    pub dataset: String,
    /// One entry per retrieval mode, in the order they were added.
    pub modes: Vec<ModeReport>,
}

impl Report {
    /// Starts an empty report for the named data set.
    pub fn new(dataset: &str) -> Self {
        Report {
            dataset: dataset.to_string(),
            modes: Vec::new(),
        }
    }

    /// Adds (or replaces, if the name exists) the results of one retrieval mode.
    pub fn add_mode(&mut self, mode: &str, outcomes: &[QueryOutcome]) -> &ModeReport {
        let report = ModeReport::from_outcomes(mode, outcomes);
        let index = match self.modes.iter().position(|m| m.mode == mode) {
            Some(i) => {
                self.modes[i] = report;
                i
            }
            None => {
                self.modes.push(report);
                self.modes.len() - 1
            }
        };
        &self.modes[index]
    }

    /// Renders an aligned plain-text table: one row per mode (group `overall`) followed by
    /// one row per kind when there is more than one kind; metrics with 3 decimals.
    pub fn to_table(&self) -> String {
        let header = [
            "mode", "group", "n", "R@1", "R@5", "R@10", "MRR@10", "nDCG@10",
        ];
        let mut rows: Vec<[String; 8]> = Vec::new();
        let row = |mode: &str, group: &str, m: &Metrics| {
            [
                mode.to_string(),
                group.to_string(),
                m.count.to_string(),
                format!("{:.3}", m.recall_at_1),
                format!("{:.3}", m.recall_at_5),
                format!("{:.3}", m.recall_at_10),
                format!("{:.3}", m.mrr_at_10),
                format!("{:.3}", m.ndcg_at_10),
            ]
        };
        for mode in &self.modes {
            rows.push(row(&mode.mode, "overall", &mode.overall));
            if mode.by_kind.len() > 1 {
                for (kind, m) in &mode.by_kind {
                    rows.push(row(&mode.mode, kind, m));
                }
            }
        }
        let width = |s: &str| s.chars().count();
        let mut widths = header.map(width);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(cell));
            }
        }
        let render = |cells: &[String; 8], out: &mut String| {
            let mut line = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(w - width(cell));
                if i < 2 {
                    line.push_str(cell);
                    line.push_str(&pad); // text columns left-aligned
                } else {
                    line.push_str(&pad);
                    line.push_str(cell); // numbers right-aligned
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        let mut out = format!("dataset: {}\n", self.dataset);
        render(&header.map(String::from), &mut out);
        render(&widths.map(|w| "-".repeat(w)), &mut out);
        for r in &rows {
            render(r, &mut out);
        }
        out
    }

    /// Renders the `--verbose` listing: per mode, each query with no hit in the top 10,
    /// what was expected, and the top 3 items retrieved instead.
    pub fn render_misses(&self) -> String {
        let mut out = String::new();
        for mode in &self.modes {
            let _ = writeln!(
                out,
                "[{}] {} of {} missed (no hit in top {CUTOFF}):",
                mode.mode,
                mode.misses.len(),
                mode.overall.count
            );
            for miss in &mode.misses {
                let _ = writeln!(out, "  {} ({}) {}", miss.query_id, miss.kind, miss.query);
                let _ = writeln!(out, "    expected: {}", miss.expected.join(", "));
                if miss.top.is_empty() {
                    let _ = writeln!(out, "    retrieved nothing");
                }
                for (i, item) in miss.top.iter().enumerate() {
                    let _ = writeln!(out, "    {}. {}", i + 1, item.label());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// An outcome with one relevant item per listed rank (each hit is a new item).
    fn outcome(kind: &str, num_relevant: usize, hits: &[usize], len: usize) -> QueryOutcome {
        let mut next = 0;
        let sets: Vec<Vec<usize>> = (1..=len)
            .map(|rank| {
                if hits.contains(&rank) {
                    next += 1;
                    vec![next - 1]
                } else {
                    vec![]
                }
            })
            .collect();
        QueryOutcome::new("q", "text", kind, num_relevant, &sets)
    }

    #[test]
    fn hit_at_rank_three_only() {
        // One relevant item hit at rank 3: MRR = 1/3, nDCG = (1/log2 4) / 1 = 0.5,
        // R@1 = 0, R@5 = 1, R@10 = 1.
        let o = outcome("k", 1, &[3], 10);
        assert_eq!(o.first_hit_rank(), Some(3));
        assert!(close(o.reciprocal_rank_at(10), 1.0 / 3.0));
        assert!(close(o.ndcg_at(10), 0.5));
        assert!(!o.hit_at(1) && o.hit_at(5) && o.hit_at(10));
    }

    #[test]
    fn hit_past_cutoff_counts_as_miss() {
        // First hit at rank 11: R@10 = 0, MRR@10 = 0, nDCG@10 = 0, listed as a miss.
        let o = outcome("k", 1, &[11], 12);
        assert!(o.is_miss());
        assert_eq!(o.reciprocal_rank_at(10), 0.0);
        assert_eq!(o.ndcg_at(10), 0.0);
    }

    #[test]
    fn ndcg_two_relevant_items() {
        // Two items, hits at ranks 1 and 3:
        // DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.630930; nDCG = 0.919721.
        let o = outcome("k", 2, &[1, 3], 10);
        assert!(close(o.ndcg_at(10), 1.5 / (1.0 + 1.0 / 3f64.log2())));
        assert!((o.ndcg_at(10) - 0.919_721).abs() < 1e-6);
        // Only one of two found, at rank 1: DCG = 1, IDCG = 1.630930, nDCG = 0.613147.
        let o = outcome("k", 2, &[1], 10);
        assert!((o.ndcg_at(10) - 0.613_147).abs() < 1e-6);
    }

    #[test]
    fn idcg_caps_at_ten_relevant_items() {
        // 12 relevant items, the top 10 all new hits: DCG = IDCG over 10 ranks -> 1.
        let o = outcome("k", 12, &(1..=10).collect::<Vec<_>>(), 10);
        assert!(close(o.ndcg_at(10), 1.0));
    }

    #[test]
    fn no_relevant_items_gives_zero() {
        let o = QueryOutcome::new("q", "t", "k", 0, &[vec![], vec![]]);
        assert_eq!(o.ndcg_at(10), 0.0);
        assert!(o.is_miss());
    }

    #[test]
    fn hit_ranks_include_repeats_gains_do_not() {
        // Ranks 1 and 2 hit item 0, rank 4 hits items 0 and 1.
        let o = QueryOutcome::new("q", "t", "k", 2, &[vec![0], vec![0], vec![], vec![0, 1]]);
        assert_eq!(o.hit_ranks(), vec![1, 2, 4]);
        assert_eq!(o.new_relevant_at, vec![true, false, false, true]);
        // DCG = 1 + 1/log2(5) = 1.430677; IDCG = 1.630930; nDCG = 0.877215.
        assert!((o.ndcg_at(10) - 0.877_215).abs() < 1e-6);
    }

    #[test]
    fn mean_aggregation_and_report() {
        // q1: hit at 1 (RR 1, nDCG 1); q2: hit at 3 (RR 1/3, nDCG 0.5); q3: miss.
        // Means: R@1 = 1/3, R@5 = 2/3, R@10 = 2/3, MRR = (1 + 1/3)/3 = 0.444, nDCG = 0.5.
        let mut outs = vec![
            outcome("entity", 1, &[1], 10),
            outcome("numeric", 1, &[3], 10),
            outcome("numeric", 1, &[], 10),
        ];
        outs[2].query_id = "q3".into();
        outs[2].top = vec![TopItem {
            id: "p7".into(),
            source: Some("a.txt".into()),
            char_start: Some(0),
            char_end: Some(40),
        }];
        outs[2].expected = vec!["a.txt:100-120".into()];
        let m = Metrics::mean_of(&outs);
        assert_eq!(m.count, 3);
        assert!(close(m.recall_at_1, 1.0 / 3.0));
        assert!(close(m.recall_at_5, 2.0 / 3.0));
        assert!(close(m.recall_at_10, 2.0 / 3.0));
        assert!(close(m.mrr_at_10, 4.0 / 9.0));
        assert!(close(m.ndcg_at_10, 0.5));
        assert_eq!(Metrics::mean_of(&[]), Metrics::default());

        let mut report = Report::new("dev");
        report.add_mode("bm25", &outs);
        report.add_mode("dense", &outs[..1]);
        let bm25 = &report.modes[0];
        assert_eq!(bm25.by_kind["numeric"].count, 2);
        assert!(close(bm25.by_kind["numeric"].mrr_at_10, 1.0 / 6.0));
        assert_eq!(bm25.misses.len(), 1);
        assert_eq!(bm25.misses[0].query_id, "q3");

        let table = report.to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "dataset: dev");
        assert!(lines[1].starts_with("mode   group"), "{table}");
        assert!(
            lines[3].starts_with("bm25   overall  3  0.333  0.667  0.667   0.444    0.500"),
            "{table}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("bm25   numeric  2")),
            "{table}"
        );
        // dense has a single kind: no per-kind rows.
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("dense")).count(),
            1,
            "{table}"
        );
        // All rows equally wide up to the last column.
        let header_len = lines[1].chars().count();
        assert!(
            lines[3..].iter().all(|l| l.chars().count() == header_len),
            "{table}"
        );

        let listing = report.render_misses();
        assert!(listing.contains("[bm25] 1 of 3 missed"), "{listing}");
        assert!(listing.contains("q3 (numeric) text"), "{listing}");
        assert!(listing.contains("expected: a.txt:100-120"), "{listing}");
        assert!(listing.contains("1. p7 a.txt:0-40"), "{listing}");

        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert!(json.contains("\"recall_at_10\""), "{json}");

        // Replacing a mode keeps one entry.
        report.add_mode("bm25", &outs[..2]);
        assert_eq!(report.modes.len(), 2);
        assert_eq!(report.modes[0].overall.count, 2);
    }
}
