//! The tokenizer as the embedder holds it: `tokenizer.json` loaded with a compact Unigram
//! model in place of the `tokenizers` crate's own.
//!
//! Why: the crate's `Unigram` keeps its pieces in a trie with a hash map per node, keyed by
//! byte. For e5's 250,002 SentencePiece pieces that is 618,000 allocations and 240 MB
//! resident (heaptrack, `wenda serve`), a third of the server's memory with f32 weights
//! and more than the int8 weights and table together. [`CompactUnigram`] holds the same
//! pieces in a double-array trie (`yada`, as [`super::e5s1`] reads) plus one string
//! buffer and the scores, a few MB, and segments with the same Viterbi search as the
//! crate's `Unigram::encode_optimized` (SentencePiece's algorithm), so every text gets the
//! same ids. Normalizer, pre-tokenizer, post-processor and decoder stay the crate's.
//! Other models (WordPiece for bge) are kept as the crate loads them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tokenizers::models::unigram::Unigram;
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{DecoderWrapper, Model, Token, TokenizerImpl};

/// The tokenizer type the embedder uses: the crate's pipeline around a [`TokenModel`].
pub type TextTokenizer = TokenizerImpl<
    TokenModel,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// What goes wrong when a tokenizer cannot be loaded or converted.
#[derive(Debug, thiserror::Error)]
pub enum UnigramError {
    /// `tokenizer.json` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer's JSON does not describe a tokenizer (or cannot be written back).
    #[error("tokenizer JSON: {0}")]
    Json(String),
}

/// Penalty below the lowest piece score given to an unknown character, as in SentencePiece
/// and the `tokenizers` crate (`K_UNK_PENALTY`); it decides where unknown characters fall in
/// the best segmentation, so it must be the same value for the same ids.
const UNK_PENALTY: f64 = 10.0;

/// A SentencePiece Unigram model: pieces, their scores and a double-array trie over their
/// UTF-8 bytes, segmenting like the `tokenizers` crate's `Unigram` (fused unknowns, no
/// sampling, optional byte fallback).
pub struct CompactUnigram {
    /// All pieces, one after another.
    text: String,
    /// End of piece `i` in `text` (its start is the end of piece `i - 1`).
    ends: Vec<u32>,
    /// Score (log probability) of each piece.
    scores: Vec<f64>,
    /// Double array from a piece's bytes to its id (the last id of a repeated piece, as the
    /// crate's hash map keeps).
    trie: yada::DoubleArray<Vec<u8>>,
    /// The lowest piece score.
    min_score: f64,
    unk_id: Option<usize>,
    byte_fallback: bool,
}

impl CompactUnigram {
    /// Builds the model from the pieces and scores of `tokenizer.json`; `None` when the
    /// double array cannot hold them (an empty piece or a NUL byte), so that the caller
    /// keeps the crate's model.
    pub fn new(
        vocab: &[(String, f64)],
        unk_id: Option<usize>,
        byte_fallback: bool,
    ) -> Option<Self> {
        if vocab.is_empty()
            || unk_id.is_some_and(|u| u >= vocab.len())
            || vocab.len() >= 1 << 31
            || vocab.iter().any(|(p, _)| p.is_empty() || p.contains('\0'))
        {
            return None;
        }
        let mut text = String::with_capacity(vocab.iter().map(|(p, _)| p.len()).sum());
        let mut ends = Vec::with_capacity(vocab.len());
        let mut scores = Vec::with_capacity(vocab.len());
        for (piece, score) in vocab {
            text.push_str(piece);
            ends.push(u32::try_from(text.len()).ok()?);
            scores.push(*score);
        }
        let min_score = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let mut keys: Vec<(&[u8], u32)> = vocab
            .iter()
            .enumerate()
            .map(|(id, (p, _))| (p.as_bytes(), id as u32))
            .collect();
        // Sorted by bytes, a repeated piece's ids ascending; keep the last of each.
        keys.sort();
        let mut unique: Vec<(&[u8], u32)> = Vec::with_capacity(keys.len());
        for key in keys {
            match unique.last_mut() {
                Some(last) if last.0 == key.0 => *last = key,
                _ => unique.push(key),
            }
        }
        // yada signals inputs it cannot hold by panicking.
        let bytes = std::panic::catch_unwind(|| yada::builder::DoubleArrayBuilder::build(&unique))
            .ok()??;
        Some(CompactUnigram {
            text,
            ends,
            scores,
            trie: yada::DoubleArray::new(bytes),
            min_score,
            unk_id,
            byte_fallback,
        })
    }

    /// Piece `id`'s text.
    fn piece(&self, id: usize) -> &str {
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.text[start..self.ends[id] as usize]
    }

    /// The best segmentation of `sentence` (highest total score), runs of unknown characters
    /// fused into one piece: `(start, end, id)` byte ranges in order, `id` `None` for an
    /// unknown run. Mirrors `Unigram::encode_optimized` of the `tokenizers` crate, ties
    /// included (the first candidate reaching a score keeps it).
    fn segment(&self, sentence: &str) -> Vec<(usize, usize, Option<usize>)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: Option<usize>,
            score: f64,
            start: Option<usize>,
        }
        let size = sentence.len();
        let bytes = sentence.as_bytes();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                id: None,
                score: 0.0,
                start: None,
            };
            size + 1
        ];
        let mut at = 0;
        while at < size {
            let here = best[at].score;
            let char_len = sentence[at..].chars().next().map_or(1, char::len_utf8);
            let mut has_single = false;
            for (id, len) in self.trie.common_prefix_search(&bytes[at..]) {
                let (id, len) = (id as usize, len);
                let end = at + len;
                let candidate = self.scores[id] + here;
                let node = &mut best[end];
                if node.start.is_none() || candidate > node.score {
                    *node = Best {
                        id: Some(id),
                        score: candidate,
                        start: Some(at),
                    };
                }
                has_single |= len == char_len;
            }
            if !has_single {
                let candidate = unk_score + here;
                let node = &mut best[at + char_len];
                if node.start.is_none() || candidate > node.score {
                    *node = Best {
                        id: None,
                        score: candidate,
                        start: Some(at),
                    };
                }
            }
            at += char_len;
        }
        let mut pieces = Vec::new();
        let mut end = size;
        while end > 0 {
            let node = best[end];
            let start = node.start.unwrap_or(0);
            // The crate's model marks unknowns with the unknown id, and a piece that is the
            // unknown token itself fuses with them alike.
            let unknown = node.id.is_none() || node.id == self.unk_id;
            match pieces.last_mut() {
                Some((s, _, None)) if unknown => *s = start,
                _ => pieces.push((start, end, if unknown { None } else { node.id })),
            }
            end = start;
        }
        pieces.reverse();
        pieces
    }
}

impl Model for CompactUnigram {
    type Trainer = TrainerWrapper;

    fn tokenize(&self, sentence: &str) -> tokenizers::Result<Vec<Token>> {
        let mut tokens = Vec::new();
        if sentence.is_empty() {
            return Ok(tokens);
        }
        for (start, end, id) in self.segment(sentence) {
            let piece = &sentence[start..end];
            let offsets = (start, end);
            // A fused run is looked up as a whole: it may happen to be a piece.
            let id = match id.or_else(|| self.token_to_id(piece).map(|i| i as usize)) {
                Some(id) => id as u32,
                None => {
                    if self.byte_fallback {
                        let bytes: Option<Vec<Token>> = piece
                            .bytes()
                            .map(|b| {
                                let name = format!("<0x{b:02X}>");
                                self.token_to_id(&name)
                                    .map(|id| Token::new(id, name, offsets))
                            })
                            .collect();
                        if let Some(bytes) = bytes {
                            tokens.extend(bytes);
                            continue;
                        }
                    }
                    self.unk_id.ok_or_else(|| {
                        tokenizers::Error::from("the model has no unknown token".to_string())
                    })? as u32
                }
            };
            tokens.push(Token::new(id, piece.to_string(), offsets));
        }
        Ok(tokens)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        if token.is_empty() || token.contains('\0') {
            return None;
        }
        self.trie.exact_match_search(token.as_bytes())
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.ends.len()).then(|| self.piece(id as usize).to_string())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        (0..self.ends.len())
            .map(|id| (self.piece(id).to_string(), id as u32))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.ends.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("the compact Unigram model is loaded from tokenizer.json and not saved".into())
    }

    fn get_trainer(&self) -> TrainerWrapper {
        TrainerWrapper::UnigramTrainer(Default::default())
    }
}

/// The model part of a tokenizer: a Unigram model in compact form, or any other model as
/// the `tokenizers` crate loads it.
pub enum TokenModel {
    /// A SentencePiece Unigram model (e5).
    Unigram(CompactUnigram),
    /// Any other model (WordPiece for bge), or a Unigram model the compact form cannot hold.
    Other(ModelWrapper),
}

/// The fields of a Unigram model in `tokenizer.json`.
#[derive(Deserialize)]
struct UnigramFields {
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    unk_id: Option<usize>,
    #[serde(default)]
    byte_fallback: bool,
}

impl<'de> Deserialize<'de> for TokenModel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("type").and_then(|t| t.as_str()) == Some("Unigram") {
            let fields = UnigramFields::deserialize(&value).map_err(serde::de::Error::custom)?;
            if let Some(model) =
                CompactUnigram::new(&fields.vocab, fields.unk_id, fields.byte_fallback)
            {
                return Ok(TokenModel::Unigram(model));
            }
            let model = Unigram::from(fields.vocab, fields.unk_id, fields.byte_fallback)
                .map_err(serde::de::Error::custom)?;
            return Ok(TokenModel::Other(model.into()));
        }
        ModelWrapper::deserialize(value)
            .map(TokenModel::Other)
            .map_err(serde::de::Error::custom)
    }
}

impl Model for TokenModel {
    type Trainer = TrainerWrapper;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        match self {
            TokenModel::Unigram(m) => m.tokenize(sequence),
            TokenModel::Other(m) => m.tokenize(sequence),
        }
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        match self {
            TokenModel::Unigram(m) => m.token_to_id(token),
            TokenModel::Other(m) => m.token_to_id(token),
        }
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            TokenModel::Unigram(m) => m.id_to_token(id),
            TokenModel::Other(m) => m.id_to_token(id),
        }
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        match self {
            TokenModel::Unigram(m) => m.get_vocab(),
            TokenModel::Other(m) => m.get_vocab(),
        }
    }

    fn get_vocab_size(&self) -> usize {
        match self {
            TokenModel::Unigram(m) => m.get_vocab_size(),
            TokenModel::Other(m) => m.get_vocab_size(),
        }
    }

    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        match self {
            TokenModel::Unigram(m) => m.save(folder, prefix),
            TokenModel::Other(m) => m.save(folder, prefix),
        }
    }

    fn get_trainer(&self) -> TrainerWrapper {
        match self {
            TokenModel::Unigram(m) => m.get_trainer(),
            TokenModel::Other(m) => m.get_trainer(),
        }
    }
}

/// Loads `tokenizer.json` with a compact Unigram model.
pub fn load(path: &Path) -> Result<TextTokenizer, UnigramError> {
    let bytes = std::fs::read(path).map_err(|source| UnigramError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| UnigramError::Json(e.to_string()))
}

/// The same tokenizer with a compact Unigram model (through its JSON form).
pub fn compact(tokenizer: &tokenizers::Tokenizer) -> Result<TextTokenizer, UnigramError> {
    let json = tokenizer
        .to_string(false)
        .map_err(|e| UnigramError::Json(e.to_string()))?;
    serde_json::from_str(&json).map_err(|e| UnigramError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(p, s)| (p.to_string(), *s)).collect()
    }

    /// Ids and byte offsets of a text's tokens.
    type Ids = Vec<(u32, (usize, usize))>;

    /// Ids and offsets of both models for `text`.
    fn both(vocab: &[(String, f64)], text: &str) -> (Ids, Ids) {
        let ours = CompactUnigram::new(vocab, Some(0), false).expect("compact");
        let theirs = Unigram::from(vocab.to_vec(), Some(0), false).expect("crate");
        let ids = |t: Vec<Token>| t.into_iter().map(|t| (t.id, t.offsets)).collect::<Ids>();
        (
            ids(ours.tokenize(text).expect("ours")),
            ids(theirs.tokenize(text).expect("theirs")),
        )
    }

    #[test]
    fn segments_like_the_crate_model() {
        let vocab = pieces(&[
            ("<unk>", 0.0),
            ("a", -1.0),
            ("b", -1.5),
            ("c", -1.0),
            ("d", -2.0),
            ("cd", -1.0),
            ("ab", -1.2),
            ("abc", -1.1),
            ("abcd", -0.5),
            ("大", -3.0),
            ("模型", -2.0),
            ("大模型", -4.5),
            ("型", -3.0),
            ("模", -3.5),
            ("▁", -0.1),
            // A repeated piece: the crate keeps the last id.
            ("ab", -9.0),
            // Equal scores: the first candidate keeps the node.
            ("x", -1.0),
            ("y", -1.0),
            ("xy", -2.0),
        ]);
        for text in [
            "abcdacdxx",
            "abcd",
            "ab",
            "大模型在金融行业的应用",
            "▁大模型abc模型",
            "zz大qq",
            "xyxy",
            "é",
            "a",
            "",
        ] {
            let (ours, theirs) = both(&vocab, text);
            assert_eq!(ours, theirs, "{text:?}");
        }
        let ours = CompactUnigram::new(&vocab, Some(0), false).expect("compact");
        assert_eq!(ours.token_to_id("ab"), Some(15));
        assert_eq!(ours.token_to_id("模型"), Some(10));
        assert_eq!(ours.token_to_id("zz"), None);
        assert_eq!(ours.id_to_token(11).as_deref(), Some("大模型"));
        assert_eq!(ours.id_to_token(19), None);
        assert_eq!(ours.get_vocab_size(), 19);
    }

    #[test]
    fn falls_back_to_bytes_like_the_crate_model() {
        let vocab = pieces(&[
            ("<unk>", 0.0),
            ("a", -1.0),
            ("<0xC3>", -5.0),
            ("<0xA9>", -5.0),
        ]);
        let ours = CompactUnigram::new(&vocab, Some(0), true).expect("compact");
        let theirs = Unigram::from(vocab, Some(0), true).expect("crate");
        for text in ["aéa", "éé", "a中"] {
            let ids = |t: Vec<Token>| t.into_iter().map(|t| t.id).collect::<Vec<_>>();
            assert_eq!(
                ids(ours.tokenize(text).expect("ours")),
                ids(theirs.tokenize(text).expect("theirs")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn keeps_the_crate_model_for_pieces_it_cannot_hold() {
        let json = serde_json::json!({
            "type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["", -1.0], ["a", -1.0]]
        });
        let model: TokenModel = serde_json::from_value(json).expect("model");
        assert!(matches!(model, TokenModel::Other(_)));
        assert_eq!(model.token_to_id("a"), Some(2));
        let json = serde_json::json!({
            "type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]
        });
        let model: TokenModel = serde_json::from_value(json).expect("model");
        assert!(matches!(model, TokenModel::Unigram(_)));
    }

    /// The real e5 tokenizer, when its model folder is there: the compact model gives the
    /// crate's ids for the reports, the dev questions and mixed-script texts.
    #[test]
    fn e5_tokenizer_gives_the_same_ids() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/multilingual-e5-small/tokenizer.json");
        if !path.is_file() {
            eprintln!("skipped: {} is not there", path.display());
            return;
        }
        let theirs = tokenizers::Tokenizer::from_file(&path).expect("crate tokenizer");
        let ours = load(&path).expect("compact tokenizer");
        assert!(matches!(ours.get_model(), TokenModel::Unigram(_)));
        let mut texts: Vec<String> = vec![
            "query: 大模型在金融行业的应用".into(),
            "passage: DeepSeek-R1 的 671 billion 参数 ①②③ 😀 \u{1F600}\u{200B}ｆｕｌｌ width"
                .into(),
            "What is the market size of LLMs in China?".into(),
            "\t  多个   空格\n换行 ".into(),
        ];
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        if let Ok(entries) = std::fs::read_dir(&corpus) {
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    texts.extend(text.lines().map(str::to_string));
                }
            }
        }
        for text in &texts {
            let a = ours.encode(text.as_str(), true).expect("ours");
            let b = theirs.encode(text.as_str(), true).expect("theirs");
            assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
            assert_eq!(a.get_offsets(), b.get_offsets(), "{text:?}");
        }
        assert!(texts.len() > 1000, "only {} texts", texts.len());
    }
}
