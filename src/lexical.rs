//! The BM25 full-text index: a tantivy index over our jieba analysis, holding
//! one document per passage (its ordinal, text, section and source file).
//! Passage text and citations live beside it (see [`crate::index`]); tantivy
//! only answers "which ordinals, with which BM25 score".

use std::collections::HashMap;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term, doc};

use crate::analysis::{Analyzer, JiebaTokenizer, TOKENIZER_NAME};
use crate::corpus::Passage;
use crate::error::{Error, Result};

/// Weight of a match in the section heading relative to one in the passage
/// text. Headings name the topic of every passage under them, so they help a
/// little; on the dev set (with REPORT_BOOST 0.5) MRR@10 was 0.736, 0.735,
/// 0.747, 0.729, 0.668 for 0, 0.15, 0.3, 0.5, 1.0.
pub const SECTION_BOOST: f32 = 0.3;

/// Weight of a match in the report's title, publisher or aliases: a question
/// that names a report ("沙利文认为…") should prefer that report's passages,
/// but topic words in the text must still dominate. Tuned on the dev set
/// over {0, 0.2, 0.5, 1.0} (MRR@10 0.714, 0.729, 0.747, 0.744); the public
/// benchmarks have no report labels.
pub const REPORT_BOOST: f32 = 0.5;

/// Longest snippet in characters: two lines of a result list.
pub const SNIPPET_MAX_CHARS: usize = 80;

/// Name of the field holding the passage ordinal (a FAST column, read per hit).
const ORD_FIELD: &str = "ord";

/// Characters of context kept before the first highlighted word of a snippet.
pub const SNIPPET_LEAD_CHARS: usize = 10;

/// Memory budget of the tantivy writer while building (its documented minimum is 15 MB).
const WRITER_HEAP_BYTES: usize = 50_000_000;

/// A BM25 hit: passage ordinal and score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LexicalHit {
    /// Index of the passage in the passage list.
    pub ord: u32,
    /// tantivy's BM25 score.
    pub score: f32,
}

/// The tantivy index of passages.
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    /// The analyzer its documents were indexed with; queries must use the same.
    analyzer: Analyzer,
    text: Field,
    section: Field,
    report: Field,
    source: Field,
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let text_options = TextOptions::default().set_indexing_options(indexing);
    builder.add_u64_field(ORD_FIELD, INDEXED | STORED | FAST);
    builder.add_text_field("text", text_options.clone());
    builder.add_text_field("section", text_options.clone());
    builder.add_text_field("report", text_options);
    builder.add_text_field("source", STRING);
    builder.build()
}

fn field(schema: &Schema, name: &str) -> Result<Field> {
    schema.get_field(name).map_err(Error::from)
}

impl LexicalIndex {
    /// Builds a new index in `dir` (which must be empty) from the passages.
    /// `progress` is called with the number of passages added so far.
    /// `report_labels` maps a passage's source file to words naming its report.
    pub fn build(
        dir: &Path,
        passages: &[Passage],
        report_labels: &HashMap<String, String>,
        analyzer: &Analyzer,
        progress: &dyn Fn(usize),
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let index = Index::create_in_dir(dir, schema())?;
        register(&index, analyzer);
        let s = index.schema();
        let (ord, text, section, report, source) = (
            field(&s, ORD_FIELD)?,
            field(&s, "text")?,
            field(&s, "section")?,
            field(&s, "report")?,
            field(&s, "source")?,
        );
        let mut writer = index.writer::<TantivyDocument>(WRITER_HEAP_BYTES)?;
        for (i, p) in passages.iter().enumerate() {
            writer.add_document(doc!(
                ord => i as u64,
                text => p.text.as_str(),
                section => p.citation.section.as_str(),
                report => report_labels.get(&p.citation.source).map(String::as_str).unwrap_or(""),
                source => p.citation.source.as_str(),
            ))?;
            if i % 64 == 0 {
                progress(i);
            }
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        progress(passages.len());
        Self::open(dir, analyzer)
    }

    /// Opens an index built by [`LexicalIndex::build`] with the same `analyzer`.
    pub fn open(dir: &Path, analyzer: &Analyzer) -> Result<Self> {
        let index = Index::open_in_dir(dir)?;
        // Garbled bytes inside segment files pass tantivy's open and then panic in
        // searches; every file carries a checksum, so verify them all here (a few
        // milliseconds for our index) and refuse a damaged index up front.
        let damaged = index.validate_checksum()?;
        if !damaged.is_empty() {
            let mut names: Vec<String> = damaged.iter().map(|p| p.display().to_string()).collect();
            names.sort();
            return Err(Error::Lexical(tantivy::TantivyError::InvalidArgument(
                format!("checksum mismatch in {}", names.join(", ")),
            )));
        }
        register(&index, analyzer);
        let s = index.schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LexicalIndex {
            text: field(&s, "text")?,
            section: field(&s, "section")?,
            report: field(&s, "report")?,
            source: field(&s, "source")?,
            index,
            reader,
            analyzer: analyzer.clone(),
        })
    }

    /// The analyzer the index was built with (jieba plus the collection's vocabulary):
    /// queries are analysed with it so they produce the index's terms.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Number of passages in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// True when the index holds no passage.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn query(&self, terms: &[String], source: Option<&str>) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in terms {
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.text, t),
                    IndexRecordOption::WithFreqs,
                )),
            ));
            for (field, boost) in [(self.section, SECTION_BOOST), (self.report, REPORT_BOOST)] {
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, t),
                            IndexRecordOption::WithFreqs,
                        )),
                        boost,
                    )),
                ));
            }
        }
        let terms_query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        match source {
            None => terms_query,
            Some(src) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, terms_query),
                (
                    Occur::Must,
                    Box::new(ConstScoreQuery::new(
                        Box::new(TermQuery::new(
                            Term::from_field_text(self.source, src),
                            IndexRecordOption::Basic,
                        )),
                        0.0,
                    )),
                ),
            ])),
        }
    }

    /// BM25 top-`k` passages for already analysed query terms, optionally
    /// restricted to one source file.
    pub fn search(
        &self,
        terms: &[String],
        k: usize,
        source: Option<&str>,
    ) -> Result<Vec<LexicalHit>> {
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let query = self.query(terms, source);
        let top = searcher.search(&query, &TopDocs::with_limit(k).order_by_score())?;
        // The ordinal comes from the FAST column: no stored document is loaded per hit.
        let mut columns = HashMap::new();
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = match columns.entry(address.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    searcher
                        .segment_reader(address.segment_ord)
                        .fast_fields()
                        .u64(ORD_FIELD)?,
                ),
            };
            let ord = column.first(address.doc_id).ok_or_else(|| {
                Error::Lexical(tantivy::TantivyError::InvalidArgument(
                    "document without ord".into(),
                ))
            })?;
            hits.push(LexicalHit {
                ord: ord as u32,
                score,
            });
        }
        Ok(hits)
    }

    /// A snippet builder for one query: highlights its terms in any passage
    /// text (also in passages found only by dense retrieval).
    pub fn snippets(&self, terms: &[String]) -> Result<Snippets> {
        let searcher = self.reader.searcher();
        let mut weights = HashMap::new();
        for t in terms {
            let df = searcher.doc_freq(&Term::from_field_text(self.text, t))?;
            // Rarer terms weigh more when choosing the best window.
            weights.insert(t.clone(), 1.0 / (1.0 + df as f32));
        }
        Ok(Snippets {
            weights,
            analyzer: self.analyzer.clone(),
        })
    }

    /// Number of passages whose text contains `term` (an analysed term).
    pub fn document_frequency(&self, term: &str) -> u64 {
        self.reader
            .searcher()
            .doc_freq(&Term::from_field_text(self.text, term))
            .unwrap_or(0)
    }

    /// The underlying tantivy index (for diagnostics).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

/// Highlighted snippets for one query.
///
/// Written by hand rather than with tantivy's `SnippetGenerator`, which
/// assumes tokens never overlap; jieba's search mode emits a long word and its
/// parts at overlapping offsets, which made it slice strings out of bounds.
pub struct Snippets {
    weights: HashMap<String, f32>,
    analyzer: Analyzer,
}

impl Snippets {
    /// The best window of at most [`SNIPPET_MAX_CHARS`] characters as HTML:
    /// text escaped, matched words in `<b>…</b>`, `…` where text was cut.
    pub fn html(&self, text: &str) -> String {
        let matches: Vec<(usize, usize, &str)> = self
            .analyzer
            .analyze(text)
            .into_iter()
            .filter_map(|t| {
                self.weights
                    .get_key_value(&t.text)
                    .map(|(k, _)| (t.byte_from, t.byte_to, k.as_str()))
            })
            .collect();
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let n_chars = boundaries.len() - 1;
        // Choose the window start (in chars) that covers the most weight of
        // distinct terms; ties keep the earliest window.
        let char_of = |byte: usize| boundaries.partition_point(|b| *b < byte);
        let mut best = (0usize, 0.0f32);
        for &(from, _, _) in &matches {
            let start = char_of(from).saturating_sub(SNIPPET_LEAD_CHARS);
            let end_byte = boundaries[(start + SNIPPET_MAX_CHARS).min(n_chars)];
            let mut seen: Vec<&str> = Vec::new();
            let mut score = 0.0;
            for &(f, t, term) in &matches {
                if f >= boundaries[start] && t <= end_byte && !seen.contains(&term) {
                    seen.push(term);
                    score += self.weights[term];
                }
            }
            if score > best.1 {
                best = (start, score);
            }
        }
        let (start_char, end_char) = (best.0, (best.0 + SNIPPET_MAX_CHARS).min(n_chars));
        let (lo, hi) = (boundaries[start_char], boundaries[end_char]);
        // Merge overlapping highlight ranges inside the window.
        let mut ranges: Vec<(usize, usize)> = matches
            .iter()
            .filter(|m| m.0 >= lo && m.1 <= hi)
            .map(|m| (m.0, m.1))
            .collect();
        ranges.sort();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (f, t) in ranges {
            match merged.last_mut() {
                Some(last) if f <= last.1 => last.1 = last.1.max(t),
                _ => merged.push((f, t)),
            }
        }
        let mut html = String::new();
        if lo > 0 {
            html.push('…');
        }
        let mut at = lo;
        for (f, t) in merged {
            html.push_str(&html_escape(&text[at..f]));
            html.push_str("<b>");
            html.push_str(&html_escape(&text[f..t]));
            html.push_str("</b>");
            at = t;
        }
        html.push_str(&html_escape(&text[at..hi]));
        if hi < text.len() {
            html.push('…');
        }
        html
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn register(index: &Index, analyzer: &Analyzer) {
    index.tokenizers().register(
        TOKENIZER_NAME,
        TextAnalyzer::from(JiebaTokenizer::with_analyzer(analyzer.clone())),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::corpus::Citation;

    fn passage(i: usize, source: &str, text: &str) -> Passage {
        Passage {
            id: format!("p{i}"),
            text: text.to_string(),
            citation: Citation {
                source: source.into(),
                title: "t".into(),
                section: String::new(),
                line_start: 1,
                line_end: 1,
                char_start: 0,
                char_end: text.chars().count(),
            },
        }
    }

    #[test]
    fn bm25_ranks_the_matching_passage_first_and_filters_by_source() {
        let dir = tempfile::tempdir().unwrap();
        let passages = vec![
            passage(0, "a.txt", "大模型在医疗行业辅助医生书写病历。"),
            passage(1, "a.txt", "金融行业的AIGC应用包括智能客服和投研报告生成。"),
            passage(
                2,
                "b.txt",
                "制造业利用大模型进行质检，GPT-4也被用于代码生成。",
            ),
        ];
        let index = LexicalIndex::build(
            dir.path(),
            &passages,
            &HashMap::new(),
            &Analyzer::new(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(index.len(), 3);
        let terms = Analyzer::new().query_terms("金融AIGC");
        let hits = index.search(&terms, 10, None).unwrap();
        assert_eq!(hits[0].ord, 1);
        let gpt = index
            .search(&Analyzer::new().query_terms("GPT-4"), 10, None)
            .unwrap();
        assert_eq!(gpt[0].ord, 2);
        let only_a = index
            .search(&Analyzer::new().query_terms("大模型"), 10, Some("a.txt"))
            .unwrap();
        assert!(only_a.iter().all(|h| h.ord != 2));
        assert!(!only_a.is_empty());
        // Reopening from disk gives the same answer.
        drop(index);
        let reopened = LexicalIndex::open(dir.path(), &Analyzer::new()).unwrap();
        assert_eq!(reopened.search(&terms, 10, None).unwrap()[0].ord, 1);
    }

    #[test]
    fn snippets_highlight_matched_words_at_the_right_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text = "２０２４年，ＡＩＧＣ与大模型在金融行业落地。";
        let index = LexicalIndex::build(
            dir.path(),
            &[passage(0, "a.txt", text)],
            &HashMap::new(),
            &Analyzer::new(),
            &|_| {},
        )
        .unwrap();
        let terms = Analyzer::new().query_terms("AIGC 金融");
        let html = index.snippets(&terms).unwrap().html(text);
        assert!(html.contains("<b>ＡＩＧＣ</b>"), "{html}");
        assert!(html.contains("<b>金融</b>"), "{html}");
    }

    #[test]
    fn snippets_of_overlapping_search_mode_tokens_stay_in_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let text = "至今已有超过一百多个国家承认巴勒斯坦，根据1994年签订的奥斯陆协议，由巴勒斯坦自治政府自行负责对外事务，而未承认巴勒斯坦国的国家仍然很多。中华人民共和国于1988年承认巴勒斯坦国。<script>";
        let index = LexicalIndex::build(
            dir.path(),
            &[passage(0, "a.txt", text)],
            &HashMap::new(),
            &Analyzer::new(),
            &|_| {},
        )
        .unwrap();
        let terms = Analyzer::new().query_terms("巴勒斯坦自治政府 中华人民共和国 script");
        let html = index.snippets(&terms).unwrap().html(text);
        assert!(
            html.contains("<b>巴勒斯坦自治政府</b>") || html.contains("<b>巴勒斯坦</b>"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.chars().filter(|c| *c != '…').count() > 20);
    }

    #[test]
    fn the_snippet_window_moves_to_where_the_rare_terms_meet() {
        let dir = tempfile::tempdir().unwrap();
        // A common word early, both query words together late in a long passage.
        let text = format!(
            "金融行业开头。{}风险控制与金融合规放在一起。{}",
            "其他内容填充。".repeat(20),
            "结尾。".repeat(30)
        );
        let index = LexicalIndex::build(
            dir.path(),
            &[
                passage(0, "a.txt", &text),
                passage(1, "b.txt", "金融行业。"),
            ],
            &HashMap::new(),
            &Analyzer::new(),
            &|_| {},
        )
        .unwrap();
        let terms = Analyzer::new().query_terms("风险控制 金融");
        let html = index.snippets(&terms).unwrap().html(&text);
        assert!(html.starts_with('…'), "window not moved: {html}");
        assert!(html.ends_with('…'), "window runs to the end: {html}");
        assert!(
            html.contains("<b>风险</b>") || html.contains("<b>风险控制</b>"),
            "{html}"
        );
        assert!(html.contains("<b>金融</b>"), "{html}");
        let shown = html.replace("<b>", "").replace("</b>", "");
        assert!(shown.chars().count() <= SNIPPET_MAX_CHARS + 2, "{html}");
    }

    #[test]
    fn garbled_segment_bytes_are_caught_at_open() {
        let dir = tempfile::tempdir().unwrap();
        LexicalIndex::build(
            dir.path(),
            &[
                passage(0, "a.txt", "大模型在金融行业的应用"),
                passage(1, "b.txt", "医疗行业"),
            ],
            &HashMap::new(),
            &Analyzer::new(),
            &|_| {},
        )
        .unwrap();
        assert!(LexicalIndex::open(dir.path(), &Analyzer::new()).is_ok());
        // Flip bytes in the middle of the largest segment file, keeping its size.
        let largest = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "json" && e != "lock"))
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap();
        let mut bytes = std::fs::read(&largest).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        std::fs::write(&largest, &bytes).unwrap();
        let err = LexicalIndex::open(dir.path(), &Analyzer::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
