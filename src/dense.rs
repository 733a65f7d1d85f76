//! Passage vectors on disk and exact cosine top-k over them.
//!
//! Vectors are L2-normalized, so cosine is a dot product. They are stored as
//! little-endian f16 rows (`row i` = passage `i`) and read into memory at open, not
//! memory-mapped: a mapped file that another process truncates kills the server with
//! SIGBUS, while 453 × 384 f16 are 350 KB (a million passages, 768 MB, still fit).
//! Every value is checked to be finite, at build time and at open.

use std::path::Path;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::atomic_file::write_atomic;

use crate::error::{Error, IndexProblem, Result};

/// Rows per parallel work unit in the scan: large enough that rayon's
/// overhead is negligible, small enough to spread 1k passages over 2 cores.
const ROWS_PER_TASK: usize = 256;

/// A dense hit: passage ordinal and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseHit {
    /// Index of the passage in the passage list.
    pub ord: u32,
    /// Cosine similarity to the query in [-1, 1].
    pub score: f32,
}

/// Writes vectors as f16 rows to `path`. All vectors must have length `dim`.
pub fn write_vectors(path: &Path, vectors: &[Vec<f32>], dim: usize) -> Result<()> {
    let mut bytes = Vec::with_capacity(vectors.len() * dim * 2);
    for (i, v) in vectors.iter().enumerate() {
        if v.len() != dim {
            return Err(Error::IndexBuild {
                path: path.to_path_buf(),
                reason: format!("vector {i} has {} dimensions, expected {dim}", v.len()),
            });
        }
        for (j, x) in v.iter().enumerate() {
            let h = f16::from_f32(*x);
            if !h.is_finite() {
                return Err(Error::IndexBuild {
                    path: path.to_path_buf(),
                    reason: format!(
                        "vector {i} has the non-finite value {x} at dimension {j}: the model produced NaN or infinity (damaged weights?); check the model folder"
                    ),
                });
            }
            bytes.extend_from_slice(&h.to_le_bytes());
        }
    }
    write_atomic(path, &bytes).map_err(|e| Error::io(e.path, e.source))
}

/// Passage vectors, held in memory.
pub struct DenseIndex {
    values: Vec<f16>,
    dim: usize,
    rows: usize,
}

impl DenseIndex {
    /// Opens a vector file, checking its size against `rows × dim`.
    pub fn open(path: &Path, rows: usize, dim: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, rows, dim, path)
    }

    /// The vectors of a vector file already read from `path`, checked as [`DenseIndex::open`]
    /// checks them.
    pub fn from_bytes(bytes: &[u8], rows: usize, dim: usize, path: &Path) -> Result<Self> {
        let damaged = |reason: String| Error::unusable(path, IndexProblem::Damaged(reason));
        let expected = rows.checked_mul(dim).and_then(|n| n.checked_mul(2));
        if expected != Some(bytes.len()) || dim == 0 {
            return Err(damaged(format!(
                "vector file has {} bytes, expected {rows} passages × {dim} dimensions × 2",
                bytes.len()
            )));
        }
        let values: Vec<f16> = bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]))
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(damaged(format!(
                "vector file holds a non-finite value (passage {}, dimension {})",
                i / dim,
                i % dim
            )));
        }
        Ok(DenseIndex { values, dim, rows })
    }

    /// Number of dimensions per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn row(&self, i: usize, out: &mut [f32]) {
        self.values[i * self.dim..(i + 1) * self.dim].convert_to_f32_slice(out);
    }

    /// The vector of passage `i`, as f32.
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.row(i, &mut out);
        out
    }

    /// Cosine of vector `i` with `query` (both L2-normalized: a dot product).
    pub fn similarity(&self, i: usize, query: &[f32]) -> f32 {
        let mut buf = vec![0.0f32; self.dim];
        self.row(i, &mut buf);
        buf.iter().zip(query).map(|(a, b)| a * b).sum()
    }

    /// Exact top-`k` by dot product with `query`, keeping only ordinals that
    /// `keep` accepts.
    pub fn top_k(
        &self,
        query: &[f32],
        k: usize,
        keep: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<DenseHit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let chunks: Vec<Vec<DenseHit>> = (0..self.rows.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .map(|task| {
                let mut buf = vec![0.0f32; self.dim];
                let start = task * ROWS_PER_TASK;
                let end = (start + ROWS_PER_TASK).min(self.rows);
                let mut local = Vec::with_capacity(end - start);
                for i in start..end {
                    if !keep(i as u32) {
                        continue;
                    }
                    self.row(i, &mut buf);
                    let score = buf.iter().zip(query).map(|(a, b)| a * b).sum();
                    local.push(DenseHit {
                        ord: i as u32,
                        score,
                    });
                }
                local.sort_by(|a, b| b.score.total_cmp(&a.score));
                local.truncate(k);
                local
            })
            .collect();
        let mut all: Vec<DenseHit> = chunks.into_iter().flatten().collect();
        all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ord.cmp(&b.ord)));
        all.truncate(k);
        all
    }
}

/// The vectors of every passage's readable sentences
/// ([`crate::corpus::readable_sentences`]), passage after passage, so an answer can pick
/// the sentences closest in meaning to the question (the only signal for a question in
/// another language, which shares no words with the reports).
pub struct SentenceVectors {
    vectors: DenseIndex,
    /// Row of each passage's first sentence; one more entry than passages.
    starts: Vec<usize>,
}

impl SentenceVectors {
    /// Sentence vectors for passages with `counts[i]` sentences each, checked against
    /// the rows in `vectors` (read from `path`).
    pub fn new(vectors: DenseIndex, counts: &[usize], path: &Path) -> Result<Self> {
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut total = 0usize;
        starts.push(0);
        for c in counts {
            total += c;
            starts.push(total);
        }
        if total != vectors.len() {
            return Err(Error::unusable(
                path,
                IndexProblem::Damaged(format!(
                    "{} sentence vectors for {total} sentences in the passages",
                    vectors.len()
                )),
            ));
        }
        Ok(SentenceVectors { vectors, starts })
    }

    /// Cosine of each sentence of passage `ord` with `query`, in sentence order; empty
    /// for an ordinal out of range.
    pub fn similarities(&self, ord: usize, query: &[f32]) -> Vec<f32> {
        let (Some(&from), Some(&to)) = (self.starts.get(ord), self.starts.get(ord + 1)) else {
            return Vec::new();
        };
        if query.len() != self.vectors.dim() {
            return Vec::new();
        }
        (from..to)
            .map(|i| self.vectors.similarity(i, query))
            .collect()
    }

    /// Number of sentence vectors.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// True when no passage has a readable sentence.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn sentence_vectors_belong_to_their_passages_and_counts_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.f16");
        let rows = [unit(&[1.0, 0.0]), unit(&[0.0, 1.0]), unit(&[1.0, 1.0])];
        write_vectors(&path, &rows, 2).unwrap();
        // Passage 0 has two sentences, passage 1 none, passage 2 one.
        let open = || DenseIndex::open(&path, 3, 2).unwrap();
        let sentences = SentenceVectors::new(open(), &[2, 0, 1], &path).unwrap();
        let q = [1.0, 0.0];
        let first = sentences.similarities(0, &q);
        assert_eq!(first.len(), 2);
        assert!((first[0] - 1.0).abs() < 1e-3 && first[1].abs() < 1e-3);
        assert!(sentences.similarities(1, &q).is_empty());
        assert!((sentences.similarities(2, &q)[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        assert!(sentences.similarities(3, &q).is_empty());
        // Counts that do not add up to the rows: a damaged index.
        let err = SentenceVectors::new(open(), &[2, 2], &path).err().unwrap();
        assert!(
            err.to_string()
                .contains("3 sentence vectors for 4 sentences"),
            "{err}"
        );
    }

    #[test]
    fn exact_top_k_matches_brute_force_and_respects_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.f16");
        let vectors: Vec<Vec<f32>> = (0..600)
            .map(|i| {
                unit(&[
                    (i as f32).sin(),
                    (i as f32 * 0.7).cos(),
                    0.3,
                    (i % 7) as f32 * 0.1,
                ])
            })
            .collect();
        write_vectors(&path, &vectors, 4).unwrap();
        let index = DenseIndex::open(&path, 600, 4).unwrap();
        let q = unit(&[0.2, 0.9, 0.1, 0.0]);
        let hits = index.top_k(&q, 5, &|_| true);
        let mut brute: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(&q).map(|(a, b)| a * b).sum()))
            .collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (h, b) in hits.iter().zip(&brute) {
            assert!((h.score - b.1).abs() < 2e-3, "{h:?} vs {b:?}");
        }
        assert_eq!(hits.len(), 5);
        let even = index.top_k(&q, 5, &|o| o % 2 == 0);
        assert!(even.iter().all(|h| h.ord % 2 == 0));
    }

    #[test]
    fn a_truncated_vector_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.f16");
        write_vectors(&path, &[vec![1.0, 0.0], vec![0.0, 1.0]], 2).unwrap();
        assert!(DenseIndex::open(&path, 3, 2).is_err());
        assert!(write_vectors(&path, &[vec![1.0]], 2).is_err());
    }

    #[test]
    fn non_finite_vectors_are_refused_when_written_and_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.f16");
        let err = write_vectors(&path, &[vec![1.0, 0.0], vec![f32::NAN, 1.0]], 2).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert!(!path.exists(), "nothing half-written");
        // A file damaged in place with the same size: NaN bits (0x7E00) in passage 1.
        write_vectors(&path, &[vec![1.0, 0.0], vec![0.0, 1.0]], 2).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4..6].copy_from_slice(&0x7E00u16.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = DenseIndex::open(&path, 2, 2).err().unwrap();
        assert!(
            matches!(&err, Error::IndexUnusable { problem: IndexProblem::Damaged(m), .. } if m.contains("passage 1")),
            "{err}"
        );
    }

    #[test]
    fn an_open_index_survives_its_file_being_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.f16");
        write_vectors(&path, &[vec![1.0, 0.0], vec![0.0, 1.0]], 2).unwrap();
        let index = DenseIndex::open(&path, 2, 2).unwrap();
        std::fs::File::create(&path).unwrap().set_len(0).unwrap();
        let hits = index.top_k(&[0.0, 1.0], 2, &|_| true);
        assert_eq!(hits[0].ord, 1);
    }
}
