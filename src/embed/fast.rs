//! A BERT encoder for the CPU with the same math as candle-transformers' `BertModel`
//! (same weight names, exact-erf GELU, post-layer-norm), written for embedding throughput
//! and single-query latency.
//!
//! Why by hand: embedding is the slowest stage of indexing and of every dense query, and
//! three things make it much faster than running `BertModel` on the CPU:
//! - sequences are packed without padding: the linear layers see only real tokens, and
//!   attention runs per sequence and head (in parallel);
//! - inputs of at most [`SMALL_M_ROWS`] rows (single queries) multiply with a
//!   register-blocked kernel over weight panels laid out at load time, where a gemm would
//!   pack the whole weight matrix on every call;
//! - GELU, softmax and layer norm are loops the compiler vectorizes (AVX2 when the processor
//!   has it), where candle evaluates `erf` one element at a time: that alone was a quarter
//!   of a query's time.
//!
//! Larger inputs use the `gemm` crate (the one candle uses) on f32 weights.
//!
//! The linear layers can also run on int8 weights ([`super::int8`]) or candle's `Q8_0`
//! ([`Kernel`]); a [`KernelPlan`] says which per input shape, and [`FastBert::retain`]
//! drops the weight formats the plan does not use, so the weights are held once. The f32
//! path computes exactly what it computed before the int8 kernels existed.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

use super::int8::Int8Linear;
use super::kernels::{Kernel, KernelPlan};

/// Inputs with at most this many rows (tokens) use the few-row panel kernel, larger ones
/// gemm. Measured on the 2-core AMD EPYC development machine (one thread, all six products
/// of a layer): the panel kernel is 15% ahead of gemm at 64–96 rows and 6–9% at 128–192,
/// so the switch sits where the kernel's lead is still clear; single queries (10–30 rows)
/// always take the kernel.
pub const SMALL_M_ROWS: usize = 96;

/// Output columns of one panel of the few-row kernel: two AVX2 registers of f32.
const PANEL: usize = 16;

/// Input rows per step of the few-row kernel: 6 rows × 2 registers = 12 accumulators, plus
/// two weight registers and one broadcast, fill 15 of the 16 AVX2 registers. Measured on
/// the development machine (15-row query, one thread, f32 panels): 6 rows 16.3 GMAC/s,
/// 5 rows 15.5, against 11.2 for the dot-product kernel this replaced.
const PANEL_ROWS: usize = 6;

/// Panels per parallel task in the few-row kernel: large enough that rayon's per-task
/// overhead (a few µs) stays small next to the work (64 columns × 384 inputs × rows).
const PANELS_PER_TASK: usize = 4;

/// Defines a function whose body is compiled twice: for AVX2 + FMA, used when the processor
/// has them, and for the baseline target. The bodies are plain loops written so that the
/// compiler vectorizes them (lane-wise accumulators instead of sequential float sums).
macro_rules! vectorized {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the processor has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// A linear layer `y = x·Wᵀ + b` with `W` stored as `[out, in]` (PyTorch layout).
struct FastLinear {
    /// Row-major `[out, in]` weights for the gemm path.
    weight: Vec<f32>,
    /// The same weights for the few-row kernel in panels of [`PANEL`] output columns,
    /// `[out / PANEL][in][PANEL]`, so that the kernel streams each panel once. Kept as f32:
    /// f16 panels halve the memory but converting them cost 17% of the kernel's time
    /// (measured, 15-row query). `None` when `out` is not a multiple of [`PANEL`].
    panels: Option<Vec<f32>>,
    bias: Vec<f32>,
    out_dim: usize,
    in_dim: usize,
}

impl FastLinear {
    fn load(vb: VarBuilder, in_dim: usize, out_dim: usize) -> candle_core::Result<Self> {
        let weight = vb
            .get((out_dim, in_dim), "weight")?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bias = vb.get(out_dim, "bias")?.to_vec1::<f32>()?;
        let panels = out_dim.is_multiple_of(PANEL).then(|| {
            let mut p = vec![0f32; out_dim * in_dim];
            for (j, row) in weight.chunks_exact(in_dim).enumerate() {
                let base = (j / PANEL) * in_dim * PANEL + j % PANEL;
                for (c, w) in row.iter().enumerate() {
                    p[base + c * PANEL] = *w;
                }
            }
            p
        });
        Ok(FastLinear {
            weight,
            panels,
            bias,
            out_dim,
            in_dim,
        })
    }

    /// `rows × out` outputs for `rows × in` inputs (row-major), on all cores when `parallel`.
    fn forward(&self, x: &[f32], rows: usize, parallel: bool) -> Vec<f32> {
        let (m, k, n) = (rows, self.in_dim, self.out_dim);
        assert_eq!(x.len(), m * k, "linear layer input of the wrong size");
        if m <= SMALL_M_ROWS
            && let Some(panels) = &self.panels
        {
            return small_linear(x, m, k, panels, n, &self.bias, parallel);
        }
        let mut y = Vec::with_capacity(m * n);
        for _ in 0..m {
            y.extend_from_slice(&self.bias);
        }
        // SAFETY: dst is m × n (row stride n), lhs is m × k (row stride k, asserted above),
        // and rhs(p, j) = weight[j·k + p] stays inside the n × k weight matrix.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                y.as_mut_ptr(),
                1,
                n as isize,
                true,
                x.as_ptr(),
                1,
                k as isize,
                self.weight.as_ptr(),
                k as isize,
                1,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                if parallel {
                    gemm::Parallelism::Rayon(0)
                } else {
                    gemm::Parallelism::None
                },
            );
        }
        y
    }
}

/// The weight formats a set of kernels needs.
#[derive(Debug, Clone, Copy, Default)]
struct Formats {
    f32: bool,
    int8: bool,
    q8: bool,
}

impl Formats {
    fn of(kernels: &[Kernel]) -> Self {
        let mut f = Formats::default();
        for k in kernels {
            match k {
                Kernel::F32 => f.f32 = true,
                Kernel::Int8(_) => f.int8 = true,
                Kernel::CandleQ8 => f.q8 = true,
            }
        }
        f
    }
}

/// One linear layer in the formats its kernels need.
struct Linear {
    /// f32 weights (row-major and panels; either emptied when the plan does not use it).
    f32: FastLinear,
    int8: Option<Int8Linear>,
    q8: Option<QMatMul>,
}

impl Linear {
    fn load(
        vb: VarBuilder,
        in_dim: usize,
        out_dim: usize,
        formats: Formats,
    ) -> candle_core::Result<Self> {
        let mut f32 = FastLinear::load(vb.clone(), in_dim, out_dim)?;
        let int8 = if formats.int8 {
            Some(
                Int8Linear::quantize(&f32.weight, &f32.bias, out_dim, in_dim).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "{}: a {out_dim} × {in_dim} layer does not fit the int8 kernels (multiples of 16 × 64)",
                        vb.prefix()
                    ))
                })?,
            )
        } else {
            None
        };
        let q8 = if formats.q8 {
            let w = Tensor::from_slice(&f32.weight, (out_dim, in_dim), &Device::Cpu)?;
            Some(QMatMul::from_qtensor(QTensor::quantize(
                &w,
                GgmlDType::Q8_0,
            )?)?)
        } else {
            None
        };
        if !formats.f32 {
            f32.weight = Vec::new();
            f32.panels = None;
        }
        Ok(Linear { f32, int8, q8 })
    }

    /// Drops the formats `plan` does not use.
    fn retain(&mut self, plan: KernelPlan) {
        let kernels = plan.kernels();
        // f32 inputs of few rows use the panels when there are any, else gemm's weights.
        let panels = plan.query == Kernel::F32 && self.f32.panels.is_some();
        let rows = plan.batch == Kernel::F32 || (plan.query == Kernel::F32 && !panels);
        if !rows {
            self.f32.weight = Vec::new();
        }
        if !panels {
            self.f32.panels = None;
        }
        if !kernels.iter().any(|k| matches!(k, Kernel::Int8(_))) {
            self.int8 = None;
        }
        if !kernels.contains(&Kernel::CandleQ8) {
            self.q8 = None;
        }
    }

    /// Bytes of weights held.
    fn bytes(&self) -> usize {
        4 * (self.f32.weight.len() + self.f32.panels.as_ref().map_or(0, Vec::len))
            + self.int8.as_ref().map_or(0, Int8Linear::bytes)
            + self
                .q8
                .as_ref()
                .map_or(0, |_| self.f32.in_dim * self.f32.out_dim * 34 / 32)
    }

    /// `rows × out` outputs for `rows × in` inputs with `kernel`, whose format must be held.
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        kernel: Kernel,
        parallel: bool,
    ) -> candle_core::Result<Vec<f32>> {
        let missing =
            || candle_core::Error::Msg(format!("{} weights were not loaded", kernel.name()));
        match kernel {
            Kernel::F32 => {
                if self.f32.weight.is_empty() && (rows > SMALL_M_ROWS || self.f32.panels.is_none())
                {
                    return Err(missing());
                }
                Ok(self.f32.forward(x, rows, parallel))
            }
            Kernel::Int8(isa) => {
                if !isa.supported() {
                    candle_core::bail!("{}: {}", isa.name(), isa.missing());
                }
                let layer = self.int8.as_ref().ok_or_else(missing)?;
                Ok(layer.forward(isa, x, rows, parallel))
            }
            Kernel::CandleQ8 => {
                let q8 = self.q8.as_ref().ok_or_else(missing)?;
                let t = Tensor::from_slice(x, (rows, self.f32.in_dim), &Device::Cpu)?;
                let mut y = q8.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                for row in y.chunks_exact_mut(self.f32.out_dim) {
                    row.iter_mut()
                        .zip(&self.f32.bias)
                        .for_each(|(a, b)| *a += b);
                }
                Ok(y)
            }
        }
    }
}

/// `y[m, n] = x[m, k] · Wᵀ + b[n]` for few rows, with `W` in panels (see
/// [`FastLinear::panels`]); parallel over groups of panels when `parallel`.
fn small_linear(
    x: &[f32],
    m: usize,
    k: usize,
    panels: &[f32],
    n: usize,
    b: &[f32],
    parallel: bool,
) -> Vec<f32> {
    // yt holds each panel's m × PANEL block contiguously so that tasks write disjoint ranges.
    let mut yt = vec![0f32; n * m];
    let task = |(t, out): (usize, &mut [f32])| {
        let first = t * PANELS_PER_TASK;
        let count = out.len() / (m * PANEL);
        let w = &panels[first * k * PANEL..(first + count) * k * PANEL];
        panel_block(x, m, k, w, count, out);
    };
    let chunk = PANELS_PER_TASK * m * PANEL;
    if parallel {
        yt.par_chunks_mut(chunk).enumerate().for_each(task);
    } else {
        yt.chunks_mut(chunk).enumerate().for_each(task);
    }
    let mut y = vec![0f32; m * n];
    for (p, block) in yt.chunks_exact(m * PANEL).enumerate() {
        for (i, row) in block.chunks_exact(PANEL).enumerate() {
            let out = &mut y[i * n + p * PANEL..i * n + (p + 1) * PANEL];
            for ((o, v), bias) in out.iter_mut().zip(row).zip(&b[p * PANEL..]) {
                *o = v + bias;
            }
        }
    }
    y
}

/// `out[p][i][c] = Σ_q x[i][q] · w[p][q][c]` for `count` panels of `w` (`[count][k][PANEL]`),
/// `i < m`, `c < PANEL`.
fn panel_block(x: &[f32], m: usize, k: usize, w: &[f32], count: usize, out: &mut [f32]) {
    assert!(x.len() >= m * k && w.len() >= count * k * PANEL && out.len() >= count * m * PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected at run time and the slice lengths were
            // asserted above.
            unsafe { panel_block_avx2(x, m, k, w, count, out) };
            return;
        }
    }
    for p in 0..count {
        let wp = &w[p * k * PANEL..(p + 1) * k * PANEL];
        for i in 0..m {
            let mut acc = [0f32; PANEL];
            for (q, xv) in x[i * k..(i + 1) * k].iter().enumerate() {
                for (a, wv) in acc.iter_mut().zip(&wp[q * PANEL..(q + 1) * PANEL]) {
                    *a += xv * wv;
                }
            }
            out[(p * m + i) * PANEL..(p * m + i + 1) * PANEL].copy_from_slice(&acc);
        }
    }
}

/// The AVX2 part of [`panel_block`]: each panel is multiplied with groups of
/// [`PANEL_ROWS`] rows, and the rows left over with a kernel of exactly their count.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_block_avx2(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    count: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller asserted x ≥ m·k, w ≥ count·k·PANEL, out ≥ count·m·PANEL; each
    // tile reads rows i..i + R < m of x and writes rows i..i + R of the panel's output.
    unsafe {
        for p in 0..count {
            let pw = w.as_ptr().add(p * k * PANEL);
            let xp = x.as_ptr();
            let op = out.as_mut_ptr().add(p * m * PANEL);
            let mut i = 0;
            while i < m {
                let (xi, oi) = (xp.add(i * k), op.add(i * PANEL));
                let rows = (m - i).min(PANEL_ROWS);
                match rows {
                    6 => panel_tile::<6>(xi, k, pw, oi),
                    5 => panel_tile::<5>(xi, k, pw, oi),
                    4 => panel_tile::<4>(xi, k, pw, oi),
                    3 => panel_tile::<3>(xi, k, pw, oi),
                    2 => panel_tile::<2>(xi, k, pw, oi),
                    _ => panel_tile::<1>(xi, k, pw, oi),
                }
                i += rows;
            }
        }
    }
}

/// The microkernel: `R` rows × 16 columns of accumulators, updated by outer products of
/// broadcast inputs and one weight row of the panel. `x` points at `R` rows of `k` inputs,
/// `w` at a `k × PANEL` panel, `out` at `R × PANEL` outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_tile<const R: usize>(x: *const f32, k: usize, w: *const f32, out: *mut f32) {
    use std::arch::x86_64::*;
    // SAFETY: guaranteed by the caller (see panel_block_avx2).
    unsafe {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        for q in 0..k {
            let w0 = _mm256_loadu_ps(w.add(q * PANEL));
            let w1 = _mm256_loadu_ps(w.add(q * PANEL + 8));
            for r in 0..R {
                let xv = _mm256_broadcast_ss(&*x.add(r * k + q));
                lo[r] = _mm256_fmadd_ps(xv, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(xv, w1, hi[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(out.add(r * PANEL), lo[r]);
            _mm256_storeu_ps(out.add(r * PANEL + 8), hi[r]);
        }
    }
}

/// Lane-wise sum of a slice: eight partial sums so the loop vectorizes.
#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `exp(x)` to about one ulp for `x ≤ 88` (Cephes `expf`: `2ⁿ · eʳ` with a degree-6
/// polynomial), branch-free so that loops over it vectorize.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer by the 1.5·2²³ trick (no rounding call).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.0e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// `erf(x)` in f32 as Eigen and XLA compute it: `x·P(x²)/Q(x²)` on `[-4, 4]` (±1 beyond, as
/// in f32), a few ulp from the true value.
#[inline(always)]
fn erf_approx(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

vectorized! {
    /// Exact (erf) GELU in place: `x · (1 + erf(x/√2)) / 2`.
    fn gelu_erf(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf_approx(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

vectorized! {
    /// Tanh-approximated GELU in place (`hidden_act: gelu_new`), as candle's `gelu`.
    fn gelu_tanh(x: &mut [f32]) {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        for v in x.iter_mut() {
            let u = SQRT_2_OVER_PI * (*v + 0.044_715 * *v * *v * *v);
            // tanh(u) = 1 − 2 / (e^{2u} + 1)
            let t = 1.0 - 2.0 / (exp_approx(2.0 * u) + 1.0);
            *v = 0.5 * *v * (1.0 + t);
        }
    }
}

vectorized! {
    /// `x ← LayerNorm(x + residual)` row by row (`residual` may be empty: no addition).
    fn add_layer_norm(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let h = gamma.len();
        for (r, row) in x.chunks_exact_mut(h).enumerate() {
            if !residual.is_empty() {
                for (a, b) in row.iter_mut().zip(&residual[r * h..(r + 1) * h]) {
                    *a += b;
                }
            }
            let mean = sum_lanes(row) / h as f32;
            for a in row.iter_mut() {
                *a -= mean;
            }
            let mut sq = [0f32; 8];
            let mut chunks = row.chunks_exact(8);
            for c in &mut chunks {
                for l in 0..8 {
                    sq[l] += c[l] * c[l];
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|a| a * a).sum();
            let var = (sq.iter().sum::<f32>() + tail) / h as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((a, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *a = *a * inv * g + b;
            }
        }
    }
}

/// Where one head of one packed sequence sits in the `tokens × hidden` matrices.
#[derive(Clone, Copy)]
struct HeadSlice {
    /// First row (token) of the sequence.
    start: usize,
    /// Rows of the sequence.
    len: usize,
    /// First column of the head.
    col: usize,
}

vectorized! {
    /// Softmax of each `width`-long row of `x`, in place.
    fn softmax_rows(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let mut mx = [f32::MIN; 8];
            let mut chunks = row.chunks_exact(8);
            for c in &mut chunks {
                for l in 0..8 {
                    mx[l] = mx[l].max(c[l]);
                }
            }
            let max = chunks
                .remainder()
                .iter()
                .chain(&mx)
                .fold(f32::MIN, |a, b| a.max(*b));
            for v in row.iter_mut() {
                *v = exp_approx(*v - max);
            }
            let inv = 1.0 / sum_lanes(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// Scaled dot-product attention of one head of one sequence: the `len × head_dim` context.
/// The two products run through gemm on strided views of the packed `q`, `k`, `v`.
fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    hidden: usize,
    head_dim: usize,
    at: HeadSlice,
    scale: f32,
) -> Vec<f32> {
    let (len, d) = (at.len, head_dim);
    let base = at.start * hidden + at.col;
    let end = base + (len.max(1) - 1) * hidden + d;
    assert!(at.col + d <= hidden && end <= q.len() && end <= k.len() && end <= v.len());
    let mut scores = vec![0f32; len * len];
    let mut out = vec![0f32; len * d];
    // SAFETY: lhs(i, c) = q[base + i·hidden + c], rhs(c, j) = k[base + j·hidden + c] and
    // rhs(j, c) = v[base + j·hidden + c] for i, j < len and c < d stay below `end`
    // (asserted); dst are the len × len and len × d buffers just allocated.
    unsafe {
        gemm::gemm(
            len,
            len,
            d,
            scores.as_mut_ptr(),
            1,
            len as isize,
            false,
            q.as_ptr().add(base),
            1,
            hidden as isize,
            k.as_ptr().add(base),
            hidden as isize,
            1,
            0.0f32,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    softmax_rows(&mut scores, len);
    // SAFETY: as above.
    unsafe {
        gemm::gemm(
            len,
            d,
            len,
            out.as_mut_ptr(),
            1,
            d as isize,
            false,
            scores.as_ptr(),
            1,
            len as isize,
            v.as_ptr().add(base),
            1,
            hidden as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

struct Layer {
    qkv: [Linear; 3],
    attn_out: Linear,
    attn_ln: Norm,
    inter: Linear,
    out: Linear,
    out_ln: Norm,
}

impl Layer {
    fn linears_mut(&mut self) -> [&mut Linear; 6] {
        let [q, k, v] = &mut self.qkv;
        [q, k, v, &mut self.attn_out, &mut self.inter, &mut self.out]
    }

    fn linears(&self) -> [&Linear; 6] {
        let [q, k, v] = &self.qkv;
        [q, k, v, &self.attn_out, &self.inter, &self.out]
    }
}

/// Where the vocabulary table's f16 rows are.
enum TableRows {
    /// In memory: a table built in memory (tests) or not stored as f16 in the file.
    Owned(Vec<half::f16>),
    /// Mapped from the model file at `offset` (little-endian f16): only the pages of rows
    /// that are looked up become resident, and the system can drop them again at no cost.
    Mapped {
        /// The whole model file, mapped read-only.
        map: memmap2::Mmap,
        /// Byte offset of row 0 in the file.
        offset: usize,
    },
}

/// The vocabulary table, one f16 row per token (exact for f16 checkpoints such as the
/// converted e5), by far the largest tensor of the model (250,037 × 384 for e5, 192 MB).
/// Rows are looked up, never multiplied, so it stays in the file's format: widened to f32
/// row by row for the f32 and candle kernels, and for the int8 kernels quantized row by
/// row to int8 with a scale per row (the same values as a table quantized at load, without
/// holding one).
struct VocabularyTable {
    rows: TableRows,
    dim: usize,
}

impl VocabularyTable {
    /// The `[vocab, dim]` table of a loaded tensor, converted to f16 and held in memory.
    fn owned(table: &Tensor) -> candle_core::Result<Self> {
        let (_, dim) = table.dims2()?;
        let rows = table
            .to_dtype(DType::F16)?
            .flatten_all()?
            .to_vec1::<half::f16>()?;
        Ok(VocabularyTable {
            rows: TableRows::Owned(rows),
            dim,
        })
    }

    /// The table `name` of the safetensors file `path`, mapped, when it is stored there as
    /// f16 of shape `[vocab, dim]`; `None` otherwise (the caller loads it into memory).
    fn mapped(path: &std::path::Path, name: &str, vocab: usize, dim: usize) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the file is mapped read-only and must not be modified while the model is
        // loaded, which holds for our model folders (written once, atomically; a new model
        // replaces the file by renaming, which leaves this mapping on the old one).
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let (header, metadata) = safetensors::SafeTensors::read_metadata(&map).ok()?;
        let info = metadata.info(name)?;
        let offset = 8 + header + info.data_offsets.0;
        let len = vocab * dim * 2;
        if info.dtype != safetensors::Dtype::F16
            || info.shape != [vocab, dim]
            || info.data_offsets.1 - info.data_offsets.0 != len
            || offset + len > map.len()
        {
            return None;
        }
        // Rows are read as tokens occur, in no order: no read-ahead around them.
        let _ = map.advise(memmap2::Advice::Random);
        Some(VocabularyTable {
            rows: TableRows::Mapped { map, offset },
            dim,
        })
    }

    /// Bytes held in memory (a mapped table's rows belong to the file's pages).
    fn bytes_held(&self) -> usize {
        match &self.rows {
            TableRows::Owned(rows) => 2 * rows.len(),
            TableRows::Mapped { .. } => 0,
        }
    }

    /// Row `id` widened to f32 into `out`.
    fn row(&self, id: usize, out: &mut [f32]) {
        let d = self.dim;
        match &self.rows {
            TableRows::Owned(rows) => {
                for (o, v) in out.iter_mut().zip(&rows[id * d..(id + 1) * d]) {
                    *o = v.to_f32();
                }
            }
            TableRows::Mapped { map, offset } => {
                let bytes = &map[offset + id * d * 2..offset + (id + 1) * d * 2];
                for (o, v) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([v[0], v[1]]).to_f32();
                }
            }
        }
    }

    /// Row `id` quantized to [-127, 127] with the scale `max |v| / 127`, and widened back to
    /// f32 into `out`: the rows the int8 kernels were measured with.
    fn int8_row(&self, id: usize, out: &mut [f32]) {
        self.row(id, out);
        let max = out.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        for o in out.iter_mut() {
            let q = (*o / s).round().clamp(-127.0, 127.0) as i8;
            *o = f32::from(q) * s;
        }
    }
}

/// Layer-norm parameters.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Norm {
            gamma: vb.get(size, "weight")?.to_vec1::<f32>()?,
            beta: vb.get(size, "bias")?.to_vec1::<f32>()?,
            eps: eps as f32,
        })
    }

    /// `x ← LayerNorm(x + residual)`.
    fn apply(&self, x: &mut [f32], residual: &[f32]) {
        add_layer_norm(x, residual, &self.gamma, &self.beta, self.eps);
    }
}

/// BERT encoder (embeddings + layers) returning the last hidden states, numerically the
/// same model as candle's `BertModel` (differences of order 1e-6).
pub struct FastBert {
    /// The vocabulary table.
    word: VocabularyTable,
    /// Whether int8 kernels read the vocabulary rows quantized to int8 (see
    /// [`FastBert::retain`]); the other kernels always read them as they are.
    int8_rows: bool,
    vocab: usize,
    /// The position table as f32 rows.
    pos_rows: Vec<f32>,
    /// Token-type 0 embedding, added to every token, as f32 values.
    type0_row: Vec<f32>,
    /// The kernel per input shape.
    plan: KernelPlan,
    emb_ln: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    max_positions: usize,
    act: HiddenAct,
}

impl FastBert {
    /// Loads the weights under the standard BERT names (optionally below `bert.`) as f32,
    /// the encoder as it was before the int8 kernels.
    pub fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        Self::load_for(vb, c, &[Kernel::F32], KernelPlan::uniform(Kernel::F32))
    }

    /// Loads the weights in the formats `kernels` need (for the load-time probe, all of
    /// them), running `plan` until [`FastBert::retain`] sets another.
    pub fn load_for(
        vb: VarBuilder,
        c: &Config,
        kernels: &[Kernel],
        plan: KernelPlan,
    ) -> candle_core::Result<Self> {
        Self::load_with_table(vb, c, kernels, plan, None)
    }

    /// [`FastBert::load_for`] with the vocabulary table mapped from `weights`, the
    /// safetensors file `vb` reads, when it is stored there as f16 (else held in memory).
    pub fn load_mapped(
        vb: VarBuilder,
        c: &Config,
        kernels: &[Kernel],
        plan: KernelPlan,
        weights: &std::path::Path,
    ) -> candle_core::Result<Self> {
        Self::load_with_table(vb, c, kernels, plan, Some(weights))
    }

    fn load_with_table(
        vb: VarBuilder,
        c: &Config,
        kernels: &[Kernel],
        plan: KernelPlan,
        weights: Option<&std::path::Path>,
    ) -> candle_core::Result<Self> {
        let formats = Formats::of(kernels);
        const TABLE: &str = "embeddings.word_embeddings.weight";
        let (vb, prefix) = if vb.contains_tensor(&format!("bert.{TABLE}")) {
            (vb.pp("bert"), "bert.")
        } else {
            (vb, "")
        };
        let (h, f) = (c.hidden_size, c.intermediate_size);
        let e = vb.pp("embeddings");
        let mapped = weights.and_then(|path| {
            VocabularyTable::mapped(path, &format!("{prefix}{TABLE}"), c.vocab_size, h)
        });
        let word = match mapped {
            Some(table) => table,
            None => VocabularyTable::owned(&e.get_with_hints_dtype(
                (c.vocab_size, h),
                "word_embeddings.weight",
                Default::default(),
                DType::F16,
            )?)?,
        };
        let pos_rows = e
            .get((c.max_position_embeddings, h), "position_embeddings.weight")?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let type0_row = e
            .get((c.type_vocab_size, h), "token_type_embeddings.weight")?
            .get(0)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let emb_ln = Norm::load(e.pp("LayerNorm"), h, c.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let v = vb.pp(format!("encoder.layer.{l}"));
            let a = v.pp("attention");
            layers.push(Layer {
                qkv: [
                    Linear::load(a.pp("self.query"), h, h, formats)?,
                    Linear::load(a.pp("self.key"), h, h, formats)?,
                    Linear::load(a.pp("self.value"), h, h, formats)?,
                ],
                attn_out: Linear::load(a.pp("output.dense"), h, h, formats)?,
                attn_ln: Norm::load(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                inter: Linear::load(v.pp("intermediate.dense"), h, f, formats)?,
                out: Linear::load(v.pp("output.dense"), f, h, formats)?,
                out_ln: Norm::load(v.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(FastBert {
            word,
            int8_rows: formats.int8,
            vocab: c.vocab_size,
            pos_rows,
            type0_row,
            plan,
            emb_ln,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            hidden: h,
            max_positions: c.max_position_embeddings,
            act: c.hidden_act,
        })
    }

    /// Last hidden states of the sequences packed one after another without padding:
    /// `tokens × hidden`, row-major, rows of `seqs[0]` first. Token types are 0 and each
    /// sequence's positions start at 0.
    ///
    /// With `parallel`, the matrix products and attention heads are spread over rayon's
    /// threads; without, everything runs on the calling thread (for callers that already run
    /// several forward passes at once).
    pub fn forward_packed(&self, seqs: &[&[u32]], parallel: bool) -> candle_core::Result<Vec<f32>> {
        let tokens: usize = seqs.iter().map(|s| s.len()).sum();
        let kernel = if tokens <= SMALL_M_ROWS {
            self.plan.query
        } else {
            self.plan.batch
        };
        self.forward_packed_with(seqs, parallel, kernel)
    }

    /// The kernel per input shape.
    pub fn plan(&self) -> KernelPlan {
        self.plan
    }

    /// Runs `plan` from now on and drops the weight formats it does not use: f32 weights
    /// unless f32 runs a shape (and then only the layout that shape uses), int8 weights
    /// unless an int8 kernel runs one. Int8 kernels read the vocabulary rows quantized when
    /// only int8 kernels run (as the probe measured them) and as they are when f32 runs a
    /// shape too (one table for both shapes, as when the tables were held in memory and only
    /// one was kept). `plan`'s formats must have been loaded.
    pub fn retain(&mut self, plan: KernelPlan) {
        self.plan = plan;
        for layer in &mut self.layers {
            for linear in layer.linears_mut() {
                linear.retain(plan);
            }
        }
        self.int8_rows = plan.kernels().iter().all(|k| matches!(k, Kernel::Int8(_)));
    }

    /// Bytes of weights held in memory (vocabulary table and linear layers; a vocabulary
    /// table mapped from the model file counts nothing).
    pub fn weight_bytes(&self) -> usize {
        self.word.bytes_held()
            + self
                .layers
                .iter()
                .flat_map(|l| l.linears())
                .map(Linear::bytes)
                .sum::<usize>()
    }

    /// [`FastBert::forward_packed`] with `kernel` for the linear layers, whatever the shape.
    pub fn forward_packed_with(
        &self,
        seqs: &[&[u32]],
        parallel: bool,
        kernel: Kernel,
    ) -> candle_core::Result<Vec<f32>> {
        let h = self.hidden;
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(seqs.len());
        for s in seqs {
            if s.len() > self.max_positions {
                candle_core::bail!(
                    "sequence of {} tokens exceeds the model's {} positions",
                    s.len(),
                    self.max_positions
                );
            }
            spans.push((ids.len(), s.len()));
            ids.extend_from_slice(s);
            positions.extend(0..s.len() as u32);
        }
        let tokens = ids.len();
        if tokens == 0 {
            return Ok(Vec::new());
        }
        let quantized = self.int8_rows && matches!(kernel, Kernel::Int8(_));
        let mut x = vec![0f32; tokens * h];
        for ((row, id), p) in x.chunks_exact_mut(h).zip(&ids).zip(&positions) {
            let id = *id as usize;
            if id >= self.vocab {
                candle_core::bail!("token id {id} is outside the vocabulary of {}", self.vocab);
            }
            if quantized {
                self.word.int8_row(id, row);
            } else {
                self.word.row(id, row);
            }
            let pos = &self.pos_rows[*p as usize * h..(*p as usize + 1) * h];
            for ((a, p), t) in row.iter_mut().zip(pos).zip(&self.type0_row) {
                *a = (*a + p) + t;
            }
        }
        self.emb_ln.apply(&mut x, &[]);

        let units: Vec<HeadSlice> = spans
            .iter()
            .flat_map(|&(start, len)| {
                (0..self.heads).map(move |head| HeadSlice {
                    start,
                    len,
                    col: head * self.head_dim,
                })
            })
            .collect();
        let scale = 1.0 / (self.head_dim as f32).sqrt();
        for layer in &self.layers {
            let [q, k, v] = [0, 1, 2].map(|i| layer.qkv[i].forward(&x, tokens, kernel, parallel));
            let (q, k, v) = (q?, k?, v?);
            let head = |at: &HeadSlice| attend(&q, &k, &v, h, self.head_dim, *at, scale);
            let heads: Vec<Vec<f32>> = if parallel {
                units.par_iter().map(head).collect()
            } else {
                units.iter().map(head).collect()
            };
            let mut ctx = vec![0f32; tokens * h];
            for (at, out) in units.iter().zip(&heads) {
                for (i, o) in out.chunks_exact(self.head_dim).enumerate() {
                    let r = (at.start + i) * h + at.col;
                    ctx[r..r + self.head_dim].copy_from_slice(o);
                }
            }
            let mut attn = layer.attn_out.forward(&ctx, tokens, kernel, parallel)?;
            layer.attn_ln.apply(&mut attn, &x);
            let mut inter = layer.inter.forward(&attn, tokens, kernel, parallel)?;
            match self.act {
                HiddenAct::Gelu => gelu_erf(&mut inter),
                HiddenAct::GeluApproximate => gelu_tanh(&mut inter),
                HiddenAct::Relu => inter.iter_mut().for_each(|v| *v = v.max(0.0)),
            }
            x = layer.out.forward(&inter, tokens, kernel, parallel)?;
            layer.out_ln.apply(&mut x, &attn);
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use candle_transformers::models::bert::BertModel;

    /// A BERT config small enough for random-weight tests: 20 tokens, 4 heads,
    /// `hidden` wide, `layers` deep.
    fn tiny_config(hidden: usize, layers: usize) -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 20, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": 4, "intermediate_size": 128, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0, "max_position_embeddings": 200, "type_vocab_size": 2,
            "initializer_range": 0.5, "layer_norm_eps": 1e-12, "pad_token_id": 1,
            "classifier_dropout": null, "model_type": "bert"
        }))
        .expect("config")
    }

    #[test]
    fn small_kernel_matches_matmul() {
        for (m, k, n) in [
            (1usize, 16usize, 16usize),
            (5, 24, 32),
            (12, 64, 160),
            (7, 10, 48),
            (13, 8, 16),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| half::f16::from_f32(((i * 5 % 11) as f32 - 5.0) * 0.1).to_f32())
                .collect();
            let tensors = std::collections::HashMap::from([
                (
                    "l.weight".to_string(),
                    Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).expect("w"),
                ),
                (
                    "l.bias".to_string(),
                    Tensor::from_vec(b.clone(), n, &Device::Cpu).expect("b"),
                ),
            ]);
            let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
            let linear = FastLinear::load(vb.pp("l"), k, n).expect("load");
            let panels = linear.panels.as_ref().expect("n is a multiple of 16");
            for parallel in [false, true] {
                let y = small_linear(&x, m, k, panels, n, &b, parallel);
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 =
                            (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>() + b[j];
                        assert!(
                            (y[i * n + j] - want).abs() < 1e-4,
                            "m{m} k{k} n{n} [{i},{j}] {} vs {want}",
                            y[i * n + j]
                        );
                    }
                }
            }
        }
    }

    /// After `retain`, a model holds only its plan's formats, runs both shapes with them and
    /// gives what a model with every format gives with the same kernels.
    #[test]
    fn retain_keeps_what_the_plan_runs() {
        use super::super::int8::Isa;
        let config = tiny_config(64, 2);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        BertModel::load(vb.clone(), &config).expect("random weights");
        let int8 = Kernel::Int8(Isa::Scalar);
        let all = [Kernel::F32, int8];
        let full = FastBert::load_for(vb.clone(), &config, &all, KernelPlan::uniform(Kernel::F32))
            .expect("all formats");
        let ids: Vec<u32> = (0..120).map(|i| (i * 7 % 20) as u32).collect();
        let (small, large): (&[u32], &[u32]) = (&ids[..10], &ids);
        for (query, batch) in [
            (Kernel::F32, Kernel::F32),
            (int8, Kernel::F32),
            (Kernel::F32, int8),
            (int8, int8),
        ] {
            let plan = KernelPlan { query, batch };
            let mut m = FastBert::load_for(vb.clone(), &config, &all, plan).expect("load");
            let before = m.weight_bytes();
            m.retain(plan);
            assert!(m.weight_bytes() < before, "{plan:?} dropped nothing");
            for (seq, kernel) in [(small, query), (large, batch)] {
                let got = m.forward_packed(&[seq], false).expect("forward");
                let want = full
                    .forward_packed_with(&[seq], false, kernel)
                    .expect("full");
                // Int8 kernels read the vocabulary rows quantized unless f32 also runs;
                // the full model, loaded with int8, quantizes them for int8 kernels.
                if kernel == Kernel::F32 || plan == KernelPlan::uniform(int8) {
                    assert_eq!(got, want, "{plan:?}, {} rows", seq.len());
                } else {
                    assert_eq!(got.len(), want.len());
                }
            }
        }
        let mut m = FastBert::load_for(vb, &config, &all, KernelPlan::uniform(int8)).expect("load");
        m.retain(KernelPlan::uniform(int8));
        assert!(
            m.forward_packed_with(&[small], false, Kernel::F32).is_err(),
            "f32 weights were dropped"
        );
    }

    /// A vocabulary table mapped from the model file gives the embeddings of the table held
    /// in memory, with each kernel plan, and is not counted as held.
    #[test]
    fn mapped_table_matches_the_table_in_memory() {
        use super::super::int8::Isa;
        let config = tiny_config(64, 1);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        BertModel::load(vb, &config).expect("random weights");
        let tensors: std::collections::HashMap<String, Tensor> = varmap
            .data()
            .lock()
            .expect("vars")
            .iter()
            .map(|(name, var)| (name.clone(), var.to_dtype(DType::F16).expect("f16")))
            .collect();
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&tensors, &path).expect("save");
        // SAFETY: the file was just written and is not modified while mapped.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                std::slice::from_ref(&path),
                DType::F32,
                &Device::Cpu,
            )
        }
        .expect("vb");
        let int8 = Kernel::Int8(Isa::Scalar);
        let ids: Vec<u32> = (0..120).map(|i| (i * 7 % 20) as u32).collect();
        for plan in [
            KernelPlan::uniform(Kernel::F32),
            KernelPlan::uniform(int8),
            KernelPlan {
                query: int8,
                batch: Kernel::F32,
            },
        ] {
            let kernels = plan.kernels();
            let mut held = FastBert::load_for(vb.clone(), &config, &kernels, plan).expect("held");
            let mut mapped =
                FastBert::load_mapped(vb.clone(), &config, &kernels, plan, &path).expect("mapped");
            for m in [&mut held, &mut mapped] {
                m.retain(plan);
            }
            assert_eq!(held.weight_bytes() - mapped.weight_bytes(), 20 * 64 * 2);
            for seq in [&ids[..10], &ids[..]] {
                assert_eq!(
                    mapped.forward_packed(&[seq], false).expect("mapped"),
                    held.forward_packed(&[seq], false).expect("held"),
                    "{plan:?}, {} rows",
                    seq.len()
                );
            }
        }
    }

    #[test]
    fn vectorized_math_matches_candle() {
        let xs: Vec<f32> = (-6000..=6000).map(|i| i as f32 * 1e-3).collect();
        let t = Tensor::from_vec(xs.clone(), xs.len(), &Device::Cpu).expect("t");
        for (name, want, f) in [
            ("gelu_erf", t.gelu_erf(), gelu_erf as fn(&mut [f32])),
            ("gelu_tanh", t.gelu(), gelu_tanh as fn(&mut [f32])),
        ] {
            let want = want.expect("gelu").to_vec1::<f32>().expect("v");
            let mut got = xs.clone();
            f(&mut got);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 2e-6, "{name}: max abs error {worst}");
        }
        for x in [
            -87.0f32, -20.0, -3.3, -1.0, -1e-3, 0.0, 0.5, 1.0, 10.0, 80.0,
        ] {
            let (got, want) = (exp_approx(x), x.exp());
            assert!(
                (got - want).abs() <= want * 3e-7,
                "exp({x}) = {got}, want {want}"
            );
            let e = candle_core::cpu::erf::erf_f32(x / 8.0);
            assert!((erf_approx(x / 8.0) - e).abs() < 1e-6, "erf({})", x / 8.0);
        }
    }

    #[test]
    fn layer_norm_matches_candle() {
        let (rows, h) = (3usize, 20usize);
        let x: Vec<f32> = (0..rows * h)
            .map(|i| ((i * 7 % 11) as f32 - 4.0) * 0.3)
            .collect();
        let res: Vec<f32> = (0..rows * h).map(|i| (i % 5) as f32 * 0.1).collect();
        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + i as f32 * 0.01).collect();
        let beta: Vec<f32> = (0..h).map(|i| i as f32 * -0.02).collect();
        let dev = Device::Cpu;
        let ln = candle_nn::LayerNorm::new(
            Tensor::new(gamma.as_slice(), &dev).expect("g"),
            Tensor::new(beta.as_slice(), &dev).expect("b"),
            1e-12,
        );
        let sum = (Tensor::from_vec(x.clone(), (rows, h), &dev).expect("x")
            + Tensor::from_vec(res.clone(), (rows, h), &dev).expect("r"))
        .expect("sum");
        let want = ln
            .forward(&sum)
            .expect("ln")
            .flatten_all()
            .expect("f")
            .to_vec1::<f32>()
            .expect("v");
        let mut got = x;
        add_layer_norm(&mut got, &res, &gamma, &beta, 1e-12);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn same_output_as_candle_bert() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "vocab_size": 20, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
            "max_position_embeddings": 200, "type_vocab_size": 2, "initializer_range": 0.5,
            "layer_norm_eps": 1e-12, "pad_token_id": 1, "classifier_dropout": null, "model_type": "bert"
        }))
        .expect("config");
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let reference = BertModel::load(vb.clone(), &config).expect("bert");
        // Round the random weights to f16, as the converted model's are, so that the
        // f16 vocabulary table is exact.
        for var in varmap.all_vars() {
            let rounded = var
                .to_dtype(DType::F16)
                .and_then(|t| t.to_dtype(DType::F32))
                .expect("round");
            var.set(&rounded).expect("set");
        }
        let fast = FastBert::load(vb, &config).expect("fast");
        // Small (kernel path) and large (gemm path) inputs; sequences of unequal length,
        // which the reference runs padded with an attention mask and ours packed.
        for (b, l) in [(1usize, 7usize), (2, 9), (3, 150)] {
            let lens: Vec<usize> = (0..b).map(|s| l - s).collect();
            let ids: Vec<u32> = (0..b * l).map(|i| (i * 3 % 20) as u32).collect();
            let mask: Vec<u32> = (0..b * l).map(|i| u32::from(i % l < lens[i / l])).collect();
            let seqs: Vec<&[u32]> = (0..b).map(|s| &ids[s * l..s * l + lens[s]]).collect();
            let got = fast.forward_packed(&seqs, b % 2 == 0).expect("fast");
            let ids = Tensor::from_vec(ids.clone(), (b, l), &Device::Cpu).expect("ids");
            let mask = Tensor::from_vec(mask, (b, l), &Device::Cpu).expect("mask");
            let want = reference
                .forward(&ids, &ids.zeros_like().expect("z"), Some(&mask))
                .expect("ref")
                .to_vec3::<f32>()
                .expect("v");
            let mut row = 0;
            let mut worst = 0f32;
            for (s, len) in lens.iter().enumerate() {
                for tok in &want[s][..*len] {
                    for (c, w) in tok.iter().enumerate() {
                        worst = worst.max((got[row * 32 + c] - w).abs());
                    }
                    row += 1;
                }
            }
            assert_eq!(row * 32, got.len());
            assert!(worst < 1e-4, "b{b} l{l}: max diff {worst}");
        }
        assert!(fast.forward_packed(&[], true).expect("empty").is_empty());
        let too_long = vec![0u32; 201];
        assert!(fast.forward_packed(&[&too_long], false).is_err());
    }
}
