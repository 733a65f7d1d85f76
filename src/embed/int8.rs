//! Int8 linear layers for the CPU encoder: weights quantized per output column, inputs
//! quantized per row when the layer runs, products summed in i32, and one kernel per
//! instruction set (scalar, AVX2, AVX-VNNI, AVX-512 VNNI) chosen at run time.
//!
//! Why by hand: candle's quantized matmul (`QMatMul` with `Q8_0`) multiplies one row by one
//! column at a time with AVX2 and quantizes both sides in blocks of 32; on a processor with
//! VNNI a `vpdpbusd` does 64 multiply-adds (AVX-512) in one instruction, and a
//! register-blocked tile of 6 rows × 64 columns keeps it busy. `wenda bench` times both in
//! one run (kernels `int8-*` and `q8_0-candle`).
//!
//! Every kernel computes exactly the same i32 sums and the same f32 epilogue
//! (`(sum · (row scale · column scale)) + bias`, one fused multiply-add), so the kernels'
//! outputs are bit-for-bit equal; the tests compare each with the scalar one.

use std::ops::Range;

use rayon::prelude::*;

/// Output columns of one weight panel: one AVX-512 register of i32 sums (two AVX2 ones).
pub const COLS: usize = 16;

/// Inputs per group: `vpdpbusd` adds four u8 × i8 products into each i32 lane, so each
/// column's weights are stored four inputs at a time.
const GROUP: usize = 4;

/// Largest magnitude of a quantized value. −128 is never used, so that in the AVX2 kernel
/// a pair of products (`|x|·w`, at most 2 · 127 · 127 = 32,258) fits an i16.
const QMAX: f32 = 127.0;

/// Inputs per activation block: each row of inputs is quantized in blocks of this many
/// values, each with its own scale, so that a few outlier channels (BERT has them) cost
/// precision only in their block. With one scale per row the real model's embeddings fell
/// to cosine 0.9982 against the reference (below the 0.999 bar); see `MIN_PROBE_COSINE`.
pub const BLOCK: usize = 64;

/// Offset added to each quantized input for the VNNI kernels, whose instruction multiplies
/// unsigned inputs by signed weights: `Σ (x + 128)·w = Σ x·w + 128 · Σ w`, and the second
/// term is subtracted per column.
const U8_OFFSET: i32 = 128;

/// Input rows per parallel task: 8 tiles of 6 rows, so a task's inputs (48 × 1,536 bytes
/// at most) and its weight panels (4 × 16 × 1,536 bytes) stay in the core's L2 cache.
const TASK_ROWS: usize = 48;

/// Weight panels (of [`COLS`] columns) per parallel task: the AVX-512 tile's width.
const TASK_PANELS: usize = 4;

/// An instruction set an int8 kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust loops: the reference the others are tested against, and the fallback.
    Scalar,
    /// AVX2 `vpmaddubsw` / `vpmaddwd` (sign trick: `|x| · (w · sign x)`).
    Avx2,
    /// AVX-VNNI `vpdpbusd` on 256-bit registers (Intel Alder Lake and later, Zen 5).
    AvxVnni,
    /// AVX-512 VNNI `vpdpbusd` on 512-bit registers (Intel Cascade Lake and later, Zen 4).
    Avx512Vnni,
}

impl Isa {
    /// All kernels, fastest expected first.
    pub const ALL: [Isa; 4] = [Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2, Isa::Scalar];

    /// The kernel's name in logs, the bench report and the kernel cache.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "int8-scalar",
            Isa::Avx2 => "int8-avx2",
            Isa::AvxVnni => "int8-avxvnni",
            Isa::Avx512Vnni => "int8-avx512vnni",
        }
    }

    /// Whether this processor can run the kernel.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Why this processor cannot run the kernel (for ignored tests and logs).
    pub fn missing(self) -> &'static str {
        match self {
            Isa::Scalar => "",
            Isa::Avx2 => "the processor lacks AVX2 and FMA",
            Isa::AvxVnni => "the processor lacks AVX-VNNI",
            Isa::Avx512Vnni => "the processor lacks AVX-512 F/BW/VNNI",
        }
    }

    /// Whether the kernel takes inputs as `x + 128` (unsigned).
    fn offset_inputs(self) -> bool {
        matches!(self, Isa::AvxVnni | Isa::Avx512Vnni)
    }
}

/// A linear layer `y = x·Wᵀ + b` with int8 weights, one scale per output column.
pub struct Int8Linear {
    /// Weights in panels of [`COLS`] columns, `[out / COLS][in / GROUP][COLS][GROUP]`: one
    /// 64-byte load is four inputs of sixteen columns.
    panels: Vec<i8>,
    /// Per output column: the weight scale (`max |w| / 127`).
    scales: Vec<f32>,
    /// Per panel, input block and column (`[out / COLS][in / BLOCK][COLS]`): `128 · Σ q`
    /// over the block, subtracted from the VNNI kernels' block sums.
    offsets: Vec<i32>,
    bias: Vec<f32>,
    out_dim: usize,
    in_dim: usize,
}

/// Rounds to the nearest integer (ties to even) for `|v| < 2²²`, branch-free so that loops
/// vectorize (`f32::round` is a library call without SSE4.1).
#[inline(always)]
fn round_even(v: f32) -> f32 {
    (v + 12_582_912.0) - 12_582_912.0
}

impl Int8Linear {
    /// Quantizes `weight` (`[out, in]`, row-major) per output column; `None` when the shape
    /// does not fit the panels (`out` a multiple of 16, `in` of [`BLOCK`]).
    pub fn quantize(weight: &[f32], bias: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if !out_dim.is_multiple_of(COLS)
            || !in_dim.is_multiple_of(BLOCK)
            || weight.len() != out_dim * in_dim
            || bias.len() != out_dim
        {
            return None;
        }
        let mut panels = vec![0i8; out_dim * in_dim];
        let mut scales = Vec::with_capacity(out_dim);
        let blocks = in_dim / BLOCK;
        let mut offsets = vec![0i32; out_dim * blocks];
        for (j, row) in weight.chunks_exact(in_dim).enumerate() {
            let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = if max > 0.0 { max / QMAX } else { 1.0 };
            let (p, c) = (j / COLS, j % COLS);
            for (q, w) in row.iter().enumerate() {
                let v = round_even(w / scale).clamp(-QMAX, QMAX) as i8;
                offsets[(p * blocks + q / BLOCK) * COLS + c] += U8_OFFSET * i32::from(v);
                panels[(p * (in_dim / GROUP) + q / GROUP) * COLS * GROUP + c * GROUP + q % GROUP] =
                    v;
            }
            scales.push(scale);
        }
        Some(Int8Linear {
            panels,
            scales,
            offsets,
            bias: bias.to_vec(),
            out_dim,
            in_dim,
        })
    }

    /// Bytes held by the layer.
    pub fn bytes(&self) -> usize {
        self.panels.len() + 4 * (self.scales.len() + self.offsets.len() + self.bias.len())
    }

    /// `rows × out` outputs for `rows × in` inputs (row-major) with the `isa` kernel, which
    /// must be [`Isa::supported`]; on all cores when `parallel`.
    pub fn forward(&self, isa: Isa, x: &[f32], rows: usize, parallel: bool) -> Vec<f32> {
        let (m, k, n) = (rows, self.in_dim, self.out_dim);
        assert_eq!(x.len(), m * k, "linear layer input of the wrong size");
        assert!(isa.supported(), "{} is not supported here", isa.name());
        let (xq, xs) = quantize_rows(x, m, k, isa.offset_inputs());
        let mut y = vec![0f32; m * n];
        let panels = n / COLS;
        let groups = panels.div_ceil(TASK_PANELS);
        let tasks = m.div_ceil(TASK_ROWS) * groups;
        let out = OutPtr(y.as_mut_ptr());
        let task = |t: usize| {
            let (rb, pg) = (t / groups, t % groups);
            let rows = rb * TASK_ROWS..((rb + 1) * TASK_ROWS).min(m);
            let cols = pg * TASK_PANELS..((pg + 1) * TASK_PANELS).min(panels);
            let block = Block {
                layer: self,
                xq: &xq,
                xs: &xs,
                rows,
                panels: cols,
            };
            // SAFETY: `y` is m × n and the task writes only rows `rows` × columns of
            // panels `cols`, which no other task writes; `isa` is supported (asserted).
            unsafe { block.run(isa, out) };
        };
        if parallel {
            (0..tasks).into_par_iter().for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
        y
    }
}

/// The output matrix, shared by tasks that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint blocks (see `Int8Linear::forward`).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Quantizes each [`BLOCK`] of each row of `x` (`m × k`) symmetrically to [-127, 127] with
/// scale `max |x| / 127`; returns the values (as `x + 128` when `offset`, else the i8 bits)
/// and the block scales (`m × k / BLOCK`).
fn quantize_rows(x: &[f32], m: usize, k: usize, offset: bool) -> (Vec<u8>, Vec<f32>) {
    #[inline(always)]
    fn body(x: &[f32], offset: bool, q: &mut [u8], scales: &mut [f32]) {
        for ((block, out), s) in x
            .chunks_exact(BLOCK)
            .zip(q.chunks_exact_mut(BLOCK))
            .zip(scales)
        {
            let mut mx = [0f32; 8];
            for c in block.chunks_exact(8) {
                for l in 0..8 {
                    mx[l] = mx[l].max(c[l].abs());
                }
            }
            let max = mx.into_iter().fold(0f32, f32::max);
            let scale = if max > 0.0 { max / QMAX } else { 1.0 };
            let inv = 1.0 / scale;
            let shift = if offset { U8_OFFSET } else { 0 };
            for (o, v) in out.iter_mut().zip(block) {
                *o = (round_even(v * inv).clamp(-QMAX, QMAX) as i32 + shift) as u8;
            }
            *s = scale;
        }
    }
    debug_assert!(k.is_multiple_of(BLOCK) && x.len() == m * k);
    let mut q = vec![0u8; m * k];
    let mut scales = vec![0f32; m * k / BLOCK];
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2(x: &[f32], offset: bool, q: &mut [u8], scales: &mut [f32]) {
            body(x, offset, q, scales)
        }
        if Isa::Avx2.supported() {
            // SAFETY: the processor has the features `avx2` is compiled for.
            unsafe { avx2(x, offset, &mut q, &mut scales) };
            return (q, scales);
        }
    }
    body(x, offset, &mut q, &mut scales);
    (q, scales)
}

/// One task's share of a product: rows × panels of the output.
struct Block<'a> {
    layer: &'a Int8Linear,
    /// Quantized inputs, `m × in`.
    xq: &'a [u8],
    /// Input block scales, `m × in / BLOCK`.
    xs: &'a [f32],
    rows: Range<usize>,
    panels: Range<usize>,
}

impl Block<'_> {
    /// Computes the block into `out` (`m × out_dim`).
    ///
    /// # Safety
    /// `isa` must be supported, `out` must point at `m × out_dim` floats, and no other
    /// thread may access this block of it.
    unsafe fn run(&self, isa: Isa, out: OutPtr) {
        // SAFETY: passed on from the caller.
        unsafe {
            match isa {
                Isa::Scalar => self.scalar(out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => x86::block_avx2(self, out),
                #[cfg(target_arch = "x86_64")]
                Isa::AvxVnni => x86::block_avxvnni(self, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni => x86::block_avx512vnni(self, out),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("x86 kernels are never supported elsewhere"),
            }
        }
    }

    /// The reference kernel: plain loops over signed inputs.
    ///
    /// # Safety
    /// As [`Block::run`].
    unsafe fn scalar(&self, out: OutPtr) {
        let l = self.layer;
        let (k, n) = (l.in_dim, l.out_dim);
        let blocks = k / BLOCK;
        for i in self.rows.clone() {
            let x = &self.xq[i * k..(i + 1) * k];
            for p in self.panels.clone() {
                let w = &l.panels[p * k * COLS..(p + 1) * k * COLS];
                let mut sum = [0f32; COLS];
                for (bl, xb) in x.chunks_exact(BLOCK).enumerate() {
                    let mut acc = [0i32; COLS];
                    for (g, xg) in xb.chunks_exact(GROUP).enumerate() {
                        let at = (bl * BLOCK / GROUP + g) * COLS * GROUP;
                        let wg = &w[at..at + COLS * GROUP];
                        for (c, a) in acc.iter_mut().enumerate() {
                            for (t, xv) in xg.iter().enumerate() {
                                *a += i32::from(*xv as i8) * i32::from(wg[c * GROUP + t]);
                            }
                        }
                    }
                    let xs = self.xs[i * blocks + bl];
                    for (s, a) in sum.iter_mut().zip(acc) {
                        *s = (a as f32).mul_add(xs, *s);
                    }
                }
                for (c, s) in sum.iter().enumerate() {
                    let j = p * COLS + c;
                    let v = s.mul_add(l.scales[j], l.bias[j]);
                    // SAFETY: i < m and j < n; this block is the task's own.
                    unsafe { *out.0.add(i * n + j) = v };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The SIMD kernels: register tiles of `R` rows × `P` panels, the inputs of each row
    //! broadcast four bytes at a time. Per input block the i32 sums are scaled by the
    //! block's input scale into f32 sums; at the end those are scaled by the column's
    //! weight scale and the bias is added.

    use super::{BLOCK, Block, COLS, GROUP, OutPtr};
    use std::arch::x86_64::*;

    /// Rows per AVX-512 tile: 6 rows × 2 panels = 12 i32 and 12 f32 accumulators, plus 2
    /// weight registers and a broadcast, of the 32 registers.
    const ROWS_512: usize = 6;
    /// Panels per AVX-512 tile.
    const PANELS_512: usize = 2;
    /// Rows per AVX-VNNI tile: 3 rows × 2 registers = 6 i32 and 6 f32 accumulators, plus 2
    /// weight registers and a broadcast, of the 16 registers.
    const ROWS_VNNI256: usize = 3;
    /// Rows per AVX2 tile: 2 rows × 2 registers = 4 i32 and 4 f32 accumulators; the sign
    /// trick needs temporaries for each product.
    const ROWS_AVX2: usize = 2;

    /// The four input bytes of group `g` of the row at `x`, in every 32-bit lane.
    #[inline(always)]
    unsafe fn four(x: *const u8, g: usize) -> i32 {
        // SAFETY: the caller's row holds at least (g + 1) · GROUP bytes.
        unsafe { (x.add(g * GROUP) as *const i32).read_unaligned() }
    }

    /// Runs `tile(rows, first row, first panel, panels)` over the block in tiles of at most
    /// `rows_per_tile` rows and `panels_per_tile` panels.
    #[inline(always)]
    fn tiles(
        b: &Block,
        rows_per_tile: usize,
        panels_per_tile: usize,
        mut tile: impl FnMut(usize, usize, usize, usize),
    ) {
        let mut i = b.rows.start;
        while i < b.rows.end {
            let r = (b.rows.end - i).min(rows_per_tile);
            let mut p = b.panels.start;
            while p < b.panels.end {
                let np = (b.panels.end - p).min(panels_per_tile);
                tile(r, i, p, np);
                p += np;
            }
            i += r;
        }
    }

    /// AVX-512 VNNI: tiles of up to 6 rows × 2 panels (32 columns).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn block_avx512vnni(b: &Block, out: OutPtr) {
        tiles(b, ROWS_512, PANELS_512, |r, i, p, np| {
            macro_rules! go {
                ($($r:literal),*) => {
                    match (r, np) {
                        $(
                            ($r, 2) => tile_512::<$r, 2>(b, i, p, out),
                            ($r, _) => tile_512::<$r, 1>(b, i, p, out),
                        )*
                        _ => unreachable!("tiles have 1 to {ROWS_512} rows"),
                    }
                };
            }
            // SAFETY: the caller's contract (see `Block::run`); tiles stay in the block.
            unsafe { go!(1, 2, 3, 4, 5, 6) }
        });
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_512<const R: usize, const P: usize>(b: &Block, i: usize, p: usize, out: OutPtr) {
        let l = b.layer;
        let (k, n) = (l.in_dim, l.out_dim);
        let blocks = k / BLOCK;
        // SAFETY: rows i..i + R < m of xq (m × k bytes) and their block scales, panels
        // p..p + P of the weights (k · COLS bytes each) and of the offsets are read; outputs
        // of those rows and panels are written.
        unsafe {
            let x = b.xq.as_ptr().add(i * k);
            let w = l.panels.as_ptr().add(p * k * COLS);
            let mut sum = [[_mm512_setzero_ps(); P]; R];
            for bl in 0..blocks {
                let mut acc = [[_mm512_setzero_si512(); P]; R];
                for g in bl * BLOCK / GROUP..(bl + 1) * BLOCK / GROUP {
                    let mut wv = [_mm512_setzero_si512(); P];
                    for (q, v) in wv.iter_mut().enumerate() {
                        *v = _mm512_loadu_si512(w.add(q * k * COLS + g * COLS * GROUP) as *const _);
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_epi32(four(x.add(r * k), g));
                        for (q, v) in wv.iter().enumerate() {
                            a[q] = _mm512_dpbusd_epi32(a[q], xv, *v);
                        }
                    }
                }
                for q in 0..P {
                    let off = _mm512_loadu_si512(
                        l.offsets.as_ptr().add(((p + q) * blocks + bl) * COLS) as *const _,
                    );
                    for r in 0..R {
                        let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][q], off));
                        let xs = _mm512_set1_ps(b.xs[(i + r) * blocks + bl]);
                        sum[r][q] = _mm512_fmadd_ps(v, xs, sum[r][q]);
                    }
                }
            }
            for q in 0..P {
                let j = (p + q) * COLS;
                let sc = _mm512_loadu_ps(l.scales.as_ptr().add(j));
                let bias = _mm512_loadu_ps(l.bias.as_ptr().add(j));
                for (r, s) in sum.iter().enumerate() {
                    _mm512_storeu_ps(out.0.add((i + r) * n + j), _mm512_fmadd_ps(s[q], sc, bias));
                }
            }
        }
    }

    /// AVX-VNNI: tiles of up to 3 rows × 1 panel (two 256-bit registers per row).
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub(super) unsafe fn block_avxvnni(b: &Block, out: OutPtr) {
        tiles(b, ROWS_VNNI256, 1, |r, i, p, _| {
            // SAFETY: the caller's contract (see `Block::run`); tiles stay in the block.
            unsafe {
                match r {
                    3 => tile_vnni256::<3>(b, i, p, out),
                    2 => tile_vnni256::<2>(b, i, p, out),
                    _ => tile_vnni256::<1>(b, i, p, out),
                }
            }
        });
    }

    /// AVX2: tiles of up to 2 rows × 1 panel, `|x| · (w · sign x)` with `vpmaddubsw`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_avx2(b: &Block, out: OutPtr) {
        tiles(b, ROWS_AVX2, 1, |r, i, p, _| {
            // SAFETY: the caller's contract (see `Block::run`); tiles stay in the block.
            unsafe {
                match r {
                    2 => tile_avx2::<2>(b, i, p, out),
                    _ => tile_avx2::<1>(b, i, p, out),
                }
            }
        });
    }

    #[target_feature(enable = "avx2,fma,avxvnni")]
    unsafe fn tile_vnni256<const R: usize>(b: &Block, i: usize, p: usize, out: OutPtr) {
        // SAFETY: passed on.
        unsafe { tile_256::<R, true>(b, i, p, out) }
    }

    /// Compiled for AVX2 and FMA only: with AVX-VNNI enabled, LLVM would fuse
    /// `vpmaddwd` + `vpaddd` into `vpdpwssd`, which AVX2-only processors lack.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<const R: usize>(b: &Block, i: usize, p: usize, out: OutPtr) {
        // SAFETY: passed on.
        unsafe { tile_256::<R, false>(b, i, p, out) }
    }

    /// One 256-bit tile of `R` rows × one panel: with AVX-VNNI (`VNNI`, offset inputs)
    /// or with AVX2's sign trick (signed inputs). Inlined into the two wrappers above,
    /// which set the instruction set.
    #[inline(always)]
    unsafe fn tile_256<const R: usize, const VNNI: bool>(
        b: &Block,
        i: usize,
        p: usize,
        out: OutPtr,
    ) {
        let l = b.layer;
        let (k, n) = (l.in_dim, l.out_dim);
        let blocks = k / BLOCK;
        // SAFETY: as in `tile_512`, for one panel.
        unsafe {
            let x = b.xq.as_ptr().add(i * k);
            let w = l.panels.as_ptr().add(p * k * COLS);
            let ones = _mm256_set1_epi16(1);
            let mut sum = [[_mm256_setzero_ps(); 2]; R];
            for bl in 0..blocks {
                let mut acc = [[_mm256_setzero_si256(); 2]; R];
                for g in bl * BLOCK / GROUP..(bl + 1) * BLOCK / GROUP {
                    let w0 = _mm256_loadu_si256(w.add(g * COLS * GROUP) as *const _);
                    let w1 = _mm256_loadu_si256(w.add(g * COLS * GROUP + 32) as *const _);
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm256_set1_epi32(four(x.add(r * k), g));
                        if VNNI {
                            a[0] = _mm256_dpbusd_avx_epi32(a[0], xv, w0);
                            a[1] = _mm256_dpbusd_avx_epi32(a[1], xv, w1);
                        } else {
                            let ax = _mm256_abs_epi8(xv);
                            let p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xv));
                            let p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xv));
                            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(p0, ones));
                            a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(p1, ones));
                        }
                    }
                }
                for h in 0..2 {
                    let off = if VNNI {
                        _mm256_loadu_si256(
                            l.offsets.as_ptr().add((p * blocks + bl) * COLS + 8 * h) as *const _
                        )
                    } else {
                        _mm256_setzero_si256()
                    };
                    for r in 0..R {
                        let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][h], off));
                        let xs = _mm256_set1_ps(b.xs[(i + r) * blocks + bl]);
                        sum[r][h] = _mm256_fmadd_ps(v, xs, sum[r][h]);
                    }
                }
            }
            for h in 0..2 {
                let c = p * COLS + 8 * h;
                let sc = _mm256_loadu_ps(l.scales.as_ptr().add(c));
                let bias = _mm256_loadu_ps(l.bias.as_ptr().add(c));
                for (r, s) in sum.iter().enumerate() {
                    _mm256_storeu_ps(out.0.add((i + r) * n + c), _mm256_fmadd_ps(s[h], sc, bias));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: usize, k: usize) -> (Vec<f32>, Vec<f32>, Int8Linear) {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 0.2).collect();
        let l = Int8Linear::quantize(&w, &b, n, k).expect("shape fits");
        (w, b, l)
    }

    fn inputs(m: usize, k: usize) -> Vec<f32> {
        (0..m * k)
            .map(|i| ((i * 7 % 29) as f32 - 14.0) * 0.09 + if i % 97 == 0 { 3.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn scalar_kernel_is_close_to_f32() {
        let (m, k, n) = (5, 128, 48);
        let (w, b, l) = layer(n, k);
        let x = inputs(m, k);
        let y = l.forward(Isa::Scalar, &x, m, false);
        for i in 0..m {
            let xr = &x[i * k..(i + 1) * k];
            let dx = xr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for j in 0..n {
                let wr = &w[j * k..(j + 1) * k];
                let want: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + b[j];
                let dw = wr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                // Each factor is off by at most half a step: |Δ(x·w)| ≤ (dx·|w| + dw·|x| + dx·dw/2)/2.
                let bound: f32 = xr
                    .iter()
                    .zip(wr)
                    .map(|(a, b)| (dx * b.abs() + dw * a.abs() + dx * dw / 2.0) / 2.0)
                    .sum::<f32>()
                    + 1e-4;
                assert!(
                    (y[i * n + j] - want).abs() <= bound,
                    "[{i},{j}] {} vs {want}",
                    y[i * n + j]
                );
            }
        }
    }

    /// Every kernel this processor has gives the scalar kernel's outputs bit for bit; the
    /// ones it lacks are listed (their own ignored tests say so too).
    #[test]
    fn supported_kernels_match_scalar() {
        for (m, k, n) in [
            (1, 64, 16),
            (7, 128, 48),
            (13, 384, 64),
            (50, 192, 80),
            (97, 64, 256),
        ] {
            let (_, _, l) = layer(n, k);
            let x = inputs(m, k);
            let want = l.forward(Isa::Scalar, &x, m, false);
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                for parallel in [false, true] {
                    let got = l.forward(isa, &x, m, parallel);
                    assert!(
                        got == want,
                        "{} m{m} k{k} n{n} parallel {parallel}",
                        isa.name()
                    );
                }
            }
        }
    }

    fn check_isa(isa: Isa) {
        let (m, k, n) = (19, 1536, 384);
        let (_, _, l) = layer(n, k);
        let x = inputs(m, k);
        assert_eq!(
            l.forward(isa, &x, m, true),
            l.forward(Isa::Scalar, &x, m, false),
            "{}",
            isa.name()
        );
    }

    #[test]
    #[cfg_attr(not(cpu_avx2), ignore = "this processor lacks AVX2 and FMA")]
    fn kernel_avx2_matches_scalar() {
        check_isa(Isa::Avx2);
    }

    #[test]
    #[cfg_attr(not(cpu_avxvnni), ignore = "this processor lacks AVX-VNNI")]
    fn kernel_avxvnni_matches_scalar() {
        check_isa(Isa::AvxVnni);
    }

    #[test]
    #[cfg_attr(not(cpu_avx512vnni), ignore = "this processor lacks AVX-512 F/BW/VNNI")]
    fn kernel_avx512vnni_matches_scalar() {
        check_isa(Isa::Avx512Vnni);
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(Int8Linear::quantize(&[0.0; 15 * 64], &[0.0; 15], 15, 64).is_none());
        assert!(Int8Linear::quantize(&[0.0; 16 * 60], &[0.0; 16], 16, 60).is_none());
        let zero = Int8Linear::quantize(&[0.0; 16 * 64], &[0.5; 16], 16, 64).expect("fits");
        assert_eq!(
            zero.forward(Isa::Scalar, &[0.0; 128], 2, false),
            vec![0.5; 32]
        );
    }
}
