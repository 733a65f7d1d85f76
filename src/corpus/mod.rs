//! The reports: reading them, splitting them into [`Passage`]s, and the
//! [`Citation`] each passage carries back to its exact place in its file.

mod catalog;
mod chunk;
mod clean;
mod documents;
pub mod extract;
mod sentences;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use catalog::{CATALOG_FILE, Catalog, Report, is_plain_file_name, pending_name, report_path};
pub use chunk::{
    Chunk, OVERLAP_MAX_CHARS, PASSAGE_MAX_CHARS, PASSAGE_TARGET_CHARS, chunk_text, is_han,
    split_sentences,
};
pub use clean::clean_for_reading;
pub use documents::{DocumentSpan, Documents, MAX_SPAN_CHARS, SPAN_CONTEXT_CHARS};
pub use sentences::{
    FURNITURE_MARKERS, MAX_BRACKETED_CHARS, MAX_HEADING_CHARS, MAX_LEADING_HEADINGS,
    MIN_CHARS_PER_PIECE, MIN_PROSE_HAN_SHARE, MIN_SENTENCE_CHARS, SENTENCE_RULES_VERSION,
    is_furniture, is_heading, is_prose, is_table_of_contents, leading_heading,
    opens_with_furniture, readable_sentences, without_leading_headings,
};

use crate::error::{Error, Result};

/// Where a passage came from: enough to open the report at the right place. The
/// characters `char_start..char_end` of the file `source` are the exact cited slice
/// (`GET /api/documents/{source}?start=char_start&end=char_end` returns them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Citation {
    /// File name of the report in the corpus folder (one of `GET /api/documents`).
    pub source: String,
    /// The report's title from the catalog.
    pub title: String,
    /// Nearest section heading at the start of the passage (may be empty).
    pub section: String,
    /// 1-based first line.
    #[schema(minimum = 1)]
    pub line_start: usize,
    /// 1-based last line (line_start <= line_end).
    #[schema(minimum = 1)]
    pub line_end: usize,
    /// 0-based code point offset of the first cited character in the file.
    pub char_start: usize,
    /// 0-based code point offset one past the last cited character (exclusive;
    /// char_start < char_end).
    pub char_end: usize,
}

/// One retrieval unit: cleaned text plus its citation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Passage {
    /// Stable id: `<file stem>#<ordinal within the file>`.
    pub id: String,
    /// Cleaned text that is analysed, embedded and shown.
    pub text: String,
    /// Where the text lies in the original file.
    pub citation: Citation,
}

/// The loaded corpus: the catalog and every report's text, each file read once; the
/// fingerprint, the passages and the [`Documents`] view all come from that one reading.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// Titles and publishers.
    pub catalog: Catalog,
    /// Original text of each report, in catalog order.
    texts: Vec<String>,
    /// See [`Corpus::fingerprint`].
    fingerprint: String,
    /// The passages of all reports, made on first use (an up-to-date index needs none).
    passages: OnceLock<Vec<Passage>>,
}

/// Version of the chunking rules; part of the index fingerprint, so changing
/// the rules (or the constants) marks every existing index stale.
pub const CHUNKER_VERSION: &str = "chunk-v3";

/// The settings that shape passages, written into the fingerprint.
pub fn chunker_settings() -> String {
    format!(
        "{CHUNKER_VERSION} target={PASSAGE_TARGET_CHARS} max={PASSAGE_MAX_CHARS} overlap={OVERLAP_MAX_CHARS}"
    )
}

impl Corpus {
    /// Reads the catalog and every listed report.
    pub fn load(dir: &Path) -> Result<Corpus> {
        let catalog_path = dir.join(CATALOG_FILE);
        let catalog_text =
            std::fs::read_to_string(&catalog_path).map_err(|e| Error::io(&catalog_path, e))?;
        let catalog = Catalog::parse(dir, &catalog_text)?;
        let mut texts = Vec::with_capacity(catalog.reports.len());
        for report in &catalog.reports {
            let path = report_path(dir, &report.file);
            texts.push(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?);
        }
        Ok(Self::assemble(dir, catalog, &catalog_text, texts))
    }

    /// The corpus of `catalog` (whose file text is `catalog_text`) and its reports' texts
    /// in catalog order, with the fingerprint [`Corpus::load`] gives the same files.
    fn assemble(dir: &Path, catalog: Catalog, catalog_text: &str, texts: Vec<String>) -> Corpus {
        let mut hasher = Sha256::new();
        hasher.update(chunker_settings().as_bytes());
        hash_file(&mut hasher, CATALOG_FILE, catalog_text.as_bytes());
        for (report, raw) in catalog.reports.iter().zip(&texts) {
            hash_file(&mut hasher, &report.file, raw.as_bytes());
        }
        Corpus {
            dir: dir.to_path_buf(),
            catalog,
            texts,
            fingerprint: hex::encode(&hasher.finalize()[..16]),
            passages: OnceLock::new(),
        }
    }

    /// The corpus as it will be once `catalog_text` is its catalog and, when given, the
    /// report file `added` (name, text) lies in its folder: what an addition or removal
    /// indexes before it commits. Its fingerprint is the one [`Corpus::load`] will find.
    pub fn changed(&self, catalog_text: &str, added: Option<(&str, &str)>) -> Result<Corpus> {
        let catalog: Catalog = toml::from_str(catalog_text)
            .map_err(|e| Error::Corpus(format!("the new catalog is not valid: {e}")))?;
        let mut texts = Vec::with_capacity(catalog.reports.len());
        for report in &catalog.reports {
            let text = match added {
                Some((name, text)) if name == report.file => text.to_string(),
                _ => self.original_text(&report.file)?.to_string(),
            };
            texts.push(text);
        }
        Ok(Self::assemble(&self.dir, catalog, catalog_text, texts))
    }

    /// The report whose text is `text` once both are [`extract::normalize`]d (line ends,
    /// trailing spaces), if one is.
    pub fn report_with_text(&self, text: &str) -> Option<&Report> {
        let text = extract::normalize(text);
        self.catalog
            .reports
            .iter()
            .zip(&self.texts)
            .find(|(_, t)| extract::normalize(t) == text)
            .map(|(r, _)| r)
    }

    /// Number of passages of each report, in catalog order.
    pub fn passage_counts(&self) -> Vec<(&Report, usize)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for p in self.passages() {
            *counts.entry(p.citation.source.as_str()).or_default() += 1;
        }
        self.catalog
            .reports
            .iter()
            .map(|r| (r, counts.get(r.file.as_str()).copied().unwrap_or(0)))
            .collect()
    }

    /// A digest of every report's bytes, the catalog and the chunking settings:
    /// an index built from a different digest is stale.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The passages of all reports, in catalog order.
    pub fn passages(&self) -> &[Passage] {
        self.passages.get_or_init(|| {
            self.catalog
                .reports
                .iter()
                .zip(&self.texts)
                .flat_map(|(report, raw)| passages_of(report, raw))
                .collect()
        })
    }

    /// Source file → report label (title, publisher, aliases), indexed so
    /// that questions naming a report favour its passages.
    pub fn report_labels(&self) -> HashMap<String, String> {
        self.catalog
            .reports
            .iter()
            .map(|r| (r.file.clone(), r.label()))
            .collect()
    }

    /// The original text of a corpus file, looked up through the catalog so no
    /// path outside the corpus can be read.
    pub fn original_text(&self, source: &str) -> Result<&str> {
        self.catalog
            .reports
            .iter()
            .position(|r| r.file == source)
            .map(|i| self.texts[i].as_str())
            .ok_or_else(|| Error::NotFound(format!("no report named {source:?} in the corpus")))
    }

    /// The reports as [`Documents`], for opening cited spans.
    pub fn documents(&self) -> Documents {
        Documents::new(self.catalog.clone(), &self.texts)
    }
}

/// Adds one file (name, length, bytes) to the corpus fingerprint.
fn hash_file(hasher: &mut Sha256, name: &str, bytes: &[u8]) {
    hasher.update(name.as_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Splits one report into passages, with ids and citations.
pub fn passages_of(report: &Report, raw: &str) -> Vec<Passage> {
    let stem = report.file.strip_suffix(".txt").unwrap_or(&report.file);
    chunk_text(raw)
        .into_iter()
        .enumerate()
        .map(|(i, c)| Passage {
            id: format!("{stem}#{i}"),
            text: c.text,
            citation: Citation {
                source: report.file.clone(),
                title: report.title.clone(),
                section: c.section,
                line_start: c.line_start,
                line_end: c.line_end,
                char_start: c.char_start,
                char_end: c.char_end,
            },
        })
        .collect()
}
