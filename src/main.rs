//! The `wenda` command: build the index, search, evaluate and serve.
//! A thin shell over the library; `anyhow` lives only here.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use wenda::corpus::Corpus;
use wenda::index::{self, BuildProgress};
use wenda::retrieve::{Encoder, Engine, EngineConfig, Fusion, Mode, RebuildPolicy, SearchRequest};

use crate::cli::progress::Bars;

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
    #[command(subcommand)]
    command: Command,
}

/// Where things live; the defaults fit a checkout of the repository.
#[derive(Args, Clone)]
struct Paths {
    /// Folder with the reports (*.txt) and catalog.toml.
    #[arg(long, global = true, env = "WENDA_CORPUS", default_value = "corpus")]
    corpus: PathBuf,
    /// Folder of the index (built by `wenda index`).
    #[arg(long, global = true, env = "WENDA_INDEX", default_value = "index")]
    index: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or rebuild) the index from the corpus: passages, BM25 and vectors.
    Index,
    /// Search the reports and print ranked passages with citations.
    Search(SearchArgs),
    /// Measure retrieval quality on a question set or a BEIR-style benchmark.
    Eval(EvalArgs),
}

#[derive(Args)]
struct EvalArgs {
    /// Question set in JSONL with gold evidence spans (see ../shared/eval/README.md).
    #[arg(long, value_name = "FILE", required_unless_present = "beir")]
    set: Option<PathBuf>,
    /// BEIR-style folder (corpus.jsonl, queries.jsonl, qrels.tsv); indexed into a temporary index.
    #[arg(long, value_name = "DIR", conflicts_with = "set")]
    beir: Option<PathBuf>,
    /// Mode to evaluate: bm25, dense, hybrid, or all (every mode available).
    #[arg(short, long, default_value = "all")]
    mode: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// List every missed question with what was retrieved instead.
    #[arg(long)]
    verbose: bool,
    /// Also write a TREC run file (several modes: the mode goes before the extension).
    #[arg(long, value_name = "FILE")]
    trec_run: Option<PathBuf>,
    /// Also write the TREC qrels of the set.
    #[arg(long, value_name = "FILE")]
    trec_qrels: Option<PathBuf>,
}

#[derive(Args)]
struct SearchArgs {
    /// The question or keywords, in Chinese or English.
    query: String,
    /// Number of passages to return (1–100).
    #[arg(short, long, default_value_t = wenda::retrieve::DEFAULT_K)]
    k: usize,
    /// Retrieval mode: bm25, dense or hybrid.
    #[arg(short, long, default_value = "bm25")]
    mode: String,
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

fn main() {
    let cli = Cli::parse();
    init_logging(cli.quiet);
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn init_logging(quiet: bool) {
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WENDA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},tantivy=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let bars = Bars::new(cli.quiet || !std::io::stderr().is_terminal());
    match cli.command {
        Command::Index => cmd_index(&cli.paths, &bars),
        Command::Search(args) => cmd_search(&cli.paths, args, &bars),
        Command::Eval(args) => cmd_eval(&cli.paths, args, &bars),
    }
}

fn load_encoder() -> Result<Option<Arc<dyn Encoder>>> {
    Ok(None)
}

fn engine(paths: &Paths, rebuild: RebuildPolicy, bars: &dyn BuildProgress) -> Result<Engine> {
    let config = EngineConfig {
        corpus_dir: paths.corpus.clone(),
        index_dir: paths.index.clone(),
        rebuild,
        fusion: Fusion::default(),
    };
    Ok(Engine::open(&config, load_encoder()?, bars)?)
}

fn cmd_index(paths: &Paths, bars: &dyn BuildProgress) -> Result<()> {
    let started = Instant::now();
    let corpus = Corpus::load(&paths.corpus)
        .with_context(|| format!("reading the corpus in {}", paths.corpus.display()))?;
    let fingerprint = Corpus::fingerprint(&paths.corpus)?;
    let encoder = load_encoder()?;
    let built = index::build(
        &paths.index,
        &corpus.passages,
        &corpus.report_labels(),
        &fingerprint,
        encoder.as_deref().map(|e| e as &dyn index::PassageEncoder),
        bars,
    )?;
    let size = dir_size(&built.data_dir);
    println!(
        "indexed {} passages from {} reports into {} ({:.1} MB) in {:.1} s{}",
        built.passages.len(),
        corpus.catalog.reports.len(),
        paths.index.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        match &built.manifest.model_id {
            Some(m) => format!("; vectors from {m}"),
            None => "; BM25 only".into(),
        }
    );
    Ok(())
}

fn dir_size(dir: &std::path::Path) -> u64 {
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

fn cmd_search(paths: &Paths, args: SearchArgs, bars: &dyn BuildProgress) -> Result<()> {
    let mode: Mode = args.mode.parse()?;
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
    let engine = engine(paths, rebuild, bars)?;
    let request = SearchRequest {
        query: args.query,
        k: args.k,
        mode,
        source: args.source,
    };
    let response = engine.search(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(());
    }
    cli::print::hits(&response, std::io::stdout().is_terminal());
    Ok(())
}

fn eval_modes(requested: &str, available: &[Mode]) -> Result<Vec<Mode>> {
    if requested.trim().eq_ignore_ascii_case("all") {
        return Ok(available.to_vec());
    }
    let mode: Mode = requested.parse()?;
    if !available.contains(&mode) {
        bail!(
            "mode {mode} is not available: the embedding model is missing (run `wenda models fetch`)"
        );
    }
    Ok(vec![mode])
}

fn trec_path(base: &std::path::Path, mode: Mode, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{mode}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{mode}"),
    };
    base.with_file_name(name)
}

fn cmd_eval(paths: &Paths, args: EvalArgs, bars: &dyn BuildProgress) -> Result<()> {
    use wenda::eval::{self, run};
    let (evaluation, qrels) = if let Some(dir) = &args.beir {
        let set = eval::BeirSet::load(dir)?;
        let encoder = load_encoder()?;
        let available: Vec<Mode> = if encoder.is_some() {
            Mode::ALL.to_vec()
        } else {
            vec![Mode::Bm25]
        };
        let modes = eval_modes(&args.mode, &available)?;
        let scratch = tempfile::tempdir().context("creating a temporary index folder")?;
        let evaluation = run::evaluate_beir(
            &set,
            scratch.path(),
            encoder,
            Fusion::default(),
            &modes,
            bars,
        )?;
        (evaluation, set.qrels_rows())
    } else {
        let set_path = args.set.as_ref().context("give --set FILE or --beir DIR")?;
        let questions = eval::load_questions(set_path)?;
        let engine = engine(paths, RebuildPolicy::IfNeeded, bars)?;
        let modes = eval_modes(&args.mode, &engine.modes())?;
        let name = set_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let evaluation = run::evaluate_questions(&engine, &name, &questions, &modes, bars)?;
        let qrels = eval::dev_qrels(&questions, &run::all_spans(&engine));
        (evaluation, qrels)
    };
    if let Some(base) = &args.trec_run {
        let several = evaluation.runs.len() > 1;
        for (mode, rankings) in &evaluation.runs {
            let path = trec_path(base, *mode, several);
            eval::write_run_file(&path, &format!("wenda-{mode}"), rankings)?;
            tracing::info!("wrote TREC run {}", path.display());
        }
    }
    if let Some(path) = &args.trec_qrels {
        eval::write_qrels_file(path, &qrels)?;
        tracing::info!("wrote TREC qrels {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation.report)?);
    } else {
        print!("{}", evaluation.report.to_table());
        if args.verbose {
            print!("{}", evaluation.report.render_misses());
        }
    }
    Ok(())
}
