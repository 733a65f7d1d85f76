//! The `wenda` command: build the index, search, evaluate, serve, and add or remove reports.
//! A thin shell over the library: this file is the clap definition and the dispatch; each
//! command lives in `src/cli/<command>.rs`. `anyhow` lives only in the binary.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::cli::logging::LogFormat;
use crate::cli::progress::Bars;
use crate::cli::{add, bench, eval, index, list, models, paths::Paths, remove, search, serve};

/// wenda (问答): ask questions about Chinese industry reports on large AI
/// models, and get passages and answers that cite their sources.
#[derive(Parser)]
#[command(name = "wenda", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    paths: Paths,
    /// Print only errors (no progress bars, no info logs).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log lines as text (coloured only on a terminal without NO_COLOR) or as JSON, one
    /// object a line, for log collectors.
    #[arg(long, global = true, value_enum, env = "WENDA_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or rebuild) the index from the corpus: passages, BM25 and vectors (and, with
    /// `--backend opensearch`, load them into the cluster).
    Index(index::IndexArgs),
    /// Search the reports and print ranked passages with citations.
    Search(search::SearchArgs),
    /// Measure retrieval quality on a question set or a BEIR-style benchmark.
    Eval(eval::EvalArgs),
    /// Run the HTTP service and web page (gets the model and builds the index first if needed).
    Serve(serve::ServeArgs),
    /// Measure speed: embedding throughput, query latency, index build time, search latency.
    Bench(bench::BenchArgs),
    /// Add a report (.pdf, .txt or .md) to the collection: its text goes into the corpus
    /// folder with a catalog entry, and the index embeds only its passages.
    Add(add::AddArgs),
    /// Remove a report (by its file name in the corpus, see `wenda list`) and every passage of it.
    Remove(remove::RemoveArgs),
    /// List the reports of the collection with their passage counts.
    List(list::ListArgs),
    /// Manage embedding models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
}

fn main() {
    let cli = Cli::parse();
    cli::logging::init(cli.quiet, cli.log_format);
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let bars = Bars::for_stderr(cli.quiet);
    let paths = &cli.paths;
    // A bad `--backend`/`--engine-url` combination is refused before any work.
    paths.cluster_config()?;
    match cli.command {
        Command::Index(args) => index::run(paths, args, &bars),
        Command::Search(args) => search::run(paths, args, &bars),
        Command::Eval(args) => eval::run(paths, args, &bars),
        Command::Serve(args) => serve::run(paths, args, &bars),
        Command::Bench(args) => bench::run(paths, args, &bars),
        Command::Add(args) => add::run(paths, args, &bars),
        Command::Remove(args) => remove::run(paths, args, &bars),
        Command::List(args) => list::run(paths, args),
        Command::Models(command) => models::run(paths, command, &bars),
    }
}
