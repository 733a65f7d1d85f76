//! The original reports, kept in memory so a citation can be opened and
//! checked: the exact cited span with some context around it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Catalog, Report};
use crate::error::{Error, ErrorCode, Result};

/// Characters of context shown before and after a cited span.
pub const SPAN_CONTEXT_CHARS: usize = 200;

/// Longest span that may be requested at once (a whole report is ~60k chars).
pub const MAX_SPAN_CHARS: usize = 20_000;

/// A cited span of a report with context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DocumentSpan {
    /// File name in the corpus.
    pub source: String,
    /// Report title.
    pub title: String,
    /// 0-based code point offset of the span start.
    pub start: usize,
    /// 0-based code point offset one past the span end.
    pub end: usize,
    /// 1-based line of `start`.
    #[schema(minimum = 1)]
    pub line_start: usize,
    /// 1-based line of the last character of the span.
    #[schema(minimum = 1)]
    pub line_end: usize,
    /// Context before the span (up to 200 characters of the file).
    pub before: String,
    /// The span itself, exactly as in the file (characters start..end).
    pub text: String,
    /// Context after the span (up to 200 characters of the file).
    pub after: String,
}

/// The reports of a corpus, by file name.
pub struct Documents {
    catalog: Catalog,
    texts: HashMap<String, Vec<char>>,
}

impl Documents {
    /// The reports of `catalog`, whose texts are given in catalog order.
    pub(crate) fn new(catalog: Catalog, texts: &[String]) -> Documents {
        let texts = catalog
            .reports
            .iter()
            .zip(texts)
            .map(|(r, t)| (r.file.clone(), t.chars().collect()))
            .collect();
        Documents { catalog, texts }
    }

    /// The catalog entries, in catalog order.
    pub fn reports(&self) -> &[Report] {
        &self.catalog.reports
    }

    /// The span `[start, end)` of `source` with context. Only files listed in
    /// the catalog can be read, so no path can reach outside the corpus.
    pub fn span(&self, source: &str, start: usize, end: Option<usize>) -> Result<DocumentSpan> {
        let report = self.catalog.get(source).ok_or_else(|| {
            Error::NotFound(format!(
                "no report named {source:?}; GET /api/documents lists them"
            ))
        })?;
        let chars = &self.texts[&report.file];
        let end = end.unwrap_or_else(|| start.saturating_add(SPAN_CONTEXT_CHARS).min(chars.len()));
        if start > end || end > chars.len() {
            return Err(Error::invalid(
                ErrorCode::BadSpan,
                format!(
                    "span {start}..{end} is outside {source}, which has {} characters (need start <= end <= length)",
                    chars.len()
                ),
            ));
        }
        if end - start > MAX_SPAN_CHARS {
            return Err(Error::invalid(
                ErrorCode::BadSpan,
                format!(
                    "span {start}..{end} is longer than {MAX_SPAN_CHARS} characters; ask for less"
                ),
            ));
        }
        let line_of = |pos: usize| 1 + chars[..pos].iter().filter(|c| **c == '\n').count();
        let from = start.saturating_sub(SPAN_CONTEXT_CHARS);
        let to = end.saturating_add(SPAN_CONTEXT_CHARS).min(chars.len());
        Ok(DocumentSpan {
            source: report.file.clone(),
            title: report.title.clone(),
            start,
            end,
            line_start: line_of(start),
            line_end: line_of(end.saturating_sub(1).max(start)),
            before: chars[from..start].iter().collect(),
            text: chars[start..end].iter().collect(),
            after: chars[end..to].iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Documents) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "第一行\n第二行有内容\n第三行").unwrap();
        std::fs::write(
            dir.path().join("catalog.toml"),
            "[[report]]\nfile = \"a.txt\"\ntitle = \"报告A\"\npublisher = \"P\"\nyear = 2024\n",
        )
        .unwrap();
        let docs = super::super::Corpus::load(dir.path()).unwrap().documents();
        (dir, docs)
    }

    #[test]
    fn a_span_comes_back_exactly_with_lines_and_context() {
        let (_dir, docs) = fixture();
        let span = docs.span("a.txt", 4, Some(10)).unwrap();
        assert_eq!(span.text, "第二行有内容");
        assert_eq!((span.line_start, span.line_end), (2, 2));
        assert_eq!(span.before, "第一行\n");
        assert_eq!(span.after, "\n第三行");
        assert_eq!(span.title, "报告A");
    }

    #[test]
    fn unknown_files_path_tricks_and_bad_spans_are_errors() {
        let (_dir, docs) = fixture();
        for name in ["../Cargo.toml", "/etc/passwd", "catalog.toml", "b.txt"] {
            assert!(
                matches!(docs.span(name, 0, Some(1)), Err(Error::NotFound(_))),
                "{name}"
            );
        }
        assert!(docs.span("a.txt", 5, Some(3)).is_err());
        // Offsets at the top of the range are refused, not overflowed.
        assert!(docs.span("a.txt", usize::MAX, None).is_err());
        assert!(docs.span("a.txt", 0, Some(usize::MAX)).is_err());
        assert!(
            docs.span("a.txt", usize::MAX - 1, Some(usize::MAX))
                .is_err()
        );
        assert!(docs.span("a.txt", 0, Some(999)).is_err());
    }
}
