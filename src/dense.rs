//! Passage vectors on disk and exact cosine top-k over them.
//!
//! Vectors are L2-normalized, so cosine is a dot product. They are stored as
//! little-endian f16 rows (`row i` = passage `i`) and memory-mapped: a million
//! 384-dimensional passages take 768 MB on disk and nothing in RAM until read.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use half::f16;
use half::slice::HalfFloatSliceExt;
use memmap2::Mmap;
use rayon::prelude::*;

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
        for x in v {
            bytes.extend_from_slice(&f16::from_f32(*x).to_le_bytes());
        }
    }
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(&bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Memory-mapped passage vectors.
pub struct DenseIndex {
    map: Mmap,
    dim: usize,
    rows: usize,
}

impl DenseIndex {
    /// Opens a vector file, checking its size against `rows × dim`.
    pub fn open(path: &Path, rows: usize, dim: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is written once at build time into a fresh data
        // folder and never modified afterwards; a rebuild writes a new folder.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let expected = rows * dim * 2;
        if map.len() != expected || dim == 0 {
            return Err(Error::unusable(
                path,
                IndexProblem::Damaged(format!(
                    "vector file has {} bytes, expected {expected} ({rows} passages × {dim} dimensions × 2)",
                    map.len()
                )),
            ));
        }
        Ok(DenseIndex { map, dim, rows })
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
        let bytes = &self.map[i * self.dim * 2..(i + 1) * self.dim * 2];
        // f16 has alignment 2 and mmaps are page-aligned, so this cast is valid.
        let halves: &[f16] = bytemuck_cast(bytes);
        halves.convert_to_f32_slice(out);
    }

    /// The vector of passage `i`, as f32.
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.row(i, &mut out);
        out
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

fn bytemuck_cast(bytes: &[u8]) -> &[f16] {
    assert!(
        bytes.len().is_multiple_of(2)
            && (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f16>())
    );
    // SAFETY: length and alignment checked above; f16 is a plain 2-byte value
    // for which every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f16>(), bytes.len() / 2) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
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
}
