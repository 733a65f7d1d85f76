//! `wenda index`: build (or rebuild) the index from the corpus.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use wenda::index;
use wenda::progress::Progress;

use super::paths::Paths;

/// Builds passages, BM25 and vectors for the corpus and prints what went in.
pub fn run(paths: &Paths, bars: &dyn Progress) -> Result<()> {
    let started = Instant::now();
    let corpus = paths.corpus()?;
    let encoder = paths.load_encoder(bars)?;
    let built = index::build(
        &paths.index,
        corpus.passages(),
        &corpus.report_labels(),
        corpus.fingerprint(),
        encoder.as_deref(),
        bars,
    )?;
    let size = dir_size(&built.data_dir);
    println!(
        "indexed {} passages from {} reports into {} ({:.1} MB) in {:.1} s; {} words of the reports' own vocabulary added to jieba ({}){}",
        built.passages.len(),
        corpus.catalog.reports.len(),
        paths.index.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        built.vocabulary.len(),
        built
            .data_dir
            .join(wenda::analysis::VOCABULARY_FILE)
            .display(),
        match &built.manifest.model_id {
            Some(m) => format!(
                "; vectors from {m} ({} passages and sentences embedded, the others from the vector cache)",
                built.manifest.embedded
            ),
            None => "; BM25 only".into(),
        }
    );
    Ok(())
}

/// Bytes under `dir`, for the size `wenda index` prints.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
