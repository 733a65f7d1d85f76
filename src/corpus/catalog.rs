//! `corpus/catalog.toml`: the title, publisher and year of each report, which
//! every citation carries so a reader knows which report a passage is from.
//!
//! Reports added or removed by `wenda add`/`remove` (see [`crate::collection`]) change the
//! catalog through [`Catalog::with_report`] and [`Catalog::without_report`], which edit
//! the file's text (toml_edit) so that comments and the other entries stay as they were.
//! While such a change commits, a report's text may lie under its *pending* name
//! ([`pending_name`]); readers look there when the file itself is missing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One report of the corpus as the catalog describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// File name inside the corpus folder (no directories).
    pub file: String,
    /// The report's title, as printed on it.
    pub title: String,
    /// Who published it.
    pub publisher: String,
    /// Year of publication.
    pub year: u32,
    /// Other names people use for the report or its publisher (e.g. English
    /// names), so a question that names the report finds its passages.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// SHA-256 (hex) of the file the report was added from (e.g. the PDF), when it was
    /// added by `wenda add` or the API: the same file is then refused as a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Report {
    /// Words that identify the report in a question: title, publisher, aliases.
    pub fn label(&self) -> String {
        let mut label = format!("{} {}", self.title, self.publisher);
        for a in &self.aliases {
            label.push(' ');
            label.push_str(a);
        }
        label
    }
}

/// The whole catalog: the reports in a stable order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Catalog {
    /// The reports, in the order the catalog lists them.
    #[serde(rename = "report", default)]
    pub reports: Vec<Report>,
}

/// The catalog's file name inside the corpus folder.
pub const CATALOG_FILE: &str = "catalog.toml";

/// The name a report's text has while an addition or removal of it commits: a hidden
/// name that no catalog lists and that is not a `.txt` file.
pub fn pending_name(file: &str) -> String {
    format!(".{file}.pending")
}

/// Where the text of a listed report lies: its own name, or its [`pending_name`] while
/// a change that was interrupted has not been settled yet (the catalog, written last,
/// decides whether the report belongs to the corpus).
pub fn report_path(corpus_dir: &Path, file: &str) -> PathBuf {
    let path = corpus_dir.join(file);
    if !path.is_file() {
        let pending = corpus_dir.join(pending_name(file));
        if pending.is_file() {
            return pending;
        }
    }
    path
}

impl Catalog {
    /// Reads `catalog.toml` from a corpus folder and checks that every listed file exists
    /// and that every `.txt` file in the folder is listed.
    pub fn load(corpus_dir: &Path) -> Result<Catalog> {
        let path = corpus_dir.join(CATALOG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Self::parse(corpus_dir, &text)
    }

    /// Checks the catalog text `text` against the corpus folder as [`Catalog::load`] does.
    pub fn parse(corpus_dir: &Path, text: &str) -> Result<Catalog> {
        let path = corpus_dir.join(CATALOG_FILE);
        let catalog: Catalog = toml::from_str(text).map_err(|e| {
            Error::Corpus(format!(
                "{} is not a valid catalog: {e}; each report needs file, title, publisher, year",
                path.display()
            ))
        })?;
        for report in &catalog.reports {
            if !is_plain_file_name(&report.file) {
                return Err(Error::Corpus(format!(
                    "{}: file {:?} must be a plain file name inside the corpus folder",
                    path.display(),
                    report.file
                )));
            }
            if !report_path(corpus_dir, &report.file).is_file() {
                return Err(Error::Corpus(format!(
                    "{} lists {:?}, which is not in {}",
                    path.display(),
                    report.file,
                    corpus_dir.display()
                )));
            }
        }
        let entries = std::fs::read_dir(corpus_dir).map_err(|e| Error::io(corpus_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(corpus_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".txt") && catalog.get(&name).is_none() {
                return Err(Error::Corpus(format!(
                    "{} is in the corpus folder but not in {}: add a [[report]] entry for it",
                    name,
                    path.display()
                )));
            }
        }
        if catalog.reports.is_empty() {
            return Err(Error::Corpus(format!(
                "{} lists no reports",
                path.display()
            )));
        }
        Ok(catalog)
    }

    /// The report with this file name, if the catalog lists it.
    pub fn get(&self, file: &str) -> Option<&Report> {
        self.reports.iter().find(|r| r.file == file)
    }

    /// The catalog text `text` with `report` appended as a new `[[report]]` entry;
    /// everything else in the text (comments, order, layout) stays as it was.
    pub fn with_report(text: &str, report: &Report) -> Result<String> {
        let mut doc = edit_document(text)?;
        let mut table = toml_edit::Table::new();
        table["file"] = toml_edit::value(report.file.as_str());
        table["title"] = toml_edit::value(report.title.as_str());
        table["publisher"] = toml_edit::value(report.publisher.as_str());
        table["year"] = toml_edit::value(i64::from(report.year));
        if !report.aliases.is_empty() {
            let aliases: toml_edit::Array = report.aliases.iter().map(String::as_str).collect();
            table["aliases"] = toml_edit::value(aliases);
        }
        if let Some(sha) = &report.sha256 {
            table["sha256"] = toml_edit::value(sha.as_str());
        }
        match doc.get_mut("report") {
            None => {
                let mut reports = toml_edit::ArrayOfTables::new();
                reports.push(table);
                doc.insert("report", toml_edit::Item::ArrayOfTables(reports));
            }
            Some(item) => item
                .as_array_of_tables_mut()
                .ok_or_else(|| {
                    Error::Corpus(format!(
                        "{CATALOG_FILE}: `report` is not a list of [[report]] tables"
                    ))
                })?
                .push(table),
        }
        Ok(doc.to_string())
    }

    /// The catalog text `text` without the entry of `file` (the text unchanged elsewhere),
    /// or `None` when no entry names it.
    pub fn without_report(text: &str, file: &str) -> Result<Option<String>> {
        let mut doc = edit_document(text)?;
        let Some(reports) = doc
            .get_mut("report")
            .and_then(|r| r.as_array_of_tables_mut())
        else {
            return Ok(None);
        };
        let Some(i) = reports
            .iter()
            .position(|t| t.get("file").and_then(|f| f.as_str()) == Some(file))
        else {
            return Ok(None);
        };
        // The first entry's leading comments are the file's header: they stay, before
        // the entry that becomes first.
        let header = (i == 0)
            .then(|| reports.get(0).and_then(|t| t.decor().prefix()?.as_str()))
            .flatten()
            .map(str::to_string);
        reports.remove(i);
        if let (Some(header), Some(first)) = (header, reports.get_mut(0)) {
            first.decor_mut().set_prefix(header);
        }
        Ok(Some(doc.to_string()))
    }
}

fn edit_document(text: &str) -> Result<toml_edit::DocumentMut> {
    text.parse::<toml_edit::DocumentMut>()
        .map_err(|e| Error::Corpus(format!("{CATALOG_FILE} is not valid TOML: {e}")))
}

/// True for a name that can only mean a file directly inside the corpus folder: not
/// empty, no folder separators, not hidden (so never `.`, `..` or a pending name).
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0']) && !name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# The reports.\n\n[[report]]\nfile = \"a.txt\"\ntitle = \"甲\"\npublisher = \"P\"\nyear = 2024\naliases = [\"A\"]\n";

    fn report(file: &str) -> Report {
        Report {
            file: file.into(),
            title: "新报告 \"引号\"".into(),
            publisher: "研究院".into(),
            year: 2025,
            aliases: Vec::new(),
            sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn adding_then_removing_a_report_gives_back_the_text_byte_for_byte() {
        let added = Catalog::with_report(TEXT, &report("b.txt")).unwrap();
        assert!(added.starts_with(TEXT), "{added}");
        let parsed: Catalog = toml::from_str(&added).unwrap();
        assert_eq!(parsed.reports.len(), 2);
        assert_eq!(parsed.reports[1], report("b.txt"));
        let removed = Catalog::without_report(&added, "b.txt").unwrap().unwrap();
        assert_eq!(removed, TEXT);
        assert_eq!(Catalog::without_report(TEXT, "zzz.txt").unwrap(), None);
        // The first entry can go too, and the header comment stays.
        let only_b = Catalog::without_report(&added, "a.txt").unwrap().unwrap();
        let parsed: Catalog = toml::from_str(&only_b).unwrap();
        assert_eq!(parsed.reports, vec![report("b.txt")]);
        assert!(only_b.starts_with("# The reports."), "{only_b}");
    }

    #[test]
    fn a_pending_file_stands_for_a_listed_file_that_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CATALOG_FILE), TEXT).unwrap();
        assert!(Catalog::load(dir.path()).is_err());
        std::fs::write(dir.path().join(pending_name("a.txt")), "正文").unwrap();
        assert_eq!(Catalog::load(dir.path()).unwrap().reports.len(), 1);
        assert_eq!(
            report_path(dir.path(), "a.txt"),
            dir.path().join(".a.txt.pending")
        );
        std::fs::write(dir.path().join("a.txt"), "正文").unwrap();
        assert_eq!(report_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        for bad in ["", ".a.txt.pending", "../a.txt", "a/b.txt", "..", "a\\b"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
