//! The library's one error type, so callers (CLI, server, tests) match on a
//! single enum whose messages say what went wrong, where, and what to do.

use std::path::PathBuf;

use crate::embed::EmbedError;
use crate::eval::EvalError;

/// Machine-readable reason of a rejected request: the `code` of an error reply, so that
/// clients can branch on it; [`ErrorCode::as_str`] is its wire form (serde and the
/// OpenAPI document use the same snake_case names; a unit test holds them together).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(description = "Machine-readable reason of an error reply, for clients to branch on.")]
pub enum ErrorCode {
    /// The query is empty or only whitespace.
    EmptyQuery,
    /// The query is longer than the limit.
    QueryTooLong,
    /// The query has no letters, digits or Chinese characters.
    NoSearchableText,
    /// `k` is out of range.
    BadK,
    /// The mode is not bm25, dense or hybrid.
    UnknownMode,
    /// The fusion is not `rrf[:K]` or `weighted[:W]`.
    UnknownFusion,
    /// The mode needs the embedding model, which is not loaded.
    ModeUnavailable,
    /// No report has that file name.
    UnknownSource,
    /// A document span is out of range or reversed.
    BadSpan,
    /// A document or route does not exist.
    NotFound,
    /// The index cannot serve (missing, stale or damaged).
    IndexUnusable,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// The body is not valid JSON.
    MalformedJson,
    /// The JSON lacks a field or has one of the wrong type.
    InvalidBody,
    /// The body is too large.
    BodyTooLarge,
    /// The request target (path and query string) is too long.
    UriTooLong,
    /// The request's header fields are too large, or there are too many.
    HeadersTooLarge,
    /// Some other malformed request.
    BadRequest,
    /// The route exists but not with that HTTP method.
    MethodNotAllowed,
    /// The query string does not parse.
    InvalidParameters,
    /// The request took too long.
    Timeout,
    /// The server is at capacity; retry after the `Retry-After` seconds.
    Overloaded,
    /// A fault of the service, not of the request.
    Internal,
    /// A write request without a valid `Authorization: Bearer` token.
    Unauthorized,
    /// Writing is off: the server has no administrator token configured.
    WritesDisabled,
    /// The same report (same file or same text) is already in the collection.
    DuplicateDocument,
    /// The file is not a PDF, `.txt` or `.md` file, or its content does not match its name.
    UnsupportedFormat,
    /// The file yields no usable text (a scanned PDF, an empty or garbled file).
    NoText,
    /// The uploaded file's name has folders or control characters in it.
    BadFileName,
    /// Title, publisher or year are missing or unusable.
    InvalidMetadata,
    /// The last report cannot be removed: a collection needs at least one.
    LastDocument,
    /// Another change of the collection holds its lock (e.g. a `wenda add` running beside the server).
    ChangeInProgress,
    /// The PDF extractor (poppler's `pdftotext`) is not installed on the server.
    ExtractorUnavailable,
    /// The search cluster (`--backend opensearch`) cannot be reached or refused a request.
    EngineUnavailable,
}

impl ErrorCode {
    /// The code as sent in JSON, e.g. `empty_query`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EmptyQuery => "empty_query",
            ErrorCode::QueryTooLong => "query_too_long",
            ErrorCode::NoSearchableText => "no_searchable_text",
            ErrorCode::BadK => "bad_k",
            ErrorCode::UnknownMode => "unknown_mode",
            ErrorCode::UnknownFusion => "unknown_fusion",
            ErrorCode::ModeUnavailable => "mode_unavailable",
            ErrorCode::UnknownSource => "unknown_source",
            ErrorCode::BadSpan => "bad_span",
            ErrorCode::NotFound => "not_found",
            ErrorCode::IndexUnusable => "index_unusable",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidParameters => "invalid_parameters",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::WritesDisabled => "writes_disabled",
            ErrorCode::DuplicateDocument => "duplicate_document",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::NoText => "no_text",
            ErrorCode::BadFileName => "bad_file_name",
            ErrorCode::InvalidMetadata => "invalid_metadata",
            ErrorCode::LastDocument => "last_document",
            ErrorCode::ChangeInProgress => "change_in_progress",
            ErrorCode::ExtractorUnavailable => "extractor_unavailable",
            ErrorCode::EngineUnavailable => "engine_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an index on disk cannot serve, as tantivy's `Incompatibility` does for its own
/// files: each case says what differs, so the message can say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexProblem {
    /// No manifest: nothing was built yet.
    #[error("no index has been built yet")]
    Missing,
    /// A file of the index cannot be read or parsed.
    #[error("{0}")]
    Damaged(String),
    /// The layout version differs from this build's.
    #[error("it has layout version {found}, this wenda uses {expected}")]
    FormatVersion {
        /// Version in the manifest.
        found: u32,
        /// This build's version.
        expected: u32,
    },
    /// The corpus changed since the build.
    #[error("the corpus files, catalog or chunking rules changed since it was built (stale index)")]
    StaleCorpus,
    /// Analysis or ranking settings changed since the build.
    #[error("it was built with other analysis settings ({found}), now {expected}")]
    Settings {
        /// Settings in the manifest.
        found: String,
        /// This build's settings.
        expected: String,
    },
    /// The vectors come from another model than the one loaded.
    #[error("its vectors come from model {found:?}, but the model now is {expected:?}")]
    Model {
        /// Model in the manifest (`none` without vectors).
        found: String,
        /// The model loaded now.
        expected: String,
    },
}

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
    /// A file could not be written or read as JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A request was rejected before any work (empty query, bad `k`, unknown mode, bad span).
    #[error("{message}")]
    InvalidRequest {
        /// Machine-readable reason.
        code: ErrorCode,
        /// A sentence the user can act on.
        message: String,
    },
    /// The index on disk is missing, stale or corrupt and this command may not rebuild it.
    #[error("index at {path}: {problem}; run `wenda index` to build it")]
    IndexUnusable {
        /// The index folder.
        path: PathBuf,
        /// Why it cannot be used.
        problem: IndexProblem,
    },
    /// A build produced something inconsistent (a bug or a failing disk, not the user's doing).
    #[error("building the index at {path} failed: {reason}")]
    IndexBuild {
        /// The file or folder being written.
        path: PathBuf,
        /// What went wrong.
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
    /// Too much work is already waiting (e.g. the query embedding queue is full).
    #[error("{0}; retry in a moment")]
    Overloaded(String),
    /// A tool the request needs is missing on this machine (e.g. `pdftotext` for PDFs):
    /// a fault of the installation, not of the request.
    #[error("{message}")]
    Unavailable {
        /// Machine-readable reason.
        code: ErrorCode,
        /// What is missing and how to install it.
        message: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::InvalidRequest`].
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            code,
            message: message.into(),
        }
    }

    /// Builds an [`Error::IndexUnusable`].
    pub fn unusable(path: impl Into<PathBuf>, problem: IndexProblem) -> Self {
        Error::IndexUnusable {
            path: path.into(),
            problem,
        }
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI enum is derived from the variants (all of them), serde reads each
    /// name back, and `as_str` (what the server sends) must say the same.
    #[test]
    fn every_error_code_has_one_wire_name() {
        let schema = serde_json::to_value(<ErrorCode as utoipa::PartialSchema>::schema()).unwrap();
        let names = schema["enum"].as_array().expect("an enum of names");
        assert!(names.len() >= 20, "{schema}");
        for name in names {
            let code: ErrorCode = serde_json::from_value(name.clone()).unwrap();
            assert_eq!(code.as_str(), name.as_str().unwrap());
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
        }
    }
}
