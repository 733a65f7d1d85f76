//! `wenda remove`: take a report and its passages out of the collection.

use anyhow::Result;
use clap::Args;
use wenda::collection;
use wenda::corpus::extract::ExtractOptions;
use wenda::progress::Progress;
use wenda::retrieve::RebuildPolicy;

use super::paths::Paths;

/// Flags of `wenda remove`.
#[derive(Args)]
pub struct RemoveArgs {
    /// The report's file name in the corpus folder (the `source` of its citations).
    source: String,
}

/// Removes the report, its catalog entry and its passages from the index.
pub fn run(paths: &Paths, args: RemoveArgs, bars: &dyn Progress) -> Result<()> {
    let encoder = paths.load_encoder(bars)?;
    let config = paths.collection_config(RebuildPolicy::IfNeeded, ExtractOptions::default());
    let removed = collection::remove_report(&config, &args.source, encoder.as_deref(), bars)?;
    println!(
        "removed {} \"{}\" and its {} passages in {:.1} s; collection version {}",
        removed.source, removed.title, removed.passages, removed.seconds, removed.version
    );
    paths.sync_cluster(bars)?;
    Ok(())
}
