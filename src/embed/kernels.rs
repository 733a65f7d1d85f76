//! Which kernel family runs the CPU encoder's linear layers, per input shape: chosen by
//! measurement when the model loads, not by assumption about the processor.
//!
//! At load with `--kernel auto` (the default is f32 until int8 meets the issue's accuracy bar, see
//! [`KernelRequest`]) the encoder runs a fixed probe, a short query and
//! a passage-length batch, with f32 and with each int8 kernel this processor supports,
//! checks every int8 output against f32's (cosine ≥ [`MIN_PROBE_COSINE`] for every
//! embedding), and takes for each shape the fastest kernel that passed (f32 when none beats
//! it). The outcome is cached in the model folder (`kernels.json`), per processor model,
//! feature set, binary and model, so later loads skip the probe.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::int8::Isa;

/// Lowest cosine between an int8 kernel's embedding and f32's on the probe for the kernel
/// to be used (the issue's bar; the reference test holds f32 to the same 0.999 against
/// the model's published embeddings).
pub const MIN_PROBE_COSINE: f32 = 0.999;

/// The probe's query: a short staff question (not one of the evaluation sets').
pub(crate) const PROBE_QUERY: &str = "大模型在城市交通调度中能做什么？";

/// The probe's passages: two report-style paragraphs, 99 tokens together (with their
/// special tokens), just over [`super::fast::SMALL_M_ROWS`] so the batch takes the batch
/// path while two rounds of the whole probe stay within [`PROBE_BUDGET_MS`] (the batch is
/// most of a round: with 117 tokens and three rounds the probe took 340–390 ms on the
/// 2-core AMD EPYC, with 99 and two 187–218 ms).
pub(crate) const PROBE_PASSAGES: [&str; 2] = [
    "随着算力成本下降和开源模型生态成熟，越来越多的企业开始把大模型部署在自己的数据中心里，\
     在数据安全、响应时延和长期成本上更可控，但也对运维团队提出了更高要求，包括模型压缩、推理加速和权限管理。",
    "In 2024 the number of public tenders for large-model projects grew; most buyers \
     were government agencies, energy companies and banks.",
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
    /// f32 for every shape (the encoder as before int8 kernels existed). The default: with
    /// int8 the dev sets move by more than the issue's 0.005 (a question or two changes rank)
    /// and an English answer test question sitting 0.0009 above the answer gate's threshold
    /// falls below it (issue #19).
    #[default]
    F32,
    /// The best int8 kernel this processor supports for every shape, unmeasured.
    Int8,
    /// Exactly this plan (benchmarks and tests); its kernels must be supported.
    Plan(KernelPlan),
}

/// How much faster than f32 an int8 kernel must be on a probe shape to be chosen: its best
/// time at most this fraction of f32's. Int8 embeddings differ from f32's (cosine ≥
/// [`MIN_PROBE_COSINE`], not 1), so a kernel that is only about as fast is not worth it,
/// and a near tie says little on a busy machine: on the 2-core Xeon (AVX-512 VNNI), with
/// another embedding job running, three loads in a row measured int8-avx512vnni at
/// 0.47–0.58× f32 on the query and 0.50–0.66× on the batch, its best batch time moving by
/// up to 30% between loads. A 10% margin never turns such a win away, and keeps f32 where
/// int8 only ties (the issue allows the selected path at most 2% slower than f32).
/// Within the margin f32 stays and the result is not cached, so the next load measures again.
pub const INT8_WIN_RATIO: f64 = 0.9;

/// Largest spread between a kernel's two best probe times on a shape (`second / best − 1`)
/// for the measurement to count as quiet. Beyond it the machine was visibly busy during the
/// probe: the choice stands for this process but is not cached. 0.25 is well above the
/// spread of a quiet machine (a few percent) and below what another process taking a core
/// for part of a run causes.
pub const MAX_PROBE_SPREAD: f64 = 0.25;

/// Timed rounds of the probe: at least this many (each kernel's best of them counts). Two
/// give every compared kernel a warm time and a spread ([`MAX_PROBE_SPREAD`]): the untimed
/// warm-up query before round one takes the cold start (thread pool, allocator) that made
/// the first round's query times 67–93% slower on the busy Xeon, and a probe that is still
/// noisy is not cached, so the next load measures again.
pub const MIN_PROBE_ROUNDS: usize = 2;

/// Timed rounds of the probe: at most this many.
pub const MAX_PROBE_ROUNDS: usize = 5;

/// The issue's budget for the whole probe, in milliseconds (about 200 ms): after
/// [`MIN_PROBE_ROUNDS`], a further round starts only when the last round's time says it
/// ends within the budget. The first round times every candidate; later rounds only f32
/// and the fastest int8 kernel per shape.
pub const PROBE_BUDGET_MS: f64 = 200.0;

/// One kernel's probe result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeMeasurement {
    /// Kernel name ([`Kernel::name`]).
    pub kernel: String,
    /// Best time of the probe query, in milliseconds.
    pub query_ms: f64,
    /// Best time of the probe batch, in milliseconds.
    pub batch_ms: f64,
    /// Lowest cosine of its embeddings against f32's (1 for f32).
    pub min_cosine: f32,
    /// Spread of its two best query times (`second / best − 1`; 0 with one time).
    #[serde(default)]
    pub query_spread: f64,
    /// Spread of its two best batch times.
    #[serde(default)]
    pub batch_spread: f64,
}

impl ProbeMeasurement {
    /// The measurement of `kernel` from its times per shape (in any order) and its check.
    pub fn from_times(kernel: Kernel, query_ms: &[f64], batch_ms: &[f64], min_cosine: f32) -> Self {
        let best_two = |times: &[f64]| {
            let mut t = times.to_vec();
            t.sort_by(f64::total_cmp);
            let best = t.first().copied().unwrap_or(f64::INFINITY);
            let spread = t.get(1).map_or(0.0, |second| second / best - 1.0);
            (best, spread)
        };
        let (query_ms, query_spread) = best_two(query_ms);
        let (batch_ms, batch_spread) = best_two(batch_ms);
        ProbeMeasurement {
            kernel: kernel.name().into(),
            query_ms,
            batch_ms,
            min_cosine,
            query_spread,
            batch_spread,
        }
    }

    /// Whether its outputs are close enough to f32's.
    pub fn passes(&self) -> bool {
        self.min_cosine >= MIN_PROBE_COSINE
    }
}

/// The kernels chosen from a probe, and whether the measurement may be cached.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The kernel per shape.
    pub plan: KernelPlan,
    /// Why the measurement is not cached (a near tie, a noisy probe), if it is not.
    pub uncached: Option<String>,
}

/// The shapes of a probe.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Query,
    Batch,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Query => "query",
            Shape::Batch => "batch",
        }
    }

    fn time(self, m: &ProbeMeasurement) -> f64 {
        match self {
            Shape::Query => m.query_ms,
            Shape::Batch => m.batch_ms,
        }
    }

    fn spread(self, m: &ProbeMeasurement) -> f64 {
        match self {
            Shape::Query => m.query_spread,
            Shape::Batch => m.batch_spread,
        }
    }
}

/// The plan the measurements call for: per shape the fastest int8 kernel that passed the
/// check when it needs at most [`INT8_WIN_RATIO`] of f32's time, else f32; not to be cached
/// when a shape was a near tie (within the margin either way) or the compared kernels' times
/// spread more than [`MAX_PROBE_SPREAD`]. `measured` must include f32 (without it: f32,
/// uncached).
pub fn decide(measured: &[ProbeMeasurement]) -> Decision {
    let Some(f32m) = measured.iter().find(|m| m.kernel == Kernel::F32.name()) else {
        return Decision {
            plan: KernelPlan::uniform(Kernel::F32),
            uncached: Some("no f32 measurement".into()),
        };
    };
    let mut doubts = Vec::new();
    let mut pick = |shape: Shape| {
        let base = shape.time(f32m);
        let Some(best) = measured
            .iter()
            .filter(|m| m.kernel != f32m.kernel && m.passes())
            .filter(|m| Kernel::from_name(&m.kernel).is_some())
            .min_by(|a, b| shape.time(a).total_cmp(&shape.time(b)))
        else {
            return Kernel::F32;
        };
        let ratio = shape.time(best) / base;
        let noisy = [f32m, best]
            .into_iter()
            .filter(|m| shape.spread(m) > MAX_PROBE_SPREAD)
            .map(|m| {
                format!(
                    "{} {} times spread {:.0}%",
                    m.kernel,
                    shape.name(),
                    100.0 * shape.spread(m)
                )
            })
            .collect::<Vec<_>>();
        doubts.extend(noisy);
        if ratio.is_nan() || ratio > 1.0 / INT8_WIN_RATIO {
            Kernel::F32
        } else if ratio > INT8_WIN_RATIO {
            doubts.push(format!(
                "{} near tie ({} {:.2}× f32)",
                shape.name(),
                best.kernel,
                ratio
            ));
            Kernel::F32
        } else {
            Kernel::from_name(&best.kernel).unwrap_or(Kernel::F32)
        }
    };
    let plan = KernelPlan {
        query: pick(Shape::Query),
        batch: pick(Shape::Batch),
    };
    Decision {
        plan,
        uncached: (!doubts.is_empty()).then(|| doubts.join(", ")),
    }
}

/// The plan of a measurement ([`decide`]'s, whether cacheable or not).
pub fn choose(measured: &[ProbeMeasurement]) -> KernelPlan {
    decide(measured).plan
}

/// One line for the log: `query=int8-avx512vnni batch=f32 (measured: f32 query 8.1 ms …)`.
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
        ProbeMeasurement::from_times(kernel, &[query_ms], &[batch_ms], min_cosine)
    }

    const VNNI: Kernel = Kernel::Int8(Isa::Avx512Vnni);
    const AVX2: Kernel = Kernel::Int8(Isa::Avx2);

    #[test]
    fn fastest_passing_kernel_per_shape() {
        let decision = decide(&[
            m(Kernel::F32, 10.0, 50.0, 1.0),
            m(VNNI, 4.0, 60.0, 0.9995),
            m(AVX2, 3.0, 20.0, 0.99),
        ]);
        // avx2 is fastest but fails the check; vnni wins queries and loses batches to f32
        // by more than the margin, so both shapes are clear and the result is cached.
        assert_eq!(
            decision,
            Decision {
                plan: KernelPlan {
                    query: VNNI,
                    batch: Kernel::F32
                },
                uncached: None
            }
        );
        assert_eq!(choose(&[]), KernelPlan::uniform(Kernel::F32));
        assert!(decide(&[]).uncached.is_some(), "no f32 measurement");
    }

    #[test]
    fn near_ties_keep_f32_and_are_not_cached() {
        // 0.95× f32 is faster, but within the margin: f32, measured again next load.
        let d = decide(&[m(Kernel::F32, 10.0, 50.0, 1.0), m(VNNI, 9.5, 20.0, 1.0)]);
        assert_eq!(
            d.plan,
            KernelPlan {
                query: Kernel::F32,
                batch: VNNI
            }
        );
        assert!(
            d.uncached.as_deref().unwrap().contains("query near tie"),
            "{d:?}"
        );
        // Exactly at the margin wins.
        let d = decide(&[
            m(Kernel::F32, 10.0, 50.0, 1.0),
            m(VNNI, 10.0 * INT8_WIN_RATIO, 50.0 * INT8_WIN_RATIO, 1.0),
        ]);
        assert_eq!(
            d,
            Decision {
                plan: KernelPlan::uniform(VNNI),
                uncached: None
            }
        );
        // Slightly slower than f32: still a tie.
        let d = decide(&[m(Kernel::F32, 10.0, 50.0, 1.0), m(VNNI, 5.0, 52.0, 1.0)]);
        assert_eq!(d.plan.batch, Kernel::F32);
        assert!(d.uncached.is_some());
        // Clearly slower: f32, cached.
        let d = decide(&[m(Kernel::F32, 10.0, 50.0, 1.0), m(VNNI, 5.0, 80.0, 1.0)]);
        assert_eq!(
            d,
            Decision {
                plan: KernelPlan {
                    query: VNNI,
                    batch: Kernel::F32
                },
                uncached: None
            }
        );
        // A kernel failing the check never wins, however fast.
        let d = decide(&[m(Kernel::F32, 10.0, 50.0, 1.0), m(VNNI, 1.0, 1.0, 0.998)]);
        assert_eq!(
            d,
            Decision {
                plan: KernelPlan::uniform(Kernel::F32),
                uncached: None
            }
        );
    }

    #[test]
    fn noisy_probes_decide_but_are_not_cached() {
        let quiet =
            ProbeMeasurement::from_times(Kernel::F32, &[10.5, 10.0, 10.2], &[50.0, 51.0], 1.0);
        assert_eq!(quiet.query_ms, 10.0, "best time counts");
        assert!((quiet.query_spread - 0.02).abs() < 1e-9, "{quiet:?}");
        let noisy = ProbeMeasurement::from_times(VNNI, &[4.0, 9.0, 6.0], &[20.0, 21.0], 1.0);
        assert!((noisy.query_spread - 0.5).abs() < 1e-9, "{noisy:?}");
        let d = decide(&[quiet.clone(), noisy]);
        assert_eq!(d.plan, KernelPlan::uniform(VNNI));
        assert!(
            d.uncached.as_deref().unwrap().contains("spread 50%"),
            "{d:?}"
        );
        // Noise in a kernel that was not compared (a slower int8 one) does not matter.
        let slow_noisy = ProbeMeasurement::from_times(AVX2, &[8.0, 20.0], &[40.0, 90.0], 1.0);
        let d = decide(&[quiet, m(VNNI, 4.0, 20.0, 1.0), slow_noisy]);
        assert_eq!(
            d,
            Decision {
                plan: KernelPlan::uniform(VNNI),
                uncached: None
            }
        );
    }

    #[test]
    fn older_cache_entries_without_spreads_still_read() {
        let old = r#"{"kernel": "f32", "query_ms": 2.0, "batch_ms": 3.0, "min_cosine": 1.0}"#;
        let m: ProbeMeasurement = serde_json::from_str(old).expect("reads");
        assert_eq!(m.query_spread, 0.0);
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
