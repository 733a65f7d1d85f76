//! `wenda add`: put a report (PDF, text or Markdown) into the collection.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use wenda::collection::{self, NewReport};
use wenda::progress::Progress;
use wenda::retrieve::RebuildPolicy;

use super::paths::{ExtractArgs, Paths};

/// Flags of `wenda add`.
#[derive(Args)]
pub struct AddArgs {
    /// The report: a PDF, or UTF-8 text (.txt) or Markdown (.md).
    file: PathBuf,
    /// Title [default: the text's first line, when short].
    #[arg(long)]
    title: Option<String>,
    /// Publisher [default: none].
    #[arg(long)]
    publisher: Option<String>,
    /// Year of publication [default: the first year in the title or the opening, like 2025年].
    #[arg(long)]
    year: Option<u32>,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// Adds the report: its text and catalog entry, and the index with its passages embedded.
pub fn run(paths: &Paths, args: AddArgs, bars: &dyn Progress) -> Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let new = NewReport {
        bytes,
        file_name: file_name.clone(),
        name_hint: file_name,
        title: args.title,
        publisher: args.publisher,
        year: args.year,
    };
    // Refuse a bad file before loading the model.
    let config = paths.collection_config(RebuildPolicy::IfNeeded, args.extract.options());
    collection::check_new(&new, &config.extract)?;
    let encoder = paths.load_encoder(bars)?;
    let added = collection::add_report(&config, &new, encoder.as_deref(), bars)?;
    println!(
        "added {} \"{}\" ({}, {}): {} passages, {} embedded, in {:.1} s; collection version {}",
        added.source,
        added.title,
        if added.publisher.is_empty() {
            "publisher not given"
        } else {
            added.publisher.as_str()
        },
        added.year,
        added.passages,
        added.embedded,
        added.seconds,
        added.version
    );
    paths.sync_cluster(bars)?;
    Ok(())
}
