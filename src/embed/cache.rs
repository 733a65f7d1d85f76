//! Passage vectors kept by content, so that rebuilding an index embeds only the passages
//! it has not seen: adding a report to the collection embeds that report's passages and
//! takes every other vector from here.
//!
//! A vector is filed under the SHA-256 of the model id and the passage's exact text
//! ([`cache_key`]), so a changed passage, a changed chunking or another model never meets
//! a stale vector. Values are kept as the f16 the index stores, so a vector taken from
//! here is bit for bit the one the index had.
//!
//! One file per model in the index folder (`vectors-<hash of the model id>.cache`):
//!
//! ```text
//! "WENDAVC1"  u32 dim  u32 id length  model id  u64 rows
//! rows × (32-byte key, dim × f16 little-endian)
//! SHA-256 of all the bytes above
//! ```
//!
//! It is replaced atomically ([`crate::atomic_file`]) by each build, and only ever an
//! optimisation: a missing, damaged or foreign file is ignored (with a warning) and the
//! passages are embedded again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::f16;
use sha2::{Digest, Sha256};

use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};

/// First bytes of a cache file (format version 1).
const MAGIC: &[u8; 8] = b"WENDAVC1";

/// Vectors kept beyond those of the index just built (passages of removed or changed
/// reports, in case they come back). The five reports have 453 passages, about 90 each,
/// so 20,000 spare vectors remember some 200 reports, 16 MB at 384 dimensions.
pub const CACHE_SPARE_VECTORS: usize = 20_000;

/// A cache key: SHA-256 of the model id, a zero byte and the passage text.
pub type CacheKey = [u8; 32];

/// The key under which the vector of `text` by model `model_id` is kept.
pub fn cache_key(model_id: &str, text: &str) -> CacheKey {
    let mut h = Sha256::new();
    h.update(model_id.as_bytes());
    h.update([0u8]);
    h.update(text.as_bytes());
    h.finalize().into()
}

/// The cache file of `model_id` inside the index folder `root`.
pub fn cache_path(root: &Path, model_id: &str) -> PathBuf {
    let digest = Sha256::digest(model_id.as_bytes());
    root.join(format!("vectors-{}.cache", hex::encode(&digest[..8])))
}

/// A cursor over the bytes of a cache file.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "short")?,
        ))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "short")?,
        ))
    }
}

/// The passage vectors of one model, by content (see the module documentation).
pub struct VectorCache {
    model_id: String,
    dim: usize,
    /// Key → f16 values; insertion order kept in `order` for pruning.
    rows: HashMap<CacheKey, Vec<f16>>,
    order: Vec<CacheKey>,
}

impl VectorCache {
    /// An empty cache for `model_id` vectors of `dim` dimensions.
    pub fn new(model_id: &str, dim: usize) -> Self {
        VectorCache {
            model_id: model_id.to_string(),
            dim,
            rows: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The cache file of `model_id` in the index folder `root`, or an empty cache when
    /// there is none or it cannot be used (which is logged: it only costs time).
    pub fn load(root: &Path, model_id: &str, dim: usize) -> Self {
        let path = cache_path(root, model_id);
        let mut cache = Self::new(model_id, dim);
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Err(reason) = cache.read(&bytes) {
                    tracing::warn!(
                        "ignoring the vector cache {}: {reason}; its passages are embedded again",
                        path.display()
                    );
                    cache = Self::new(model_id, dim);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot read the vector cache {}: {e}", path.display()),
        }
        cache
    }

    fn read(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        if bytes.len() < MAGIC.len() + 16 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a vector cache file".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("checksum mismatch (damaged)".into());
        }
        let mut r = Bytes(&body[MAGIC.len()..]);
        let dim = r.u32()? as usize;
        let id_len = r.u32()? as usize;
        let id = r.take(id_len)?;
        if id != self.model_id.as_bytes() || dim != self.dim {
            return Err(format!(
                "it holds vectors of another model or dimension ({}, {dim})",
                String::from_utf8_lossy(id)
            ));
        }
        let rows = r.u64()? as usize;
        let row_bytes = 32 + dim * 2;
        if rows.checked_mul(row_bytes) != Some(r.0.len()) {
            return Err(format!("{rows} rows do not fill {} bytes", r.0.len()));
        }
        let mut loaded = Vec::with_capacity(rows);
        for _ in 0..rows {
            let row = r.take(row_bytes)?;
            let key: CacheKey = row[..32].try_into().map_err(|_| "short key")?;
            let values: Vec<f16> = row[32..]
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err("a vector has a non-finite value".into());
            }
            loaded.push((key, values));
        }
        for (key, values) in loaded {
            self.put(key, values);
        }
        Ok(())
    }

    fn put(&mut self, key: CacheKey, values: Vec<f16>) {
        if self.rows.insert(key, values).is_none() {
            self.order.push(key);
        }
    }

    /// Number of vectors held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no vector is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The vector of `text`, if held.
    pub fn get(&self, text: &str) -> Option<Vec<f32>> {
        self.rows
            .get(&cache_key(&self.model_id, text))
            .map(|v| v.iter().map(|x| x.to_f32()).collect())
    }

    /// Keeps the vector of `text` (as the f16 the index stores); a vector of the wrong
    /// length or with a non-finite value is not kept.
    pub fn insert(&mut self, text: &str, vector: &[f32]) {
        let values: Vec<f16> = vector.iter().map(|x| f16::from_f32(*x)).collect();
        if values.len() == self.dim && values.iter().all(|v| v.is_finite()) {
            self.put(cache_key(&self.model_id, text), values);
        }
    }

    /// Writes the cache into the index folder `root` (atomically): first the vectors of
    /// `keep` (the passages of the index just built), then up to [`CACHE_SPARE_VECTORS`]
    /// others, most recently added first.
    pub fn save(&self, root: &Path, keep: &[&str]) -> Result<()> {
        let keep: Vec<CacheKey> = keep.iter().map(|t| cache_key(&self.model_id, t)).collect();
        let kept: std::collections::HashSet<&CacheKey> = keep.iter().collect();
        let mut keys: Vec<&CacheKey> = Vec::with_capacity(self.rows.len());
        let mut seen = std::collections::HashSet::new();
        for k in &keep {
            if self.rows.contains_key(k) && seen.insert(k) {
                keys.push(k);
            }
        }
        keys.extend(
            self.order
                .iter()
                .rev()
                .filter(|k| !kept.contains(k))
                .take(CACHE_SPARE_VECTORS),
        );
        let mut bytes = Vec::with_capacity(64 + keys.len() * (32 + self.dim * 2));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.dim as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.model_id.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.model_id.as_bytes());
        bytes.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for k in keys {
            bytes.extend_from_slice(k);
            for v in &self.rows[k] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        let path = cache_path(root, &self.model_id);
        write_atomic(&path, &bytes).map_err(|e| Error::io(e.path, e.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_back_by_text_and_model_and_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = VectorCache::new("m", 2);
        cache.insert("甲", &[0.6, 0.8]);
        cache.insert("乙", &[1.0, 0.0]);
        cache.insert("bad", &[f32::NAN, 0.0]);
        cache.insert("short", &[1.0]);
        assert_eq!(cache.len(), 2);
        cache.save(dir.path(), &["乙"]).unwrap();

        let loaded = VectorCache::load(dir.path(), "m", 2);
        assert_eq!(loaded.len(), 2);
        // f16 of 0.6 or 0.8 is not 0.6 or 0.8: what comes back is what the index stores.
        let f16_of = |x: f32| f16::from_f32(x).to_f32();
        assert_eq!(loaded.get("甲").unwrap(), vec![f16_of(0.6), f16_of(0.8)]);
        assert_eq!(loaded.get("乙").unwrap(), vec![1.0, 0.0]);
        assert!(loaded.get("丙").is_none());
        // Another model (other file) or another dimension finds nothing.
        assert!(VectorCache::load(dir.path(), "other", 2).is_empty());
        std::fs::copy(cache_path(dir.path(), "m"), cache_path(dir.path(), "x")).unwrap();
        assert!(VectorCache::load(dir.path(), "x", 2).is_empty());
        assert!(VectorCache::load(dir.path(), "m", 3).is_empty());
    }

    #[test]
    fn a_damaged_cache_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = VectorCache::new("m", 2);
        cache.insert("甲", &[0.6, 0.8]);
        cache.save(dir.path(), &["甲"]).unwrap();
        let path = cache_path(dir.path(), "m");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(VectorCache::load(dir.path(), "m", 2).is_empty());
        std::fs::write(&path, &bytes[..n / 2]).unwrap();
        assert!(VectorCache::load(dir.path(), "m", 2).is_empty());
    }

    #[test]
    fn saving_keeps_the_index_vectors_and_a_bounded_number_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = VectorCache::new("m", 1);
        for i in 0..CACHE_SPARE_VECTORS + 10 {
            cache.insert(&format!("t{i}"), &[1.0]);
        }
        cache.save(dir.path(), &["t0", "t1"]).unwrap();
        let loaded = VectorCache::load(dir.path(), "m", 1);
        assert_eq!(loaded.len(), CACHE_SPARE_VECTORS + 2);
        assert!(loaded.get("t0").is_some() && loaded.get("t1").is_some());
        // The oldest others go first.
        assert!(loaded.get("t2").is_none());
        assert!(
            loaded
                .get(&format!("t{}", CACHE_SPARE_VECTORS + 9))
                .is_some()
        );
    }
}
