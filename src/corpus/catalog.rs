//! `corpus/catalog.toml`: the title, publisher and year of each report, which
//! every citation carries so a reader knows which report a passage is from.

use std::path::Path;

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

impl Catalog {
    /// Reads `catalog.toml` from a corpus folder and checks that every listed file exists
    /// and that every `.txt` file in the folder is listed.
    pub fn load(corpus_dir: &Path) -> Result<Catalog> {
        let path = corpus_dir.join(CATALOG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let catalog: Catalog = toml::from_str(&text).map_err(|e| {
            Error::Corpus(format!(
                "{} is not a valid catalog: {e}; each report needs file, title, publisher, year",
                path.display()
            ))
        })?;
        for report in &catalog.reports {
            if report.file.contains(['/', '\\']) || report.file.starts_with('.') {
                return Err(Error::Corpus(format!(
                    "{}: file {:?} must be a plain file name inside the corpus folder",
                    path.display(),
                    report.file
                )));
            }
            if !corpus_dir.join(&report.file).is_file() {
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
}
