//! Running a BERT embedding model: tokenization with the model's prefixes, windowing of
//! long inputs, length-sorted padded batches, pooling and L2 normalization.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::unigram::{self, TextTokenizer};
use tracing::info;

use super::EmbedError;
use super::acquire::{ModelFiles, read_bert_config};
use super::fast::FastBert;
use super::kernels::{
    self, Kernel, KernelPlan, KernelRequest, PROBE_PASSAGES, PROBE_QUERY, ProbeKey,
    ProbeMeasurement,
};
use super::profile::{ModelProfile, Pooling};

/// Most padded tokens (batch size × longest sequence) in one forward pass. Measured on the
/// 2-core development machine: larger batches gain nothing on CPU once the matrices are a
/// few hundred rows tall, and this keeps attention buffers small (≈ 12 heads × 512² × 4 B
/// per 512-token sequence).
pub const BATCH_TOKEN_BUDGET: usize = 2048;

/// Most sequences in one forward pass, so that a batch of very short texts stays small.
pub const MAX_BATCH_SEQUENCES: usize = 64;

/// Which network computes embeddings on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CpuEngine {
    /// Our packed encoder ([`FastBert`]): the same math, several times faster.
    #[default]
    Fast,
    /// candle-transformers' `BertModel` (for comparisons and as an escape hatch).
    Candle,
}

/// How to load a model: where it runs, with which network and which kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// The device.
    pub device: DeviceChoice,
    /// The network used when the device is the CPU.
    pub cpu_engine: CpuEngine,
    /// The kernels of our CPU encoder's linear layers (see [`super::kernels`]).
    pub kernels: KernelRequest,
}

impl From<DeviceChoice> for LoadOptions {
    /// That device, with the default CPU network.
    fn from(device: DeviceChoice) -> Self {
        LoadOptions {
            device,
            ..LoadOptions::default()
        }
    }
}

/// Which device to run the model on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when this build has the `cuda` feature and a GPU is present, else CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// The first CUDA GPU; an error when unavailable.
    Cuda,
}

impl DeviceChoice {
    /// Resolves the choice to a candle device.
    pub fn device(self) -> Result<Device, EmbedError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => {
                #[cfg(feature = "cuda")]
                {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                    tracing::warn!("no usable CUDA GPU; running the model on the CPU");
                }
                Ok(Device::Cpu)
            }
            DeviceChoice::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    Device::new_cuda(0).map_err(|e| {
                        EmbedError::Device(format!("cannot open CUDA GPU 0: {e}. Use --device cpu"))
                    })
                }
                #[cfg(not(feature = "cuda"))]
                {
                    Err(EmbedError::Device(
                        "this build has no CUDA support; rebuild with `--features cuda` or use --device cpu".to_string(),
                    ))
                }
            }
        }
    }
}

/// One forward-pass input: a window of one text's content tokens.
struct Window {
    /// Index of the text it belongs to.
    text: usize,
    /// Full token ids, special tokens included.
    ids: Vec<u32>,
    /// Weight of this window in the text's average (its number of content tokens).
    weight: f32,
}

/// The network that computes hidden states.
enum Engine {
    /// candle-transformers' BertModel (used on GPUs).
    Candle(BertModel),
    /// Our CPU encoder with a fast path for few-row inputs (same math).
    Fast(FastBert),
}

/// A loaded embedding model, safe to share between threads (`Send + Sync`).
pub struct Embedder {
    model: Engine,
    tokenizer: TextTokenizer,
    profile: ModelProfile,
    device: Device,
    dim: usize,
    model_id: String,
    /// Special ids the tokenizer puts before the content (`<s>` / `[CLS]`).
    head_ids: Vec<u32>,
    /// Special ids the tokenizer puts after the content (`</s>` / `[SEP]`).
    tail_ids: Vec<u32>,
    /// Id used to pad batches (masked out, so any id works).
    pad_id: u32,
    /// Embedding calls running now. A call that starts while another runs computes on its
    /// own thread only: the cores are already busy, and splitting each matrix product over
    /// them would add synchronization without adding throughput.
    in_flight: AtomicUsize,
    /// How the kernels were chosen (the `encoder kernels:` log line; empty for candle's model).
    kernel_note: String,
}

/// Counts one embedding call in [`Embedder::in_flight`] while alive.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hands memory freed while loading (f32 weights the kernels do not use, the probe's
/// formats) back to the system: glibc keeps freed blocks of a few MB inside its heap, where
/// they stay resident. Its effect has not been measured on its own (`wenda serve` after
/// 1,000 searches, both with it, AMD EPYC: 149 MB with int8, 296 MB with f32).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            /// glibc: releases free memory at the heap's top and whole free pages inside it.
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free pages of glibc's own heaps to the system.
        unsafe { malloc_trim(0) };
    }
}

/// Cosine similarity (0 for a zero vector).
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn tok_err(context: impl Into<String>, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Tokenizer {
        context: context.into(),
        reason: e.to_string(),
    }
}

impl Embedder {
    /// Loads the model folder as `options` say; the weights are used as f32.
    pub fn load(
        files: &ModelFiles,
        profile: &ModelProfile,
        options: LoadOptions,
    ) -> Result<Embedder, EmbedError> {
        let device = options.device.device()?;
        let config = read_bert_config(&files.config, &files.dir)?;
        if !files.weights.is_file() {
            return Err(EmbedError::folder(
                &files.dir,
                "model.safetensors is missing",
            ));
        }
        // SAFETY: the file is memory-mapped read-only; it must not be modified while the
        // model is loaded, which holds for our model folders (written once, atomically).
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                std::slice::from_ref(&files.weights),
                DType::F32,
                &device,
            )
        }
        .map_err(|e| {
            EmbedError::folder(&files.dir, format!("model.safetensors cannot be read: {e}"))
        })?;
        let mismatch = |e: candle_core::Error| {
            EmbedError::folder(
                &files.dir,
                format!("model.safetensors does not match config.json: {e}"),
            )
        };
        let model_id = profile.model_id(&files.weights_sha256()?);
        let fast = device.is_cpu() && options.cpu_engine == CpuEngine::Fast;
        // What to load and run: a fixed plan, a cached measurement, or everything the probe
        // below will time.
        let key = ProbeKey::current(&model_id);
        let (kernels, plan, note) = match options.kernels {
            KernelRequest::F32 => (
                vec![Kernel::F32],
                KernelPlan::uniform(Kernel::F32),
                "query=f32 batch=f32 (--kernel f32)".to_string(),
            ),
            KernelRequest::Int8 => {
                let k = Kernel::best_int8();
                (vec![k], KernelPlan::uniform(k), "--kernel int8".to_string())
            }
            KernelRequest::Plan(plan) => {
                if let Some(k) = plan.kernels().into_iter().find(|k| !k.supported()) {
                    return Err(EmbedError::Device(format!(
                        "kernel {} cannot run on this processor; use --kernel auto",
                        k.name()
                    )));
                }
                (
                    plan.kernels().to_vec(),
                    plan,
                    format!(
                        "query={} batch={} (fixed plan)",
                        plan.query.name(),
                        plan.batch.name()
                    ),
                )
            }
            KernelRequest::Auto => match kernels::cached(&files.dir, &key) {
                Some(measured) => {
                    let plan = kernels::choose(&measured);
                    (
                        plan.kernels().to_vec(),
                        plan,
                        kernels::describe(plan, &measured, true),
                    )
                }
                None => {
                    let mut all = vec![Kernel::F32];
                    all.extend(Kernel::probe_candidates());
                    (all, KernelPlan::uniform(Kernel::F32), String::new())
                }
            },
        };
        let model = if fast {
            Engine::Fast(
                FastBert::load_mapped(vb, &config, &kernels, plan, &files.weights)
                    .map_err(mismatch)?,
            )
        } else {
            Engine::Candle(BertModel::load(vb, &config).map_err(mismatch)?)
        };
        let tokenizer = unigram::load(&files.tokenizer).map_err(|e| {
            EmbedError::folder(&files.dir, format!("tokenizer.json does not load: {e}"))
        })?;
        let mut emb =
            Self::from_parts(model, tokenizer, &config, profile.clone(), device, model_id)?;
        if matches!(emb.model, Engine::Fast(_)) {
            let note = if note.is_empty() {
                let started = std::time::Instant::now();
                let measured = emb.probe_kernels(&kernels[1..])?;
                let decision = kernels::decide(&measured);
                let plan = decision.plan;
                if let Engine::Fast(m) = &mut emb.model {
                    m.retain(plan);
                }
                let cache_note = match &decision.uncached {
                    Some(why) => format!("not cached: {why}"),
                    None => match kernels::store(&files.dir, &key, &measured) {
                        Ok(()) => "cached".to_string(),
                        Err(e) => {
                            tracing::warn!("could not cache the kernel measurement: {e}");
                            "not cached: write failed".to_string()
                        }
                    },
                };
                format!(
                    "{}, probe {:.0} ms, {cache_note}",
                    kernels::describe(plan, &measured, false),
                    started.elapsed().as_secs_f64() * 1000.0
                )
            } else {
                // Loaded for `plan` alone; a mixed plan still holds both tables and both f32
                // layouts until this.
                if let Engine::Fast(m) = &mut emb.model {
                    m.retain(plan);
                }
                note
            };
            info!("encoder kernels: {note}");
            emb.kernel_note = note;
            release_freed_memory();
        }
        info!(model = %emb.model_id, dim = emb.dim, device = ?emb.device, source = %files.source, weights_mb = emb.weight_bytes() / 1_000_000, "embedding model loaded");
        Ok(emb)
    }

    /// The kernel per input shape of our CPU encoder (`None` for candle's `BertModel`).
    pub fn kernel_plan(&self) -> Option<KernelPlan> {
        match &self.model {
            Engine::Fast(m) => Some(m.plan()),
            Engine::Candle(_) => None,
        }
    }

    /// How the encoder's kernels were chosen, as logged at load (`query=… batch=… (…)`;
    /// empty for candle's `BertModel`).
    pub fn kernel_note(&self) -> &str {
        &self.kernel_note
    }

    /// Bytes of model weights held by our CPU encoder (0 for candle's `BertModel`).
    pub fn weight_bytes(&self) -> usize {
        match &self.model {
            Engine::Fast(m) => m.weight_bytes(),
            Engine::Candle(_) => 0,
        }
    }

    /// Times the probe (a query and a passage batch, [`kernels::PROBE_QUERY`],
    /// [`kernels::PROBE_PASSAGES`]) with f32 and each of `candidates`, and compares their
    /// embeddings with f32's. The encoder must hold the weights of all of them.
    ///
    /// After one untimed f32 query (thread pool and allocator warm-up), the first round runs
    /// every kernel on both shapes (checked against f32 and timed); later rounds run only f32
    /// and, per shape, the fastest int8 kernel that passed, alternating and in a rotating
    /// order so that a burst of load from another process falls on all of them alike. After
    /// [`kernels::MIN_PROBE_ROUNDS`], a round starts only if one more like the last ends
    /// within [`kernels::PROBE_BUDGET_MS`], at most [`kernels::MAX_PROBE_ROUNDS`]; each
    /// kernel's best time counts.
    fn probe_kernels(&self, candidates: &[Kernel]) -> Result<Vec<ProbeMeasurement>, EmbedError> {
        let Engine::Fast(m) = &self.model else {
            return Ok(Vec::new());
        };
        let started = std::time::Instant::now();
        let wrap = |content: Vec<u32>| {
            let mut windows = Vec::new();
            self.windows(0, &content, &mut windows);
            windows.swap_remove(0).ids
        };
        let query = vec![wrap(self.query_ids(PROBE_QUERY)?)];
        let passages = PROBE_PASSAGES
            .iter()
            .map(|p| self.passage_ids(p).map(wrap))
            .collect::<Result<Vec<_>, _>>()?;
        let run = |seqs: &[Vec<u32>], kernel: Kernel| {
            let seqs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let started = std::time::Instant::now();
            let hidden = m
                .forward_packed_with(&seqs, true, kernel)
                .map_err(|e| EmbedError::compute(format!("kernel probe ({})", kernel.name()), e))?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            Ok::<_, EmbedError>((ms, self.pool_packed(&hidden, &seqs)))
        };
        run(&query, Kernel::F32)?;
        let kernels: Vec<Kernel> = std::iter::once(Kernel::F32)
            .chain(candidates.iter().copied())
            .collect();
        // Per kernel: query times, batch times, embeddings of the first round.
        let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); kernels.len()];
        let mut outputs: Vec<Vec<Vec<f32>>> = Vec::with_capacity(kernels.len());
        for (i, kernel) in kernels.iter().enumerate() {
            let (q_ms, mut out) = run(&query, *kernel)?;
            let (b_ms, batch) = run(&passages, *kernel)?;
            out.extend(batch);
            times[i].0.push(q_ms);
            times[i].1.push(b_ms);
            outputs.push(out);
        }
        let min_cosine: Vec<f32> = outputs
            .iter()
            .map(|out| {
                out.iter()
                    .zip(&outputs[0])
                    .map(|(a, b)| cosine(a, b))
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        // The finalists per shape: f32 and the fastest passing int8 kernel of round one.
        let finalist = |shape: usize| {
            (1..kernels.len())
                .filter(|&i| min_cosine[i] >= kernels::MIN_PROBE_COSINE)
                .min_by(|&a, &b| {
                    let t = |i: usize| {
                        if shape == 0 {
                            times[i].0[0]
                        } else {
                            times[i].1[0]
                        }
                    };
                    t(a).total_cmp(&t(b))
                })
        };
        let finalists: [Vec<usize>; 2] =
            [0, 1].map(|shape| std::iter::once(0).chain(finalist(shape)).collect());
        let mut rounds = 1;
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let mut last_round_ms = elapsed_ms();
        while finalists.iter().any(|f| f.len() > 1)
            && rounds < kernels::MAX_PROBE_ROUNDS
            && (rounds < kernels::MIN_PROBE_ROUNDS
                || elapsed_ms() + last_round_ms <= kernels::PROBE_BUDGET_MS)
        {
            let round_started = elapsed_ms();
            for (shape, finalists) in finalists.iter().enumerate() {
                let n = finalists.len();
                for j in 0..n {
                    let i = finalists[(j + rounds) % n];
                    if shape == 0 {
                        let ms = run(&query, kernels[i])?.0;
                        times[i].0.push(ms);
                    } else {
                        let ms = run(&passages, kernels[i])?.0;
                        times[i].1.push(ms);
                    }
                }
            }
            rounds += 1;
            last_round_ms = elapsed_ms() - round_started;
        }
        Ok(kernels
            .iter()
            .zip(&times)
            .zip(&min_cosine)
            .map(|((k, (q, b)), cos)| ProbeMeasurement::from_times(*k, q, b, *cos))
            .collect())
    }

    /// Builds an embedder from a loaded network and tokenizer (used by `load` and tests).
    fn from_parts(
        model: Engine,
        mut tokenizer: TextTokenizer,
        config: &Config,
        profile: ModelProfile,
        device: Device,
        model_id: String,
    ) -> Result<Embedder, EmbedError> {
        tokenizer
            .with_truncation(None)
            .map_err(|e| tok_err("disabling truncation", e))?;
        tokenizer.with_padding(None);
        // Find the special tokens the post-processor wraps a text in.
        let probe = "a";
        let with = tokenizer
            .encode(probe, true)
            .map_err(|e| tok_err("probe", e))?;
        let without = tokenizer
            .encode(probe, false)
            .map_err(|e| tok_err("probe", e))?;
        let (with, without) = (with.get_ids(), without.get_ids());
        let start = (0..=with.len().saturating_sub(without.len()))
            .find(|&i| with[i..].starts_with(without))
            .ok_or_else(|| {
                tok_err(
                    "tokenizer.json",
                    "cannot locate the text between the special tokens",
                )
            })?;
        let head_ids = with[..start].to_vec();
        let tail_ids = with[start + without.len()..].to_vec();
        if head_ids.len() + tail_ids.len() >= profile.max_length {
            return Err(tok_err(
                "tokenizer.json",
                "special tokens leave no room for text",
            ));
        }
        if profile.max_length > config.max_position_embeddings {
            return Err(EmbedError::Config(format!(
                "profile max length {} exceeds the model's {} positions",
                profile.max_length, config.max_position_embeddings
            )));
        }
        let pad_id = ["<pad>", "[PAD]"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .unwrap_or(0);
        Ok(Embedder {
            model,
            tokenizer,
            dim: config.hidden_size,
            profile,
            device,
            model_id,
            head_ids,
            tail_ids,
            pad_id,
            in_flight: AtomicUsize::new(0),
            kernel_note: String::new(),
        })
    }

    /// Length of each embedding vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Stable id of model and weights (see [`ModelProfile::model_id`]); store it with an index.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The profile this embedder was loaded with.
    pub fn profile(&self) -> &ModelProfile {
        &self.profile
    }

    /// Most content tokens per window (max length minus the special tokens): 510 for e5.
    pub fn max_content_tokens(&self) -> usize {
        self.profile.max_length - self.head_ids.len() - self.tail_ids.len()
    }

    /// Token ids of `text` as the model sees them, without the special tokens.
    pub fn content_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| tok_err(format!("text of {} bytes", text.len()), e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Content ids of a query, prefix included.
    pub fn query_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.content_ids(&format!("{}{}", self.profile.query_prefix, text))
    }

    /// Content ids of a passage, prefix included.
    pub fn passage_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.content_ids(&format!("{}{}", self.profile.passage_prefix, text))
    }

    /// Splits one text's content ids into windows of at most `max_content_tokens`, each
    /// wrapped in the special tokens.
    fn windows(&self, text: usize, content: &[u32], out: &mut Vec<Window>) {
        let max = self.max_content_tokens();
        let mut push = |chunk: &[u32]| {
            let mut ids =
                Vec::with_capacity(chunk.len() + self.head_ids.len() + self.tail_ids.len());
            ids.extend_from_slice(&self.head_ids);
            ids.extend_from_slice(chunk);
            ids.extend_from_slice(&self.tail_ids);
            out.push(Window {
                text,
                ids,
                weight: chunk.len() as f32,
            });
        };
        if content.is_empty() {
            push(&[]);
        } else {
            content.chunks(max).for_each(&mut push);
        }
    }

    /// Embeds one query (query prefix added); the vector is L2-normalized.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.query_ids(text)?;
        let mut windows = Vec::new();
        self.windows(0, &ids, &mut windows);
        let mut out = self.run(windows, 1)?;
        out.pop().ok_or_else(|| {
            EmbedError::compute("query", candle_core::Error::Msg("no output".into()))
        })
    }

    /// Embeds several queries in one call (query prefix added), as [`Embedder::embed_query`]
    /// does one; the vectors are in input order. Used by [`super::QueryBatcher`].
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut windows = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let ids = self.query_ids(text)?;
            self.windows(i, &ids, &mut windows);
        }
        self.run(windows, texts.len())
    }

    /// Embeds passages (passage prefix added), batching texts of similar length; the vectors
    /// are L2-normalized and in input order.
    pub fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids: Vec<Vec<u32>> = texts
            .par_iter()
            .map(|t| self.passage_ids(t))
            .collect::<Result<_, _>>()?;
        let mut windows = Vec::with_capacity(ids.len());
        for (i, content) in ids.iter().enumerate() {
            self.windows(i, content, &mut windows);
        }
        self.run(windows, texts.len())
    }

    /// Runs all windows in length-sorted batches and combines them per text.
    fn run(&self, mut windows: Vec<Window>, n_texts: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let alone = self.in_flight.fetch_add(1, Ordering::SeqCst) == 0;
        let _counted = InFlight(&self.in_flight);
        windows.sort_by_key(|w| w.ids.len());
        let mut remaining = vec![0usize; n_texts];
        for w in &windows {
            remaining[w.text] += 1;
        }
        let mut sums = vec![vec![0f32; self.dim]; n_texts];
        let mut weights = vec![0f32; n_texts];
        // Sorted ascending, so the last window of a batch is its longest.
        let mut batches = Vec::new();
        let mut start = 0;
        while start < windows.len() {
            let mut end = start + 1;
            while end < windows.len()
                && end - start < MAX_BATCH_SEQUENCES
                && (end + 1 - start) * windows[end].ids.len() <= BATCH_TOKEN_BUDGET
            {
                end += 1;
            }
            batches.push(start..end);
            start = end;
        }
        // Alone, batches run in parallel (one forward pass keeps only about one core
        // busy: measured 1.14 cores of 2 while indexing) and so does each pass; beside
        // other calls, everything stays on this thread.
        let pass = |r: &std::ops::Range<usize>| self.forward(&windows[r.clone()], alone);
        let pooled: Vec<Vec<Vec<f32>>> = if alone {
            batches.par_iter().map(pass).collect::<Result<_, _>>()?
        } else {
            batches.iter().map(pass).collect::<Result<_, _>>()?
        };
        for (range, pooled) in batches.into_iter().zip(pooled) {
            let batch = &windows[range];
            for (w, v) in batch.iter().zip(pooled) {
                // A text with a single window needs no weighting (and an empty one has weight 0).
                let wt = if remaining[w.text] == 1 && weights[w.text] == 0.0 {
                    1.0
                } else {
                    w.weight
                };
                for (s, x) in sums[w.text].iter_mut().zip(&v) {
                    *s += wt * x;
                }
                weights[w.text] += wt;
                remaining[w.text] -= 1;
            }
        }
        for v in sums.iter_mut() {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Ok(sums)
    }

    /// One forward pass; returns the pooled (not normalized) vector per window.
    fn forward(&self, batch: &[Window], parallel: bool) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ctx = |what: &str| format!("{what} for a batch of {} sequences", batch.len());
        if let Engine::Fast(m) = &self.model {
            let seqs: Vec<&[u32]> = batch.iter().map(|w| w.ids.as_slice()).collect();
            let hidden = m
                .forward_packed(&seqs, parallel)
                .map_err(|e| EmbedError::compute(ctx("forward pass"), e))?;
            return Ok(self.pool_packed(&hidden, &seqs));
        }
        let b = batch.len();
        let len = batch.iter().map(|w| w.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * len);
        let mut mask = Vec::with_capacity(b * len);
        for w in batch {
            ids.extend_from_slice(&w.ids);
            ids.extend(std::iter::repeat_n(self.pad_id, len - w.ids.len()));
            mask.extend(std::iter::repeat_n(1u32, w.ids.len()));
            mask.extend(std::iter::repeat_n(0u32, len - w.ids.len()));
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (b, len), &self.device)?;
            let types = ids.zeros_like()?;
            let mask = Tensor::from_vec(mask, (b, len), &self.device)?;
            let hidden = match &self.model {
                Engine::Candle(m) => m.forward(&ids, &types, Some(&mask))?,
                Engine::Fast(_) => unreachable!("the packed path returned above"),
            };
            let pooled = match self.profile.pooling {
                Pooling::Cls => hidden.i((.., 0))?,
                Pooling::Mean => {
                    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
                    let count = m.sum(1)?;
                    sum.broadcast_div(&count)?
                }
            };
            pooled.to_dtype(DType::F32)?.to_vec2::<f32>()
        };
        let out = run().map_err(|e| EmbedError::compute(ctx("forward pass"), e))?;
        debug_assert_eq!(
            out.first().map(|v| v.len()),
            Some(self.dim).filter(|_| b > 0)
        );
        Ok(out)
    }

    /// Pools packed hidden states (`tokens × dim`, the rows of `seqs` one after another).
    fn pool_packed(&self, hidden: &[f32], seqs: &[&[u32]]) -> Vec<Vec<f32>> {
        let d = self.dim;
        let mut start = 0;
        seqs.iter()
            .map(|s| {
                let rows = &hidden[start * d..(start + s.len()) * d];
                start += s.len();
                match self.profile.pooling {
                    Pooling::Cls => rows[..d].to_vec(),
                    Pooling::Mean => {
                        let mut v = vec![0f32; d];
                        for r in rows.chunks_exact(d) {
                            v.iter_mut().zip(r).for_each(|(a, b)| *a += b);
                        }
                        let n = s.len().max(1) as f32;
                        v.iter_mut().for_each(|a| *a /= n);
                        v
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::e5s1::tests::tiny_pieces;
    use crate::embed::e5s1::{SpmVocab, build_charsmap, build_tokenizer};
    use candle_nn::VarMap;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn embedder_is_send_sync() {
        assert_send_sync::<Embedder>();
    }

    fn tiny_config(max_pos: usize) -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 16, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
            "max_position_embeddings": max_pos, "type_vocab_size": 2, "initializer_range": 0.5,
            "layer_norm_eps": 1e-12, "pad_token_id": 1, "classifier_dropout": null, "model_type": "bert"
        }))
        .expect("config")
    }

    fn tiny_embedder(pooling: Pooling, max_len: usize) -> Embedder {
        tiny_embedder_with(pooling, max_len, false)
    }

    fn tiny_embedder_with(pooling: Pooling, max_len: usize, fast: bool) -> Embedder {
        let config = tiny_config(max_len);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        // BertModel::load initializes the VarMap with random weights; FastBert reuses them.
        let bert = BertModel::load(vb.clone(), &config).expect("model");
        let model = if fast {
            Engine::Fast(FastBert::load(vb, &config).expect("model"))
        } else {
            Engine::Candle(bert)
        };
        let vocab = SpmVocab {
            pieces: tiny_pieces()
                .iter()
                .map(|(p, s)| (p.to_string(), *s))
                .collect(),
            bos: 0,
            eos: 2,
            pad: 1,
            unk: 3,
        };
        let tokenizer = build_tokenizer(&vocab, &build_charsmap(&[]).expect("map")).expect("tok");
        let mut profile = ModelProfile::e5_small();
        profile.pooling = pooling;
        profile.max_length = max_len;
        Embedder::from_parts(
            model,
            crate::embed::unigram::compact(&tokenizer).expect("compact tokenizer"),
            &config,
            profile,
            Device::Cpu,
            "tiny@0".into(),
        )
        .expect("embedder")
    }

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Reference embedding computed directly: one unpadded forward, explicit pooling.
    fn direct(e: &Embedder, ids: &[u32]) -> Vec<f32> {
        let t = Tensor::new(ids, &Device::Cpu)
            .expect("t")
            .unsqueeze(0)
            .expect("u");
        let h = match &e.model {
            Engine::Candle(m) => m
                .forward(&t, &t.zeros_like().expect("z"), None)
                .expect("fwd"),
            Engine::Fast(m) => Tensor::from_vec(
                m.forward_packed(&[ids], true).expect("fwd"),
                (1, ids.len(), e.dim),
                &Device::Cpu,
            )
            .expect("t"),
        };
        let h = h.squeeze(0).expect("sq").to_vec2::<f32>().expect("v");
        match e.profile.pooling {
            Pooling::Cls => h[0].clone(),
            Pooling::Mean => (0..e.dim)
                .map(|j| h.iter().map(|r| r[j]).sum::<f32>() / h.len() as f32)
                .collect(),
        }
    }

    fn normalized(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn pooling_normalization_and_batching() {
        for (pooling, fast) in [
            (Pooling::Mean, false),
            (Pooling::Cls, false),
            (Pooling::Mean, true),
            (Pooling::Cls, true),
        ] {
            let e = tiny_embedder_with(pooling, 64, fast);
            assert_eq!(e.dim(), 32);
            assert_eq!(e.head_ids, vec![0]);
            assert_eq!(e.tail_ids, vec![2]);
            let texts = ["ab", "a ab ab c", "中文 ab a", "", "c c c c c c c ab ab"];
            let batch = e.embed_passages(&texts).expect("batch");
            for (t, v) in texts.iter().zip(&batch) {
                let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
                // Single text call = batch result.
                let single = e.embed_passages(&[t]).expect("single");
                assert!(cos(&single[0], v) > 0.99999, "batch vs single for {t:?}");
                // Matches a direct, unpadded computation.
                let mut ids = vec![0];
                ids.extend(e.passage_ids(t).expect("ids"));
                ids.push(2);
                let want = normalized(direct(&e, &ids));
                assert!(
                    cos(&want, v) > 0.99999,
                    "{pooling:?} {t:?}: {}",
                    cos(&want, v)
                );
            }
            let q = e.embed_query("ab").expect("query");
            let mut ids = vec![0];
            ids.extend(e.query_ids("ab").expect("ids"));
            ids.push(2);
            assert_eq!(ids, vec![0, 9, 10, 7, 2]);
            assert!(cos(&normalized(direct(&e, &ids)), &q) > 0.99999);
        }
    }

    #[test]
    fn long_input_is_windowed() {
        // max length 8 => 6 content tokens per window.
        let e = tiny_embedder(Pooling::Mean, 8);
        assert_eq!(e.max_content_tokens(), 6);
        let text = "ab c ab c ab c ab c ab c"; // passage prefix adds 2 tokens
        let content = e.passage_ids(text).expect("ids");
        assert!(content.len() > 12, "{}", content.len());
        let got = e.embed_passages(&[text]).expect("embed");
        let mut want = vec![0f32; e.dim];
        let mut total = 0f32;
        for chunk in content.chunks(6) {
            let mut ids = vec![0];
            ids.extend_from_slice(chunk);
            ids.push(2);
            let m = direct(&e, &ids);
            for (w, x) in want.iter_mut().zip(m) {
                *w += chunk.len() as f32 * x;
            }
            total += chunk.len() as f32;
        }
        let want = normalized(want.into_iter().map(|x| x / total).collect());
        assert!(cos(&want, &got[0]) > 0.99999, "{}", cos(&want, &got[0]));
    }

    #[test]
    fn missing_or_corrupt_folder_is_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let files = ModelFiles::in_dir(tmp.path());
        let err = Embedder::load(&files, &ModelProfile::e5_small(), LoadOptions::default())
            .err()
            .expect("missing");
        assert!(err.to_string().contains("config.json"), "{err}");
        let cfg = serde_json::json!({
            "vocab_size": 16, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
            "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.5,
            "layer_norm_eps": 1e-12, "pad_token_id": 1, "classifier_dropout": null, "model_type": "bert"
        });
        std::fs::write(&files.config, cfg.to_string()).expect("cfg");
        std::fs::write(&files.weights, b"\x10\0\0\0\0\0\0\0{}").expect("w");
        let err = Embedder::load(&files, &ModelProfile::e5_small(), LoadOptions::default())
            .err()
            .expect("corrupt");
        assert!(
            matches!(err, EmbedError::InvalidModelFolder { .. }),
            "{err}"
        );
        // Wrong shapes: a tensor of the wrong size under the right name.
        let t = Tensor::zeros((3, 5), DType::F32, &Device::Cpu).expect("t");
        let mut map = std::collections::HashMap::new();
        map.insert("embeddings.word_embeddings.weight".to_string(), t);
        candle_core::safetensors::save(&map, &files.weights).expect("save");
        let err = Embedder::load(&files, &ModelProfile::e5_small(), LoadOptions::default())
            .err()
            .expect("shape");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_an_error() {
        assert!(DeviceChoice::Cuda.device().is_err());
        assert!(DeviceChoice::Auto.device().is_ok());
    }
}
