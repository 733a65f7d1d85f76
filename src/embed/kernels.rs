//! Which kernel family runs the CPU encoder's linear layers, per input shape: chosen by
//! measurement when the model loads, not by assumption about the processor.
//!
//! At load (`--kernel auto`, the default) the encoder runs a fixed probe, a short query and
//! a passage-length batch, with f32 and with each int8 kernel this processor supports,
//! checks every int8 output against f32's (cosine ≥ [`MIN_PROBE_COSINE`] for every
//! embedding), and takes for each shape the fastest kernel that passed (f32 when none beats
//! it). The outcome is cached in the model folder (`kernels.json`), per processor model,
//! feature set, binary and model, so later loads skip the probe.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::int8::Isa;

/// Lowest cosine between an int8 kernel's embedding and f32's on the probe for the kernel
/// to be used (the bar; the reference test holds f32 to the same 0.999 against
/// the model's published embeddings).
pub const MIN_PROBE_COSINE: f32 = 0.999;

/// The probe's query: a short staff question (not one of the evaluation sets').
pub(crate) const PROBE_QUERY: &str = "大模型在城市交通调度中能做什么？";

/// The probe's passages: two report-style paragraphs, about 120 tokens together, so the
/// batch has more rows than [`super::fast::SMALL_M_ROWS`] and takes the batch path while the
/// whole probe stays near 200 ms.
pub(crate) const PROBE_PASSAGES: [&str; 2] = [
    "随着算力成本下降和开源模型生态成熟，越来越多的企业开始把大模型部署在自己的数据中心里，\
     在数据安全、响应时延和长期成本上更可控，但也对运维团队提出了更高要求，包括模型压缩、推理加速和权限管理。",
    "In 2024 the number of public tenders for large-model projects grew quickly; most buyers \
     were government agencies, energy companies and banks, and a typical project combined a \
     knowledge base with retrieval over internal documents.",
];

/// Name of the cache file in the model folder.
pub const CACHE_FILE: &str = "kernels.json";

/// Probe measurements kept in the cache file (older ones, e.g. of previous binaries, are
/// dropped beyond this).
const CACHE_ENTRIES: usize = 16;

/// A family of kernels for the encoder's linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// f32 weights: the register-blocked panel kernel for few rows, gemm for many.
    F32,
    /// Our int8 kernel for an instruction set (see [`super::int8`]).
    Int8(Isa),
    /// candle's quantized matmul with `Q8_0` weights (for comparison in `wenda bench`).
    CandleQ8,
}

impl Kernel {
    /// Name in logs, `wenda bench` and the cache.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::F32 => "f32",
            Kernel::Int8(isa) => isa.name(),
            Kernel::CandleQ8 => "q8_0-candle",
        }
    }

    /// The kernel of that name.
    pub fn from_name(name: &str) -> Option<Kernel> {
        [Kernel::F32, Kernel::CandleQ8]
            .into_iter()
            .chain(Isa::ALL.map(Kernel::Int8))
            .find(|k| k.name() == name)
    }

    /// Whether this processor can run it.
    pub fn supported(self) -> bool {
        match self {
            Kernel::Int8(isa) => isa.supported(),
            Kernel::F32 | Kernel::CandleQ8 => true,
        }
    }

    /// Every kernel this processor can run, f32 first.
    pub fn available() -> Vec<Kernel> {
        [Kernel::F32]
            .into_iter()
            .chain(Isa::ALL.map(Kernel::Int8))
            .chain([Kernel::CandleQ8])
            .filter(|k| k.supported())
            .collect()
    }

    /// The int8 kernels the load-time probe times: the SIMD ones this processor has, or the
    /// scalar one where it has none (the scalar kernel is the tests' reference; next to a
    /// SIMD kernel it can only lose).
    pub fn probe_candidates() -> Vec<Kernel> {
        let simd: Vec<Kernel> = Isa::ALL
            .into_iter()
            .filter(|i| *i != Isa::Scalar && i.supported())
            .map(Kernel::Int8)
            .collect();
        if simd.is_empty() {
            vec![Kernel::Int8(Isa::Scalar)]
        } else {
            simd
        }
    }

    /// The int8 kernel `--kernel int8` uses: the first supported in [`Isa::ALL`] order.
    pub fn best_int8() -> Kernel {
        Kernel::Int8(
            Isa::ALL
                .into_iter()
                .find(|i| i.supported())
                .unwrap_or(Isa::Scalar),
        )
    }
}

/// The kernel for each input shape of a forward pass: at most
/// [`super::fast::SMALL_M_ROWS`] tokens (a query, a few queries) or more (a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelPlan {
    /// Few-row inputs.
    pub query: Kernel,
    /// Many-row inputs.
    pub batch: Kernel,
}

impl KernelPlan {
    /// The same kernel for both shapes.
    pub fn uniform(kernel: Kernel) -> Self {
        KernelPlan {
            query: kernel,
            batch: kernel,
        }
    }

    /// The plan's kernels (query first).
    pub fn kernels(self) -> [Kernel; 2] {
        [self.query, self.batch]
    }
}

/// What the user asked for with `--kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelRequest {
    /// Measure at load (or reuse the cached measurement) and take the fastest that passes.
    Auto,
    /// f32 for every shape (the encoder as before int8 kernels existed); the default until
    /// the load-time probe is robust on a busy machine (issue #19).
    #[default]
    F32,
    /// The best int8 kernel this processor supports for every shape, unmeasured.
    Int8,
    /// Exactly this plan (benchmarks and tests); its kernels must be supported.
    Plan(KernelPlan),
}

/// One kernel's probe result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeMeasurement {
    /// Kernel name ([`Kernel::name`]).
    pub kernel: String,
    /// Best time of the probe query, in milliseconds.
    pub query_ms: f64,
    /// Time of the probe batch, in milliseconds.
    pub batch_ms: f64,
    /// Lowest cosine of its embeddings against f32's (1 for f32).
    pub min_cosine: f32,
}

impl ProbeMeasurement {
    /// Whether its outputs are close enough to f32's.
    pub fn passes(&self) -> bool {
        self.min_cosine >= MIN_PROBE_COSINE
    }
}

/// The plan the measurements call for: per shape the fastest kernel that passed the check,
/// f32 unless another beats it. `measured` must include f32.
pub fn choose(measured: &[ProbeMeasurement]) -> KernelPlan {
    let best = |time: fn(&ProbeMeasurement) -> f64| {
        let f32_time = measured
            .iter()
            .find(|m| m.kernel == Kernel::F32.name())
            .map_or(f64::INFINITY, time);
        measured
            .iter()
            .filter(|m| m.passes() && time(m) < f32_time)
            .min_by(|a, b| time(a).total_cmp(&time(b)))
            .and_then(|m| Kernel::from_name(&m.kernel))
            .unwrap_or(Kernel::F32)
    };
    KernelPlan {
        query: best(|m| m.query_ms),
        batch: best(|m| m.batch_ms),
    }
}

/// One line for the log: `query=int8-avx512vnni batch=f32 (measured f32 8.1/52.3 ms, …)`.
pub fn describe(plan: KernelPlan, measured: &[ProbeMeasurement], cached: bool) -> String {
    let figures: Vec<String> = measured
        .iter()
        .map(|m| {
            format!(
                "{} query {:.1} ms batch {:.1} ms cos {:.5}",
                m.kernel, m.query_ms, m.batch_ms, m.min_cosine
            )
        })
        .collect();
    format!(
        "query={} batch={} ({} {})",
        plan.query.name(),
        plan.batch.name(),
        if cached {
            "cached measurement:"
        } else {
            "measured:"
        },
        figures.join("; ")
    )
}

/// What a cached measurement is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeKey {
    /// The processor's model name (`/proc/cpuinfo`), or the architecture elsewhere.
    pub cpu: String,
    /// The kernels this processor supports.
    pub kernels: Vec<String>,
    /// The running binary: path, size and modification time.
    pub binary: String,
    /// The model id (name and weights hash).
    pub model: String,
}

impl ProbeKey {
    /// The key of this processor and binary for `model_id`.
    pub fn current(model_id: &str) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| {
                let meta = std::fs::metadata(&p).ok()?;
                let mtime = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some(format!(
                    "{} {} {}",
                    p.display(),
                    meta.len(),
                    mtime.as_nanos()
                ))
            })
            .unwrap_or_default();
        ProbeKey {
            cpu,
            kernels: Kernel::available()
                .into_iter()
                .map(|k| k.name().to_string())
                .collect(),
            binary,
            model: model_id.to_string(),
        }
    }
}

/// One cached probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    key: ProbeKey,
    measured: Vec<ProbeMeasurement>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    entries: Vec<CacheEntry>,
}

/// The cached measurements for `key` in `dir`, if any (an unreadable file counts as none).
pub fn cached(dir: &Path, key: &ProbeKey) -> Option<Vec<ProbeMeasurement>> {
    let text = std::fs::read_to_string(dir.join(CACHE_FILE)).ok()?;
    let file: CacheFile = serde_json::from_str(&text).ok()?;
    file.entries
        .into_iter()
        .find(|e| &e.key == key)
        .map(|e| e.measured)
        .filter(|m| {
            m.iter()
                .all(|m| Kernel::from_name(&m.kernel).is_some_and(Kernel::supported))
        })
}

/// Stores measurements for `key` in `dir` (replacing the key's old ones).
pub fn store(
    dir: &Path,
    key: &ProbeKey,
    measured: &[ProbeMeasurement],
) -> Result<(), super::EmbedError> {
    let path = dir.join(CACHE_FILE);
    let mut file: CacheFile = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    file.entries.retain(|e| &e.key != key);
    file.entries.push(CacheEntry {
        key: key.clone(),
        measured: measured.to_vec(),
    });
    let excess = file.entries.len().saturating_sub(CACHE_ENTRIES);
    file.entries.drain(..excess);
    let text = serde_json::to_string_pretty(&file).expect("cache entries serialize");
    crate::atomic_file::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kernel: Kernel, query_ms: f64, batch_ms: f64, min_cosine: f32) -> ProbeMeasurement {
        ProbeMeasurement {
            kernel: kernel.name().into(),
            query_ms,
            batch_ms,
            min_cosine,
        }
    }

    #[test]
    fn fastest_passing_kernel_per_shape() {
        let vnni = Kernel::Int8(Isa::Avx512Vnni);
        let avx2 = Kernel::Int8(Isa::Avx2);
        let plan = choose(&[
            m(Kernel::F32, 10.0, 50.0, 1.0),
            m(vnni, 4.0, 60.0, 0.9995),
            m(avx2, 3.0, 20.0, 0.99),
        ]);
        // avx2 is fastest but fails the check; vnni wins queries and loses batches to f32.
        assert_eq!(
            plan,
            KernelPlan {
                query: vnni,
                batch: Kernel::F32
            }
        );
        assert_eq!(
            choose(&[m(Kernel::F32, 1.0, 1.0, 1.0), m(vnni, 1.0, 2.0, 1.0)]),
            KernelPlan::uniform(Kernel::F32),
            "a tie keeps f32"
        );
        assert_eq!(choose(&[]), KernelPlan::uniform(Kernel::F32));
    }

    #[test]
    fn names_round_trip() {
        for k in [Kernel::F32, Kernel::CandleQ8]
            .into_iter()
            .chain(Isa::ALL.map(Kernel::Int8))
        {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
        }
        assert_eq!(Kernel::from_name("int4"), None);
        assert!(Kernel::available().contains(&Kernel::F32));
        assert!(Kernel::best_int8().supported());
        assert!(Kernel::probe_candidates().iter().all(|k| k.supported()));
    }

    #[test]
    fn cache_is_per_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = ProbeKey::current("model@1");
        assert!(cached(dir.path(), &key).is_none());
        let measured = vec![m(Kernel::F32, 2.0, 3.0, 1.0)];
        store(dir.path(), &key, &measured).expect("store");
        assert_eq!(cached(dir.path(), &key), Some(measured.clone()));
        let other = ProbeKey {
            binary: "another build".into(),
            ..key.clone()
        };
        assert!(cached(dir.path(), &other).is_none());
        store(dir.path(), &other, &[]).expect("store");
        assert_eq!(cached(dir.path(), &key), Some(measured), "kept beside");
        std::fs::write(dir.path().join(CACHE_FILE), "not json").expect("write");
        assert!(cached(dir.path(), &key).is_none());
    }
}
