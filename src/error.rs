//! The library's one error type, so callers (CLI, server, tests) match on a
//! single enum whose messages say what went wrong, where, and what to do.

use std::path::PathBuf;

use crate::embed::EmbedError;
use crate::eval::EvalError;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The corpus folder or its catalog is missing or inconsistent.
    #[error("corpus: {0}")]
    Corpus(String),
    /// A query was rejected before search (empty, too long, bad `k`, unknown mode).
    #[error("{message}")]
    InvalidQuery {
        /// Machine-readable reason, e.g. `empty_query`, `bad_k`, `unknown_mode`.
        code: &'static str,
        /// A sentence the user can act on.
        message: String,
    },
    /// The index on disk is missing, stale or corrupt and this command may not rebuild it.
    #[error("index at {path}: {reason}; run `wenda index` to build it")]
    IndexUnusable {
        /// The index folder.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// tantivy failed while building or searching the lexical index.
    #[error("lexical index: {0}")]
    Lexical(#[from] tantivy::TantivyError),
    /// A problem with the embedding model or its files.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A problem with an evaluation set.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A requested document or span does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::InvalidQuery`].
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidQuery {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
