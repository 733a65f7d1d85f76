//! The one trait the rest of the library sees of an embedding model: vectors for
//! passages (at build time) and for queries (at search time), and the model's identity
//! (stored in the index manifest, so vectors from another model are never mixed in).

use super::Embedder;
use crate::error::Result;
use crate::progress::Progress;

/// Turns passages and queries into L2-normalized vectors of one model.
pub trait Encoder: Send + Sync {
    /// Stable identity of model and weights (stored with an index).
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The query's vector.
    fn encode_query(&self, query: &str) -> Result<Vec<f32>>;
    /// Several queries' vectors in input order; models that can share one forward pass
    /// among them override this (see [`super::QueryBatcher`]).
    fn encode_queries(&self, queries: &[&str]) -> Result<Vec<Vec<f32>>> {
        queries.iter().map(|q| self.encode_query(q)).collect()
    }
    /// The passages' vectors in input order, reporting progress in passages done.
    fn encode_passages(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>>;
}

/// Texts per embedding call while indexing: the embedder sorts each call's texts by
/// length, and between calls the progress bar moves.
const PASSAGES_PER_PROGRESS_STEP: usize = 64;

impl Encoder for Embedder {
    fn model_id(&self) -> &str {
        Embedder::model_id(self)
    }

    fn dim(&self) -> usize {
        Embedder::dim(self)
    }

    fn encode_query(&self, query: &str) -> Result<Vec<f32>> {
        Ok(self.embed_query(query)?)
    }

    fn encode_queries(&self, queries: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_queries(queries)?)
    }

    fn encode_passages(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(PASSAGES_PER_PROGRESS_STEP) {
            vectors.extend(self.embed_passages(chunk)?);
            progress.position(vectors.len() as u64);
        }
        Ok(vectors)
    }
}
