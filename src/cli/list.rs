//! `wenda list`: the reports of the collection with their passage counts.

use anyhow::Result;
use clap::Args;

use super::paths::Paths;

/// Flags of `wenda list`.
#[derive(Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the catalog as a table, or as JSON with `--json`.
pub fn run(paths: &Paths, args: ListArgs) -> Result<()> {
    let corpus = paths.corpus()?;
    let counts = corpus.passage_counts();
    if args.json {
        let reports: Vec<serde_json::Value> = counts
            .iter()
            .map(|(r, n)| {
                serde_json::json!({
                    "source": r.file, "title": r.title, "publisher": r.publisher,
                    "year": r.year, "passages": n,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "version": corpus.fingerprint(), "reports": reports,
            }))?
        );
        return Ok(());
    }
    super::print::catalog(&counts, corpus.fingerprint());
    Ok(())
}
