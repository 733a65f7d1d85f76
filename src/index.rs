//! The on-disk index folder: a manifest, and one data folder holding the
//! passages, the tantivy index and the passage vectors.
//!
//! ```text
//! index/
//!   manifest.json        fingerprint, settings, model, counts, data folder name
//!   manifest.next.json   a staged build, while a collection change commits (see below)
//!   vectors-<id>.cache   passage vectors by content, one file per model (embed::cache)
//!   data-<stamp>/
//!     passages.jsonl     passage text + citation, line i = ordinal i
//!     vocabulary.txt     the collection's words added to jieba (analysis::Vocabulary)
//!     tantivy/           the lexical index
//!     vectors.f16        passage vectors, row i = ordinal i
//!     sentences.f16      vectors of each passage's readable sentences, in order
//! ```
//!
//! A build writes a new data folder and then replaces `manifest.json`
//! atomically (write + rename), so a failed or interrupted build never
//! damages the index already there. Readers compare the manifest with the
//! current corpus, analysis settings and model, and refuse a stale index.
//!
//! Passage vectors come from the [`VectorCache`] (and the index being replaced) when the
//! same model already embedded the same text, so a rebuild embeds only new or changed
//! passages; the BM25 index is always rebuilt whole (about a second for 500 passages).
//!
//! A build happens in two steps, [`stage`] and [`StagedBuild::commit`], so that a change
//! of the corpus can commit between them ([`crate::collection`]): the staged build's
//! manifest is written as `manifest.next.json`, and a reader whose `manifest.json` does
//! not match the corpus takes `manifest.next.json` when that one does. The corpus's
//! catalog is thus the one commit point of an addition or removal: before it is written
//! the old corpus and index serve, after it the new ones.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::analysis::{
    ANALYZER_VERSION, Analyzer, VOCABULARY_FILE, VOCABULARY_RULES_VERSION, Vocabulary,
};
use crate::atomic_file::rename_durable;
use crate::atomic_file::write_atomic;
use crate::corpus::{Passage, SENTENCE_RULES_VERSION, chunker_settings, readable_sentences};
use crate::dense::{DenseIndex, SentenceVectors, write_vectors};
use crate::embed::{Encoder, VectorCache};
use crate::error::{Error, IndexProblem, Result};
use crate::lexical::{LexicalIndex, REPORT_BOOST, SECTION_BOOST};
use crate::progress::Progress;

/// Version of the on-disk layout; a different version is rebuilt.
pub const FORMAT_VERSION: u32 = 4;

/// The manifest's file name inside the index folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest of a staged build (see the module documentation).
pub const NEXT_MANIFEST_FILE: &str = "manifest.next.json";

/// What an index was built from; compared on open to detect staleness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Digest of the corpus files and catalog.
    pub corpus_fingerprint: String,
    /// Analysis and chunking settings the index was built with.
    pub settings: String,
    /// Identity of the embedding model, when vectors were computed.
    pub model_id: Option<String>,
    /// Vector dimension (0 without vectors).
    pub dim: usize,
    /// Number of passages.
    pub passages: usize,
    /// Number of sentence vectors (0 without vectors).
    #[serde(default)]
    pub sentences: usize,
    /// Name of the data folder inside the index folder.
    pub data_dir: String,
    /// Seconds since the Unix epoch when the build finished.
    pub built_at: u64,
    /// Wall time of the build in seconds.
    pub build_seconds: f64,
    /// SHA-256 of our own data files (`passages.jsonl`, `vocabulary.txt`, `vectors.f16`,
    /// `sentences.f16`), checked at
    /// open; tantivy checks its own files. Absent in layout-1 manifests, which then fail
    /// the format-version check with that message rather than as "corrupt".
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// Passages this build embedded; the other vectors came from the vector cache.
    #[serde(default)]
    pub embedded: usize,
}

/// The analysis, chunking and ranking settings an index depends on.
pub fn current_settings() -> String {
    format!(
        "{ANALYZER_VERSION}; {VOCABULARY_RULES_VERSION}; {}; section_boost={SECTION_BOOST}; report_boost={REPORT_BOOST}; {SENTENCE_RULES_VERSION}",
        chunker_settings()
    )
}

/// What an index must match to be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Fingerprint of the corpus now on disk.
    pub corpus_fingerprint: String,
    /// Model that query vectors will come from (None: lexical only).
    pub model_id: Option<String>,
}

/// An index opened from disk, ready for retrieval.
pub struct StoredIndex {
    /// The manifest it was opened with.
    pub manifest: Manifest,
    /// All passages, ordinal order.
    pub passages: Vec<Passage>,
    /// BM25 index.
    pub lexical: LexicalIndex,
    /// The collection's words added to jieba for this index.
    pub vocabulary: Vocabulary,
    /// Passage vectors, when the index has them.
    pub dense: Option<DenseIndex>,
    /// Sentence vectors, when the index has passage vectors.
    pub sentences: Option<SentenceVectors>,
    /// The data folder.
    pub data_dir: PathBuf,
}

/// Reads the manifest and says why the index cannot serve `expected`, if so. A staged
/// build that matches `expected` serves when the manifest does not (see the module
/// documentation).
pub fn check(root: &Path, expected: &Expectation) -> std::result::Result<Manifest, IndexProblem> {
    match check_file(root, MANIFEST_FILE, expected) {
        Ok(m) => Ok(m),
        Err(problem) => match check_file(root, NEXT_MANIFEST_FILE, expected) {
            Ok(next) => Ok(next),
            Err(_) => Err(problem),
        },
    }
}

/// Makes a staged build that matches `expected` the index proper when `manifest.json`
/// does not match (an interrupted change whose corpus committed), and removes any other
/// staged build. Called with the build lock held.
fn settle_locked(root: &Path, expected: &Expectation) -> Result<()> {
    let next = root.join(NEXT_MANIFEST_FILE);
    if !next.exists() {
        return Ok(());
    }
    if check_file(root, MANIFEST_FILE, expected).is_err()
        && check_file(root, NEXT_MANIFEST_FILE, expected).is_ok()
    {
        tracing::info!(
            "completing an interrupted change of the index at {}",
            root.display()
        );
        return rename_durable(&next, &root.join(MANIFEST_FILE))
            .map_err(|e| Error::io(e.path, e.source));
    }
    std::fs::remove_file(&next).map_err(|e| Error::io(&next, e))
}

/// `settle_locked` under the index folder's build lock.
pub fn settle(root: &Path, expected: &Expectation) -> Result<()> {
    if !root.join(NEXT_MANIFEST_FILE).exists() {
        return Ok(());
    }
    let _lock = lock_for_build(root)?;
    settle_locked(root, expected)
}

fn check_file(
    root: &Path,
    name: &str,
    expected: &Expectation,
) -> std::result::Result<Manifest, IndexProblem> {
    let path = root.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(IndexProblem::Missing),
        Err(e) => {
            return Err(IndexProblem::Damaged(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| IndexProblem::Damaged(format!("{} is corrupt ({e})", path.display())))?;
    if !is_data_dir_name(&manifest.data_dir) {
        return Err(IndexProblem::Damaged(format!(
            "{} names the data folder {:?}, which is not a data-<stamp> folder inside the index",
            path.display(),
            manifest.data_dir
        )));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(IndexProblem::FormatVersion {
            found: manifest.format_version,
            expected: FORMAT_VERSION,
        });
    }
    if manifest.corpus_fingerprint != expected.corpus_fingerprint {
        return Err(IndexProblem::StaleCorpus);
    }
    if manifest.settings != current_settings() {
        return Err(IndexProblem::Settings {
            found: manifest.settings,
            expected: current_settings(),
        });
    }
    if let Some(model) = &expected.model_id
        && manifest.model_id.as_deref() != Some(model.as_str())
    {
        return Err(IndexProblem::Model {
            found: manifest.model_id.unwrap_or_else(|| "none".into()),
            expected: model.clone(),
        });
    }
    Ok(manifest)
}

/// Opens the index at `root` if it matches `expected`; otherwise an
/// [`Error::IndexUnusable`] saying why and which command rebuilds it.
pub fn open(root: &Path, expected: &Expectation) -> Result<StoredIndex> {
    let damaged = |reason: String| Error::unusable(root, IndexProblem::Damaged(reason));
    let manifest = check(root, expected).map_err(|p| Error::unusable(root, p))?;
    let data_dir = root.join(&manifest.data_dir);
    let mut files = read_data_files(&data_dir).map_err(|e| damaged(e.to_string()))?;
    let found = checksums_of(&files);
    if found != manifest.checksums {
        let changed: Vec<&str> = manifest
            .checksums
            .keys()
            .chain(found.keys())
            .filter(|k| manifest.checksums.get(*k) != found.get(*k))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(damaged(format!(
            "{} changed since the build (checksum mismatch)",
            changed.join(", ")
        )));
    }
    let passages_path = data_dir.join("passages.jsonl");
    let passages = parse_passages(
        &files.remove("passages.jsonl").unwrap_or_default(),
        &passages_path,
    )
    .map_err(|e| damaged(format!("passages unreadable: {e}")))?;
    if passages.len() != manifest.passages {
        return Err(damaged(format!(
            "manifest says {} passages, passages.jsonl has {}",
            manifest.passages,
            passages.len()
        )));
    }
    let vocabulary_path = data_dir.join(VOCABULARY_FILE);
    let vocabulary = std::str::from_utf8(&files.remove(VOCABULARY_FILE).unwrap_or_default())
        .map_err(|e| {
            Error::io(
                &vocabulary_path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
        .and_then(|text| Vocabulary::from_file_text(text, &vocabulary_path))
        .map_err(|e| damaged(format!("vocabulary unreadable: {e}")))?;
    let analyzer = Analyzer::with_vocabulary(&vocabulary);
    let lexical = LexicalIndex::open(&data_dir.join("tantivy"), &analyzer)
        .map_err(|e| damaged(format!("lexical index is corrupt: {e}")))?;
    if lexical.len() as usize != passages.len() {
        return Err(damaged(format!(
            "lexical index has {} documents for {} passages",
            lexical.len(),
            passages.len()
        )));
    }
    let (dense, sentences) = if manifest.model_id.is_some() {
        let dense = DenseIndex::from_bytes(
            &files.remove("vectors.f16").unwrap_or_default(),
            passages.len(),
            manifest.dim,
            &data_dir.join("vectors.f16"),
        )
        .map_err(|e| damaged(e.to_string()))?;
        let path = data_dir.join("sentences.f16");
        let vectors = DenseIndex::from_bytes(
            &files.remove("sentences.f16").unwrap_or_default(),
            manifest.sentences,
            manifest.dim,
            &path,
        )
        .map_err(|e| damaged(e.to_string()))?;
        let counts: Vec<usize> = passages
            .iter()
            .map(|p| readable_sentences(&p.text).len())
            .collect();
        let sentences =
            SentenceVectors::new(vectors, &counts, &path).map_err(|e| damaged(e.to_string()))?;
        (Some(dense), Some(sentences))
    } else {
        (None, None)
    };
    Ok(StoredIndex {
        manifest,
        passages,
        lexical,
        vocabulary,
        dense,
        sentences,
        data_dir,
    })
}

/// Builds a complete index for `passages` under `root` and switches the
/// manifest to it; the previous data folder is removed only afterwards.
pub fn build(
    root: &Path,
    passages: &[Passage],
    report_labels: &HashMap<String, String>,
    corpus_fingerprint: &str,
    encoder: Option<&dyn Encoder>,
    progress: &dyn Progress,
) -> Result<StoredIndex> {
    stage(
        root,
        passages,
        report_labels,
        corpus_fingerprint,
        encoder,
        progress,
    )?
    .commit()
}

/// A complete index written beside the one in use, not yet switched to: its manifest
/// is `manifest.next.json`. Holds the build lock until committed or dropped; dropped
/// without [`StagedBuild::commit`], it is removed again.
pub struct StagedBuild {
    root: PathBuf,
    manifest: Manifest,
    committed: bool,
    _lock: std::fs::File,
}

/// Builds a complete index for `passages` under `root` without switching to it (see
/// [`StagedBuild`]): passage vectors come from the vector cache where the same model
/// embedded the same text before, the others are embedded and added to the cache.
pub fn stage(
    root: &Path,
    passages: &[Passage],
    report_labels: &HashMap<String, String>,
    corpus_fingerprint: &str,
    encoder: Option<&dyn Encoder>,
    progress: &dyn Progress,
) -> Result<StagedBuild> {
    let started = Instant::now();
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let lock = lock_for_build(root)?;
    let next = root.join(NEXT_MANIFEST_FILE);
    if next.exists() {
        // A staged build of a change that never committed (or one this build replaces).
        std::fs::remove_file(&next).map_err(|e| Error::io(&next, e))?;
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let data_name = format!("data-{stamp:x}");
    let data_dir = root.join(&data_name);
    tracing::info!(
        "building the index of {} passages in {}",
        passages.len(),
        data_dir.display()
    );
    let result = build_data(root, &data_dir, passages, report_labels, encoder, progress);
    let vectors = match result {
        Ok(v) => v,
        Err(e) => {
            // Leave the previous index untouched; drop the half-built folder.
            let _ = std::fs::remove_dir_all(&data_dir);
            return Err(e);
        }
    };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        corpus_fingerprint: corpus_fingerprint.to_string(),
        settings: current_settings(),
        model_id: vectors.model_id,
        dim: vectors.dim,
        passages: passages.len(),
        sentences: vectors.sentences,
        data_dir: data_name,
        built_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        build_seconds: started.elapsed().as_secs_f64(),
        checksums: checksums_of(&read_data_files(&data_dir)?),
        embedded: vectors.embedded,
    };
    let staged = StagedBuild {
        root: root.to_path_buf(),
        manifest,
        committed: false,
        _lock: lock,
    };
    write_manifest_file(&next, &staged.manifest)?;
    Ok(staged)
}

impl StagedBuild {
    /// The manifest the index will have.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Switches the index to this build (renames `manifest.next.json` over
    /// `manifest.json`), removes the data folders of older builds and opens it.
    pub fn commit(mut self) -> Result<StoredIndex> {
        let root = self.root.clone();
        rename_durable(&root.join(NEXT_MANIFEST_FILE), &root.join(MANIFEST_FILE))
            .map_err(|e| Error::io(e.path, e.source))?;
        self.committed = true;
        remove_other_data_dirs(&root, &self.manifest.data_dir);
        let expected = Expectation {
            corpus_fingerprint: self.manifest.corpus_fingerprint.clone(),
            model_id: self.manifest.model_id.clone(),
        };
        // A fresh build that does not open is a fault of the build, not a stale index.
        open(&root, &expected).map_err(|e| match e {
            Error::IndexUnusable { path, problem } => Error::IndexBuild {
                path,
                reason: format!("the new index does not open: {problem}"),
            },
            other => other,
        })
    }
}

#[cfg(test)]
impl StagedBuild {
    /// What a killed process leaves: the staged build stays on disk, the lock goes.
    pub(crate) fn abandon(mut self) {
        self.committed = true;
    }
}

impl Drop for StagedBuild {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(self.root.join(NEXT_MANIFEST_FILE));
            let _ = std::fs::remove_dir_all(self.root.join(&self.manifest.data_dir));
        }
    }
}

/// What [`build_data`] wrote of vectors.
struct BuiltVectors {
    model_id: Option<String>,
    dim: usize,
    /// Sentence vectors written.
    sentences: usize,
    /// Passages and sentences the model embedded (the rest came from the cache).
    embedded: usize,
}

fn build_data(
    root: &Path,
    data_dir: &Path,
    passages: &[Passage],
    report_labels: &HashMap<String, String>,
    encoder: Option<&dyn Encoder>,
    progress: &dyn Progress,
) -> Result<BuiltVectors> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    write_passages(&data_dir.join("passages.jsonl"), passages)?;
    let vocabulary = Vocabulary::discover(
        passages.iter().map(|p| p.text.as_str()),
        report_labels.values().map(String::as_str),
    );
    tracing::info!(
        "vocabulary: {} words added to jieba ({})",
        vocabulary.len(),
        data_dir.join(VOCABULARY_FILE).display()
    );
    std::fs::write(data_dir.join(VOCABULARY_FILE), vocabulary.to_file_text())
        .map_err(|e| Error::io(data_dir.join(VOCABULARY_FILE), e))?;
    progress.stage("BM25 index", passages.len() as u64);
    let analyzer = Analyzer::with_vocabulary(&vocabulary);
    LexicalIndex::build(
        &data_dir.join("tantivy"),
        passages,
        report_labels,
        &analyzer,
        &|n| progress.position(n as u64),
    )?;
    progress.finish();
    let Some(encoder) = encoder else {
        return Ok(BuiltVectors {
            model_id: None,
            dim: 0,
            sentences: 0,
            embedded: 0,
        });
    };
    let (model_id, dim) = (encoder.model_id(), encoder.dim());
    let mut cache = VectorCache::load(root, model_id, dim);
    add_index_vectors(root, &mut cache, model_id, dim);
    let passage_texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let sentences: Vec<String> = passages
        .iter()
        .flat_map(|p| readable_sentences(&p.text))
        .collect();
    let sentence_texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let mut embedded = 0;
    let mut vectors_of = |texts: &[&str], what: &str| -> Result<Vec<Vec<f32>>> {
        let (vectors, fresh) =
            embed_with_cache(&mut cache, encoder, texts, what, data_dir, progress)?;
        embedded += fresh;
        Ok(vectors)
    };
    let vectors = vectors_of(&passage_texts, "passage")?;
    write_vectors(&data_dir.join("vectors.f16"), &vectors, dim)?;
    let vectors = vectors_of(&sentence_texts, "sentence")?;
    write_vectors(&data_dir.join("sentences.f16"), &vectors, dim)?;
    let keep: Vec<&str> = passage_texts
        .iter()
        .chain(&sentence_texts)
        .copied()
        .collect();
    cache.save(root, &keep)?;
    Ok(BuiltVectors {
        model_id: Some(model_id.to_string()),
        dim,
        sentences: sentences.len(),
        embedded,
    })
}

/// The vector of each of `texts` (passage texts or sentences, embedded alike): from
/// `cache` when there, else from the model (then added to the cache). Also returns how
/// many distinct texts the model embedded.
fn embed_with_cache(
    cache: &mut VectorCache,
    encoder: &dyn Encoder,
    texts: &[&str],
    what: &str,
    data_dir: &Path,
    progress: &dyn Progress,
) -> Result<(Vec<Vec<f32>>, usize)> {
    let mut missing: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in texts {
        if cache.get(t).is_none() && seen.insert(*t) {
            missing.push(t);
        }
    }
    tracing::info!(
        "embedding {} new {what}s ({} of {} from the vector cache)",
        missing.len(),
        texts.iter().filter(|t| !seen.contains(*t)).count(),
        texts.len()
    );
    progress.stage(&format!("{what} vectors"), missing.len() as u64);
    let fresh = encoder.encode_passages(&missing, progress)?;
    progress.finish();
    if fresh.len() != missing.len() {
        return Err(Error::IndexBuild {
            path: data_dir.to_path_buf(),
            reason: format!(
                "the model returned {} vectors for {} {what}s",
                fresh.len(),
                missing.len()
            ),
        });
    }
    for (text, vector) in missing.iter().zip(&fresh) {
        cache.insert(text, vector);
    }
    let mut vectors = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        // A vector the cache refused (wrong length, not finite) is written as the model
        // gave it, so write_vectors reports it.
        let v = cache.get(t).or_else(|| {
            missing
                .iter()
                .position(|m| m == t)
                .map(|j| fresh[j].clone())
        });
        vectors.push(v.ok_or_else(|| Error::IndexBuild {
            path: data_dir.to_path_buf(),
            reason: format!("no vector for {what} {i}"),
        })?);
    }
    Ok((vectors, missing.len()))
}

/// Adds the vectors of the index now in `root` to `cache` when they come from the same
/// model: an index built before the cache existed (or whose cache file was lost) still
/// spares its passages the embedding. Anything unreadable is simply skipped.
fn add_index_vectors(root: &Path, cache: &mut VectorCache, model_id: &str, dim: usize) {
    let Ok(manifest) = read_manifest(root) else {
        return;
    };
    // Layout 2 stored passage vectors as layout 3 does (it lacked sentence vectors).
    if manifest.model_id.as_deref() != Some(model_id)
        || manifest.dim != dim
        || !(2..=FORMAT_VERSION).contains(&manifest.format_version)
        || !is_data_dir_name(&manifest.data_dir)
    {
        return;
    }
    let data_dir = root.join(&manifest.data_dir);
    let Ok(mut files) = read_data_files(&data_dir) else {
        return;
    };
    if checksums_of(&files) != manifest.checksums {
        return;
    }
    let passages_path = data_dir.join("passages.jsonl");
    let Ok(passages) = parse_passages(
        &files.remove("passages.jsonl").unwrap_or_default(),
        &passages_path,
    ) else {
        return;
    };
    let Ok(vectors) = DenseIndex::from_bytes(
        &files.remove("vectors.f16").unwrap_or_default(),
        passages.len(),
        dim,
        &data_dir.join("vectors.f16"),
    ) else {
        return;
    };
    let seed = |cache: &mut VectorCache, texts: &[&str], vectors: &DenseIndex| {
        for (i, text) in texts.iter().enumerate() {
            if cache.get(text).is_none() {
                cache.insert(text, &vectors.vector(i));
            }
        }
    };
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    seed(cache, &texts, &vectors);
    // Sentence vectors line up with today's sentences only under the same rules.
    if manifest.sentences == 0 || manifest.settings != current_settings() {
        return;
    }
    let sentences: Vec<String> = passages
        .iter()
        .flat_map(|p| readable_sentences(&p.text))
        .collect();
    let Ok(vectors) = DenseIndex::from_bytes(
        &files.remove("sentences.f16").unwrap_or_default(),
        sentences.len(),
        dim,
        &data_dir.join("sentences.f16"),
    ) else {
        return;
    };
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    seed(cache, &texts, &vectors);
}

/// Name of the lock file that one build at a time holds in the index folder.
pub const LOCK_FILE: &str = ".build.lock";

/// Takes the index folder's build lock (released when the returned file is dropped, or
/// by the system when the process dies), or says that another build holds it.
fn lock_for_build(root: &Path) -> Result<std::fs::File> {
    let path = root.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::IndexBuild {
            path: root.to_path_buf(),
            reason: format!(
                "another build of this index is running (it holds {}); wait for it to finish",
                path.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// True for a data folder name this code writes: `data-` and a hexadecimal stamp, so a
/// manifest can never point outside the index folder.
pub fn is_data_dir_name(name: &str) -> bool {
    name.strip_prefix("data-")
        .is_some_and(|stamp| !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Names of the entries of `root` that begin with `data-` (tests count leftovers).
#[cfg(test)]
pub(crate) fn data_dir_names(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data-"))
        .collect()
}

/// Removes every data folder of `root` except `keep`: the one replaced by this build and
/// any left behind by builds that were killed. Called with the build lock held.
fn remove_other_data_dirs(root: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name != keep && is_data_dir_name(name) && entry.path().is_dir() {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!("removed old index data {}", entry.path().display()),
                Err(e) => tracing::warn!("could not remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Our data files in a data folder, whose checksums the manifest keeps.
const CHECKED_FILES: [&str; 4] = [
    "passages.jsonl",
    VOCABULARY_FILE,
    "vectors.f16",
    "sentences.f16",
];

/// The bytes of each of [`CHECKED_FILES`] present in `data_dir`, read once: they are
/// checksummed and then parsed from memory.
fn read_data_files(data_dir: &Path) -> Result<BTreeMap<&'static str, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for name in CHECKED_FILES {
        let path = data_dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                files.insert(name, bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(files)
}

/// SHA-256 (hex) of each file read by [`read_data_files`].
fn checksums_of(files: &BTreeMap<&'static str, Vec<u8>>) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    files
        .iter()
        .map(|(name, bytes)| (name.to_string(), hex::encode(Sha256::digest(bytes))))
        .collect()
}

/// Reads the manifest without checking it.
pub fn read_manifest(root: &Path) -> Result<Manifest> {
    let path = root.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::unusable(
            root,
            IndexProblem::Damaged(format!("{MANIFEST_FILE} is corrupt ({e})")),
        )
    })
}

#[cfg(test)]
fn write_manifest(root: &Path, manifest: &Manifest) -> Result<()> {
    write_manifest_file(&root.join(MANIFEST_FILE), manifest)
}

fn write_manifest_file(path: &Path, manifest: &Manifest) -> Result<()> {
    let path = path.to_path_buf();
    let json = serde_json::to_string_pretty(manifest).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, json.as_bytes()).map_err(|e| Error::io(e.path, e.source))
}

fn write_passages(path: &Path, passages: &[Passage]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    for p in passages {
        let line = serde_json::to_string(p).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        writeln!(out, "{line}").map_err(|e| Error::io(path, e))?;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// Parses `passages.jsonl` (one passage a line, ordinal order) read from `path`.
fn parse_passages(bytes: &[u8], path: &Path) -> Result<Vec<Passage>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::unusable(path, IndexProblem::Damaged(format!("not UTF-8: {e}"))))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                Error::unusable(
                    path,
                    IndexProblem::Damaged(format!("line {} is not a passage: {e}", i + 1)),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Citation;
    use crate::progress::NoProgress;

    /// A BM25-only build of [`passages`] for the corpus fingerprint "abc".
    fn build_plain(root: &Path) -> Result<StoredIndex> {
        build(root, &passages(), &HashMap::new(), "abc", None, &NoProgress)
    }

    fn passages() -> Vec<Passage> {
        ["大模型在医疗行业的应用", "金融行业的智能客服，如京东“言犀”"]
            .iter()
            .enumerate()
            .map(|(i, t)| Passage {
                id: format!("p{i}"),
                text: t.to_string(),
                citation: Citation {
                    source: "a.txt".into(),
                    title: "t".into(),
                    section: String::new(),
                    line_start: 1,
                    line_end: 1,
                    char_start: 0,
                    char_end: 3,
                },
            })
            .collect()
    }

    fn expect(fp: &str) -> Expectation {
        Expectation {
            corpus_fingerprint: fp.into(),
            model_id: None,
        }
    }

    #[test]
    fn missing_stale_and_corrupt_indexes_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let err = open(root, &expect("abc")).err().unwrap().to_string();
        assert!(
            err.contains("no index") && err.contains("wenda index"),
            "{err}"
        );

        build_plain(root).unwrap();
        assert_eq!(open(root, &expect("abc")).unwrap().passages.len(), 2);
        let stale = open(root, &expect("xyz")).err().unwrap().to_string();
        assert!(stale.contains("stale"), "{stale}");
        let with_model = Expectation {
            corpus_fingerprint: "abc".into(),
            model_id: Some("m".into()),
        };
        assert!(
            open(root, &with_model)
                .err()
                .unwrap()
                .to_string()
                .contains("model")
        );

        std::fs::write(root.join(MANIFEST_FILE), "{not json").unwrap();
        let corrupt = open(root, &expect("abc")).err().unwrap().to_string();
        assert!(corrupt.contains("corrupt"), "{corrupt}");
    }

    #[test]
    fn a_failed_rebuild_keeps_the_previous_index() {
        struct Failing;
        impl Encoder for Failing {
            fn model_id(&self) -> &str {
                "m"
            }
            fn encode_query(&self, _: &str) -> Result<Vec<f32>> {
                unreachable!("builds encode no queries")
            }
            fn dim(&self) -> usize {
                2
            }
            fn encode_passages(&self, _: &[&str], _: &dyn Progress) -> Result<Vec<Vec<f32>>> {
                Err(Error::IndexBuild {
                    path: "vectors".into(),
                    reason: "model exploded".into(),
                })
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        build_plain(root).unwrap();
        assert!(
            build(
                root,
                &passages(),
                &HashMap::new(),
                "def",
                Some(&Failing),
                &NoProgress
            )
            .is_err()
        );
        let kept = open(root, &expect("abc")).unwrap();
        assert_eq!(kept.passages.len(), 2);
        let data_dirs = data_dir_names(root).len();
        assert_eq!(data_dirs, 1);
    }

    #[test]
    fn a_manifest_pointing_outside_the_index_is_refused_and_nothing_outside_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("index");
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "mine").unwrap();
        build_plain(&root).unwrap();
        let mut manifest = read_manifest(&root).unwrap();
        manifest.data_dir = format!("{}/../../elsewhere", manifest.data_dir);
        write_manifest(&root, &manifest).unwrap();
        let err = open(&root, &expect("abc")).err().unwrap().to_string();
        assert!(err.contains("not a data-<stamp> folder"), "{err}");
        // A rebuild replaces the bad manifest and leaves the other folder alone.
        build_plain(&root).unwrap();
        assert!(outside.join("keep.txt").exists());
        assert!(open(&root, &expect("abc")).is_ok());
        for bad in ["data-", "data-xyz", "../data-1", "data-1/..", "tantivy"] {
            assert!(!is_data_dir_name(bad), "{bad}");
        }
        assert!(is_data_dir_name("data-18c0ffee"));
    }

    #[test]
    fn a_build_removes_data_folders_left_by_killed_builds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        build_plain(root).unwrap();
        // What a build killed before its manifest switch leaves behind.
        std::fs::create_dir_all(root.join("data-deadbeef/tantivy")).unwrap();
        build_plain(root).unwrap();
        let data_dirs = data_dir_names(root);
        assert_eq!(data_dirs, vec![read_manifest(root).unwrap().data_dir]);
    }

    #[test]
    fn a_second_build_of_the_same_folder_is_refused_while_one_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let held = lock_for_build(root).unwrap();
        let err = build_plain(root).err().unwrap().to_string();
        assert!(err.contains("another build"), "{err}");
        drop(held);
        build_plain(root).unwrap();
    }

    #[test]
    fn a_data_file_changed_after_the_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let built = build_plain(root).unwrap();
        let path = built.data_dir.join("passages.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        // Same length, still valid JSON: only the checksum can tell.
        std::fs::write(&path, text.replace("医疗", "金融")).unwrap();
        let err = open(root, &expect("abc")).err().unwrap().to_string();
        assert!(err.contains("passages.jsonl changed"), "{err}");
    }

    #[test]
    fn the_vocabulary_is_built_with_the_index_and_guarded_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let built = build_plain(root).unwrap();
        let path = built.data_dir.join(VOCABULARY_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("言犀 quoted"), "{text}");
        assert!(
            built
                .lexical
                .analyzer()
                .analyze("言犀")
                .iter()
                .any(|t| t.text == "言犀")
        );
        assert!(current_settings().contains(VOCABULARY_RULES_VERSION));
        // A word slipped into the file would change the analysis: refused.
        std::fs::write(&path, format!("{text}大模 quoted\n")).unwrap();
        let err = open(root, &expect("abc")).err().unwrap().to_string();
        assert!(err.contains("vocabulary.txt changed"), "{err}");
    }
}
