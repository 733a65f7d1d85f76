//! The reports: reading them, splitting them into [`Passage`]s, and the
//! [`Citation`] each passage carries back to its exact place in its file.

mod catalog;
mod chunk;
mod documents;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use catalog::{CATALOG_FILE, Catalog, Report};
pub use chunk::{
    Chunk, OVERLAP_MAX_CHARS, PASSAGE_MAX_CHARS, PASSAGE_TARGET_CHARS, chunk_text, is_han,
};
pub use documents::{DocumentSpan, Documents, MAX_SPAN_CHARS, SPAN_CONTEXT_CHARS};

use crate::error::{Error, Result};

/// Where a passage came from: enough to open the report at the right place.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Citation {
    /// File name inside the corpus folder.
    pub source: String,
    /// The report's title from the catalog.
    pub title: String,
    /// Nearest section heading at the start of the passage (may be empty).
    pub section: String,
    /// 1-based first line.
    pub line_start: usize,
    /// 1-based last line.
    pub line_end: usize,
    /// 0-based code point offset of the first character.
    pub char_start: usize,
    /// 0-based code point offset one past the last character.
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

/// The loaded corpus: catalog, original texts and passages.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// Titles and publishers.
    pub catalog: Catalog,
    /// The passages of all reports, in catalog order.
    pub passages: Vec<Passage>,
}

/// Version of the chunking rules; part of the index fingerprint, so changing
/// the rules (or the constants) marks every existing index stale.
pub const CHUNKER_VERSION: &str = "chunk-v1";

/// The settings that shape passages, written into the fingerprint.
pub fn chunker_settings() -> String {
    format!(
        "{CHUNKER_VERSION} target={PASSAGE_TARGET_CHARS} max={PASSAGE_MAX_CHARS} overlap={OVERLAP_MAX_CHARS}"
    )
}

impl Corpus {
    /// Reads the catalog and every listed report, and splits them into passages.
    pub fn load(dir: &Path) -> Result<Corpus> {
        let catalog = Catalog::load(dir)?;
        let mut passages = Vec::new();
        for report in &catalog.reports {
            let path = dir.join(&report.file);
            let raw = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            passages.extend(passages_of(report, &raw));
        }
        Ok(Corpus {
            dir: dir.to_path_buf(),
            catalog,
            passages,
        })
    }

    /// A digest of every report's bytes, the catalog and the chunking settings:
    /// an index built from a different digest is stale.
    pub fn fingerprint(dir: &Path) -> Result<String> {
        let catalog = Catalog::load(dir)?;
        let mut hasher = Sha256::new();
        hasher.update(chunker_settings().as_bytes());
        for name in
            std::iter::once(CATALOG_FILE).chain(catalog.reports.iter().map(|r| r.file.as_str()))
        {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        Ok(hex::encode(&hasher.finalize()[..16]))
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
    pub fn original_text(&self, source: &str) -> Result<String> {
        let report = self
            .catalog
            .get(source)
            .ok_or_else(|| Error::NotFound(format!("no report named {source:?} in the corpus")))?;
        let path = self.dir.join(&report.file);
        std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
    }
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
