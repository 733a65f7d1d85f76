//! `wenda index`: build (or rebuild) the index from the corpus.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use wenda::cluster::{Client, Layout};
use wenda::index;
use wenda::progress::Progress;

use super::paths::Paths;

/// Flags of `wenda index`.
#[derive(Args)]
pub struct IndexArgs {
    /// With `--backend opensearch`: primary shards of the new cluster index.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    shards: u32,
    /// With `--backend opensearch`: copies of each shard on other nodes.
    #[arg(long, default_value_t = 0)]
    replicas: u32,
}

/// Builds passages, BM25 and vectors for the corpus and prints what went in; with a
/// cluster backend, then loads them into a new cluster index and moves the alias onto it.
pub fn run(paths: &Paths, args: IndexArgs, bars: &dyn Progress) -> Result<()> {
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
    if let Some(config) = paths.cluster_config()? {
        let started = Instant::now();
        let client = Client::new(config);
        tracing::info!("loading into {}", client.describe()?);
        let layout = Layout {
            shards: args.shards,
            replicas: args.replicas,
        };
        let loaded = client.load(&built, &corpus.report_labels(), layout, bars)?;
        println!(
            "loaded {} passages into {} at {} ({} shards, {} replicas) in {:.1} s; alias {:?} now points at it{}",
            loaded.passages,
            loaded.index,
            client.config().url_list(),
            layout.shards,
            layout.replicas,
            started.elapsed().as_secs_f64(),
            client.config().alias,
            if loaded.replaced.is_empty() {
                String::new()
            } else {
                format!(" (replaced {})", loaded.replaced.join(", "))
            }
        );
    }
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
