//! wenda (问答): retrieval-augmented question answering over Chinese reports.
//!
//! Data flows one way: [`corpus`] (reports → passages with citations) →
//! [`analysis`] (jieba) → [`lexical`] (tantivy BM25) → retrieval → answers;
//! [`collection`] adds and removes reports while the index serves.
//! See `ARCHITECTURE.md` for the whole picture.

#![warn(missing_docs, unreachable_pub)]

pub mod analysis;
pub mod corpus;
pub mod error;

pub use error::{Error, ErrorCode, IndexProblem, Result};
pub mod answer;
pub mod atomic_file;
pub mod cluster;
pub mod collection;
pub mod dense;
pub mod embed;
pub mod eval;
pub mod generate;
pub mod index;
pub mod lexical;
pub mod progress;
pub mod retrieve;
pub mod server;
