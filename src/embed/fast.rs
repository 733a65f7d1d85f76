//! A BERT encoder for the CPU with the same math as candle-transformers' `BertModel`
//! (same weight names, exact-erf GELU, post-layer-norm) but a faster path for the
//! few-row matrix products of single queries.
//!
//! candle's gemm packs the (transposed) weight matrix on every call, which dominates the
//! time when a query has only a dozen tokens. For inputs of at most [`SMALL_M_ROWS`] rows
//! [`FastBert`] multiplies with a dot-product kernel that reads each weight row once for
//! all input rows (AVX2/FMA when the processor has it); larger inputs use candle's gemm.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

/// Inputs with at most this many rows (batch × tokens) use the dot-product kernel; above
/// it candle's gemm is faster. Measured on the 2-core AMD EPYC development machine: the
/// kernel wins clearly at 12–64 rows and breaks even around 100–150.
pub const SMALL_M_ROWS: usize = 96;

/// Output columns per parallel task in the small kernel: large enough that rayon's
/// per-task overhead (a few µs) stays small next to the work (64 columns × 384 inputs).
const SMALL_KERNEL_COLUMNS_PER_TASK: usize = 64;

/// A linear layer `y = x·Wᵀ + b` with `W` stored as `[out, in]` (PyTorch layout).
struct FastLinear {
    weight: Tensor,
    /// The same weights as f16 bits for the small kernel (half the memory traffic). Exact
    /// for f16 checkpoints such as the converted e5-small; for f32 checkpoints the few-row
    /// path sees weights rounded to f16 (relative error ≤ 2⁻¹¹ per weight).
    weight_f16: Vec<u16>,
    bias: Tensor,
    bias_vec: Vec<f32>,
    out_dim: usize,
    in_dim: usize,
}

impl FastLinear {
    fn load(vb: VarBuilder, in_dim: usize, out_dim: usize) -> candle_core::Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?.contiguous()?;
        let bias = vb.get(out_dim, "bias")?;
        let bias_vec = bias.to_vec1::<f32>()?;
        let weight_f16 = weight
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| half::f16::from_f32(v).to_bits())
            .collect();
        Ok(FastLinear {
            weight,
            weight_f16,
            bias,
            bias_vec,
            out_dim,
            in_dim,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let mut out_dims = dims.clone();
        if let Some(last) = out_dims.last_mut() {
            *last = self.out_dim;
        }
        if rows <= SMALL_M_ROWS && x.device().is_cpu() && x.dtype() == DType::F32 {
            let xv = x.flatten_all()?.to_vec1::<f32>()?;
            let y = small_linear(
                &xv,
                rows,
                self.in_dim,
                &self.weight_f16,
                self.out_dim,
                &self.bias_vec,
            );
            return Tensor::from_vec(y, out_dims, x.device());
        }
        let x2 = x.reshape((rows, self.in_dim))?;
        let y = x2.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        y.reshape(out_dims)
    }
}

/// `y[m, n] = x[m, k] · w[n, k]ᵀ + b[n]` for small `m` (`w` as f16 bits), parallel over
/// output columns.
fn small_linear(x: &[f32], m: usize, k: usize, w: &[u16], n: usize, b: &[f32]) -> Vec<f32> {
    // yt is column-major (n × m) so that each task writes a contiguous range.
    let mut yt = vec![0f32; n * m];
    yt.par_chunks_mut(SMALL_KERNEL_COLUMNS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, out)| {
            let j0 = task * SMALL_KERNEL_COLUMNS_PER_TASK;
            let cols = out.len() / m.max(1);
            dot_block(x, m, k, &w[j0 * k..(j0 + cols) * k], cols, out);
        });
    let mut y = vec![0f32; m * n];
    for j in 0..n {
        for i in 0..m {
            y[i * n + j] = yt[j * m + i] + b[j];
        }
    }
    y
}

/// `out[j * m + i] = dot(x[i], w[j])` for `j < cols`, `i < m`.
fn dot_block(x: &[f32], m: usize, k: usize, w: &[u16], cols: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if k.is_multiple_of(8)
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the features were detected at run time, and the slice lengths are
            // those `dot_block_avx2` indexes within (m·k, cols·k, cols·m), as asserted.
            assert!(x.len() >= m * k && w.len() >= cols * k && out.len() >= cols * m);
            unsafe { dot_block_avx2(x, m, k, w, cols, out) };
            return;
        }
    }
    for j in 0..cols {
        let wr: Vec<f32> = w[j * k..(j + 1) * k]
            .iter()
            .map(|b| half::f16::from_bits(*b).to_f32())
            .collect();
        for i in 0..m {
            let xr = &x[i * k..(i + 1) * k];
            let mut acc = [0f32; 8];
            let mut xc = xr.chunks_exact(8);
            let mut wc = wr.chunks_exact(8);
            for (a, bb) in (&mut xc).zip(&mut wc) {
                for l in 0..8 {
                    acc[l] += a[l] * bb[l];
                }
            }
            let tail: f32 = xc
                .remainder()
                .iter()
                .zip(wc.remainder())
                .map(|(a, bb)| a * bb)
                .sum();
            out[j * m + i] = acc.iter().sum::<f32>() + tail;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_block_avx2(x: &[f32], m: usize, k: usize, w: &[u16], cols: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
    // SAFETY: all pointer offsets stay inside x (m·k), w (cols·k) and out (cols·m): rows
    // are clamped to m - 1, columns to cols - 1, and p < k with k % 8 == 0 (checked by the caller).
    unsafe {
        let xp = x.as_ptr();
        let wp = w.as_ptr();
        // Two weight rows × four input rows per step: 8 accumulators, 6 loads per 8 FMAs.
        let mut j = 0;
        while j < cols {
            let two = j + 1 < cols;
            let w0 = wp.add(j * k);
            let w1 = if two { wp.add((j + 1) * k) } else { w0 };
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(4);
                let xr: [*const f32; 4] =
                    std::array::from_fn(|r| xp.add((i + r.min(rows - 1)) * k));
                let mut a0 = [_mm256_setzero_ps(); 4];
                let mut a1 = [_mm256_setzero_ps(); 4];
                let mut p = 0;
                while p < k {
                    let wv0 = _mm256_cvtph_ps(_mm_loadu_si128(w0.add(p) as *const __m128i));
                    let wv1 = _mm256_cvtph_ps(_mm_loadu_si128(w1.add(p) as *const __m128i));
                    for r in 0..4 {
                        let xv = _mm256_loadu_ps(xr[r].add(p));
                        a0[r] = _mm256_fmadd_ps(xv, wv0, a0[r]);
                        a1[r] = _mm256_fmadd_ps(xv, wv1, a1[r]);
                    }
                    p += 8;
                }
                for r in 0..rows {
                    *out.get_unchecked_mut(j * m + i + r) = hsum(a0[r]);
                    if two {
                        *out.get_unchecked_mut((j + 1) * m + i + r) = hsum(a1[r]);
                    }
                }
                i += 4;
            }
            j += 2;
        }
    }
}

struct Layer {
    qkv: [FastLinear; 3],
    attn_out: FastLinear,
    attn_ln: LayerNorm,
    inter: FastLinear,
    out: FastLinear,
    out_ln: LayerNorm,
}

/// BERT encoder (embeddings + layers) returning the last hidden states, numerically the
/// same model as candle's `BertModel`.
pub struct FastBert {
    word: Embedding,
    pos: Embedding,
    token_type: Embedding,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    act: HiddenAct,
}

fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
    let w = vb.get(size, "weight")?;
    let b = vb.get(size, "bias")?;
    Ok(LayerNorm::new(w, b, eps))
}

impl FastBert {
    /// Loads the weights under the standard BERT names (optionally below `bert.`).
    pub fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let (h, f) = (c.hidden_size, c.intermediate_size);
        let e = vb.pp("embeddings");
        let word = Embedding::new(e.get((c.vocab_size, h), "word_embeddings.weight")?, h);
        let pos = Embedding::new(
            e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            h,
        );
        let token_type = Embedding::new(
            e.get((c.type_vocab_size, h), "token_type_embeddings.weight")?,
            h,
        );
        let emb_ln = layer_norm(e.pp("LayerNorm"), h, c.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let v = vb.pp(format!("encoder.layer.{l}"));
            let a = v.pp("attention");
            layers.push(Layer {
                qkv: [
                    FastLinear::load(a.pp("self.query"), h, h)?,
                    FastLinear::load(a.pp("self.key"), h, h)?,
                    FastLinear::load(a.pp("self.value"), h, h)?,
                ],
                attn_out: FastLinear::load(a.pp("output.dense"), h, h)?,
                attn_ln: layer_norm(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                inter: FastLinear::load(v.pp("intermediate.dense"), h, f)?,
                out: FastLinear::load(v.pp("output.dense"), f, h)?,
                out_ln: layer_norm(v.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(FastBert {
            word,
            pos,
            token_type,
            emb_ln,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            act: c.hidden_act,
        })
    }

    /// Last hidden states `[b, l, hidden]` for `ids` `[b, l]` with attention `mask` `[b, l]`
    /// (1 = token, 0 = padding); token types are all 0 and positions start at 0.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let dev: &Device = ids.device();
        let positions = Tensor::arange(0u32, l as u32, dev)?;
        let types = ids.zeros_like()?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.token_type.forward(&types)?)?
            .broadcast_add(&self.pos.forward(&positions)?)?;
        let mut x = self.emb_ln.forward(&x)?;
        // Additive mask: 0 for tokens, f32::MIN for padding (as candle's BertModel).
        let add_mask = {
            let m = mask.to_dtype(DType::F32)?;
            ((1.0 - m)? * f64::from(f32::MIN))?.reshape((b, 1, 1, l))?
        };
        let has_padding = mask.min_all()?.to_scalar::<u32>()? == 0;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((b, l, self.heads, self.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.qkv[0].forward(&x)?)?;
            let k = split(layer.qkv[1].forward(&x)?)?;
            let v = split(layer.qkv[2].forward(&x)?)?;
            let mut scores = (q.matmul(&k.t()?)? * scale)?;
            if has_padding {
                scores = scores.broadcast_add(&add_mask)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                b,
                l,
                self.heads * self.head_dim,
            ))?;
            let attn = layer
                .attn_ln
                .forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let inter = layer.inter.forward(&attn)?;
            let inter = match self.act {
                HiddenAct::Gelu => inter.gelu_erf()?,
                HiddenAct::GeluApproximate => inter.gelu()?,
                HiddenAct::Relu => inter.relu()?,
            };
            x = layer
                .out_ln
                .forward(&(layer.out.forward(&inter)? + &attn)?)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use candle_transformers::models::bert::BertModel;

    #[test]
    fn small_kernel_matches_matmul() {
        for (m, k, n) in [
            (1usize, 16usize, 3usize),
            (5, 24, 7),
            (12, 64, 130),
            (3, 10, 5),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
            let w: Vec<f32> = w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
            let wbits: Vec<u16> = w
                .iter()
                .map(|v| half::f16::from_f32(*v).to_bits())
                .collect();
            let y = small_linear(&x, m, k, &wbits, n, &b);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>() + b[j];
                    assert!(
                        (y[i * n + j] - want).abs() < 1e-4,
                        "m{m} k{k} n{n} [{i},{j}] {} vs {want}",
                        y[i * n + j]
                    );
                }
            }
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
        // f16 copy used by the small kernel is exact.
        for var in varmap.all_vars() {
            let rounded = var
                .to_dtype(DType::F16)
                .and_then(|t| t.to_dtype(DType::F32))
                .expect("round");
            var.set(&rounded).expect("set");
        }
        let fast = FastBert::load(vb, &config).expect("fast");
        // Small (kernel path) and large (gemm path) inputs, with padding.
        for (b, l) in [(1usize, 7usize), (2, 9), (3, 150)] {
            let ids: Vec<u32> = (0..b * l).map(|i| (i * 3 % 20) as u32).collect();
            let mask: Vec<u32> = (0..b * l).map(|i| u32::from(i % l < l - (i / l))).collect();
            let ids = Tensor::from_vec(ids, (b, l), &Device::Cpu).expect("ids");
            let mask = Tensor::from_vec(mask, (b, l), &Device::Cpu).expect("mask");
            let want = reference
                .forward(&ids, &ids.zeros_like().expect("z"), Some(&mask))
                .expect("ref");
            let got = fast.forward(&ids, &mask).expect("fast");
            let diff = (want - got)
                .expect("sub")
                .abs()
                .expect("abs")
                .max_all()
                .expect("max")
                .to_scalar::<f32>()
                .expect("s");
            assert!(diff < 1e-4, "b{b} l{l}: max diff {diff}");
        }
    }
}
