//! `wenda search`: ranked passages with citations, in the terminal or as JSON.

use anyhow::{Result, bail};
use clap::Args;
use wenda::progress::Progress;
use wenda::retrieve::{Mode, RebuildPolicy, SearchRequest};

use super::paths::Paths;

/// Flags of `wenda search`.
#[derive(Args)]
pub struct SearchArgs {
    /// The question or keywords, in Chinese or English.
    query: String,
    /// Number of passages to return (1–100).
    #[arg(short, long, default_value_t = wenda::retrieve::DEFAULT_K)]
    k: usize,
    /// Retrieval mode [default: hybrid, or bm25 with --lexical-only].
    #[arg(short, long, value_enum)]
    mode: Option<Mode>,
    /// Only search this report (file name in the corpus folder).
    #[arg(long)]
    source: Option<String>,
    /// Print one JSON document (the same shape as the HTTP API).
    #[arg(long)]
    json: bool,
    /// Fail instead of rebuilding a missing or stale index.
    #[arg(long)]
    no_build: bool,
}

/// Runs one search and prints its hits.
pub fn run(paths: &Paths, args: SearchArgs, bars: &dyn Progress) -> Result<()> {
    if args.k == 0 || args.k > wenda::retrieve::MAX_K {
        bail!(
            "-k must be between 1 and {}, got {}",
            wenda::retrieve::MAX_K,
            args.k
        );
    }
    let rebuild = if args.no_build {
        RebuildPolicy::Never
    } else {
        RebuildPolicy::IfNeeded
    };
    let with_model = args.mode != Some(Mode::Bm25);
    let (_, engine) = paths.engine(rebuild, with_model, bars)?;
    let request = SearchRequest {
        query: args.query,
        k: args.k,
        mode: args.mode,
        source: args.source,
    };
    let response = engine.search(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(());
    }
    super::print::hits(&response, super::print::stdout_colour());
    Ok(())
}
