//! Text analysis for BM25: width folding, traditional → simplified folding, jieba word
//! segmentation in search mode (with the collection's [`Vocabulary`] added to jieba's
//! dictionary), lowercasing and stop words, exposed as a tantivy [`Tokenizer`].
//!
//! Written by hand (rather than taking a jieba tokenizer crate) because the
//! exact tokens are the core of lexical retrieval quality: we fold full-width
//! forms before segmentation and must map every token back to byte offsets in
//! the *original* text, which highlighting depends on.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use jieba_rs::Jieba;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use crate::corpus::is_han;

pub mod romanization;
pub mod translation;
pub mod vocabulary;

pub use translation::{Concept, Glossary};
pub use vocabulary::{Origin, VOCABULARY_FILE, VOCABULARY_RULES_VERSION, Vocabulary};

/// Name under which the tokenizer is registered in the tantivy index.
pub const TOKENIZER_NAME: &str = "wenda_jieba";

/// What a query must contain somewhere to be searched: a digit or a letter of the
/// scripts these reports are searched in (ASCII and Latin letters, basic Greek and
/// Cyrillic, Chinese characters and 〇, kana, Hangul, full-width digits and letters),
/// not only punctuation, symbols or spaces. The server checks queries with this very
/// pattern and the OpenAPI document states it, so the two cannot disagree; it is written
/// with explicit ranges because JSON Schema validators read `\w` and `\p{…}` differently
/// (ECMA-262 without the `u` flag reads `\w` as ASCII only), but all read these alike.
pub const SEARCHABLE_PATTERN: &str = concat!(
    "[0-9A-Za-z",
    "\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u024F", // Latin-1 and Latin Extended letters
    "\\u0391-\\u03A9\\u03B1-\\u03C9\\u0401\\u0410-\\u044F\\u0451", // Greek, Cyrillic
    "\\u3007\\u3400-\\u4DBF\\u4E00-\\u9FFF\\uF900-\\uFAFF", // 〇 and Chinese characters
    "\\u3041-\\u3096\\u30A1-\\u30FA\\uAC00-\\uD7A3", // kana, Hangul
    "\\uFF10-\\uFF19\\uFF21-\\uFF3A\\uFF41-\\uFF5A]", // full-width digits and letters
);

/// Version of the analysis rules; part of the index fingerprint, so changing
/// them marks existing indexes stale.
pub const ANALYZER_VERSION: &str = "jieba-search-hmm+fold+t2s+lower+stop-v2";

/// Whether a question is written in the reports' language: it has Han characters, and
/// they, weighted by [`CHINESE_LETTER_WEIGHT`], are at least as many as its Latin letters.
/// An English question that names a Chinese product in brackets ("OrionStar (猎户星空)")
/// is still English.
pub fn in_chinese(question: &str) -> bool {
    let han = question.chars().filter(|c| is_han(*c)).count();
    let latin = question.chars().filter(|c| c.is_ascii_alphabetic()).count();
    han > 0 && han * CHINESE_LETTER_WEIGHT >= latin
}

/// A Han character carries about as much as a short English word of four letters; a
/// question counts as Chinese when its Han characters, so weighted, are at least as many
/// as its Latin letters ([`in_chinese`]).
pub const CHINESE_LETTER_WEIGHT: usize = 4;

/// Words that say when relative to the time of asking, not what a question is about
/// ([`Analyzer::time_words`]): now, before, after and recent periods in everyday and
/// written Chinese. Written from the language, not from any question set; the English
/// counterpart is `translation::TIME_WORDS`.
pub const RELATIVE_TIME_WORDS: &[&str] = &[
    "现在",
    "目前",
    "当前",
    "眼下",
    "当下",
    "如今",
    "现今",
    "当今",
    "今后",
    "往后",
    "以后",
    "日后",
    "将来",
    "未来",
    "此后",
    "之后",
    "以前",
    "之前",
    "此前",
    "从前",
    "以往",
    "过去",
    "早期",
    "近年",
    "近年来",
    "近来",
    "最近",
    "近期",
    "近日",
    "今年",
    "去年",
    "明年",
    "前年",
    "后年",
    "今天",
    "昨天",
    "明天",
    "当时",
    "当年",
    "后来",
    "届时",
    "同期",
    "年初",
    "年底",
    "年末",
    "上半年",
    "下半年",
    "这些年",
    "前些年",
    "早年",
];

/// Chinese function words and question words that carry no topic: matching
/// them only adds noise to BM25. Common entries of the public Chinese
/// stop-word lists (HIT, Baidu) plus the question words our users type.
const CHINESE_STOP_WORDS: &[&str] = &[
    "的",
    "了",
    "是",
    "在",
    "和",
    "与",
    "及",
    "等",
    "也",
    "都",
    "而",
    "并",
    "或",
    "对",
    "为",
    "以",
    "于",
    "由",
    "把",
    "被",
    "将",
    "从",
    "向",
    "之",
    "其",
    "这",
    "那",
    "这些",
    "那些",
    "这个",
    "那个",
    "该",
    "有",
    "个",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "哪",
    "哪些",
    "哪个",
    "哪家",
    "哪里",
    "哪儿",
    "什么",
    "怎么",
    "怎样",
    "如何",
    "为什么",
    "为何",
    "多少",
    "几",
    "是否",
    "能否",
    "请问",
    "一下",
    "我们",
    "你们",
    "他们",
    "它们",
    "我",
    "你",
    "他",
    "她",
    "它",
    "就",
    "又",
    "还",
    "很",
    "更",
    "最",
    "但",
    "但是",
    "如果",
    "因为",
    "所以",
    "以及",
    "或者",
    "并且",
    "而且",
    "其中",
    "通过",
    "进行",
    "主要",
    "哪一",
    "哪种",
    "谁",
    "啥",
    "着",
    "过",
    "上",
    "中",
    "下",
    "里",
    "到",
    "给",
    "让",
    "所",
    "得",
    "地",
    "要",
    "会",
];

/// English function words, for questions asked in English.
pub(crate) const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "and", "or", "to", "in", "on", "for", "with", "by", "is", "are", "was",
    "were", "be", "been", "as", "at", "from", "that", "this", "these", "those", "it", "its",
    "what", "which", "who", "whom", "how", "why", "when", "where", "does", "do", "did", "can",
    "could", "would", "should", "will", "about", "into", "than", "there", "their",
];

/// jieba with its default dictionary, loaded once per process and shared by every
/// analyzer without a vocabulary.
/// A word that can say what a question is about: two characters or more, letters and
/// digits only, not a stop word.
fn is_content_word(word: &str) -> bool {
    word.chars().count() >= 2 && word.chars().all(|c| c.is_alphanumeric()) && !is_stop_word(word)
}

/// Head nouns that make the word before them a sector: an industry (行业, 产业, 领域) or a
/// kind of organisation (企业, 公司, 平台, 机构, 厂商), as in 殡葬行业 or 外卖平台
/// ([`Analyzer::sector_words`]). The head words of the issue's own description of the
/// failure ("an industry … the reports do not discuss"), not taken from any question.
pub const SECTOR_HEADS: &[&str] = &[
    "行业", "产业", "领域", "企业", "公司", "平台", "机构", "厂商",
];

static DEFAULT_JIEBA: LazyLock<Arc<Jieba>> = LazyLock::new(|| Arc::new(Jieba::new()));

/// One analysed token: normalized text plus its byte range in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzedToken {
    /// Folded, lowercased word.
    pub text: String,
    /// Byte offset of the first byte in the original input.
    pub byte_from: usize,
    /// Byte offset one past the last byte in the original input.
    pub byte_to: usize,
}

/// Maps a full-width ASCII form to its half-width form and the ideographic
/// space to a space; everything else is unchanged.
pub fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// The text as the analyzer segments it: widths ([`fold_width`]) and traditional
/// characters ([`fold_traditional`]) folded, so that questions, sentences and the index
/// compare in one script.
pub fn fold_text(text: &str) -> String {
    fold_traditional(text.chars().map(fold_width).collect())
}

/// Folds traditional Chinese characters to simplified ones, so that a question in one
/// script matches a report in the other and jieba (whose dictionary is simplified)
/// segments traditional text into real words. fast2s maps one character to one
/// character of the same UTF-8 length (with a few context rules), so byte offsets stay
/// valid; should a mapping ever change the length, the text is left as it was.
pub fn fold_traditional(text: String) -> String {
    if !text.chars().any(is_han) {
        return text;
    }
    let simplified = fast2s::convert(&text);
    if simplified.len() == text.len()
        && simplified
            .char_indices()
            .zip(text.char_indices())
            .all(|((a, _), (b, _))| a == b)
    {
        simplified
    } else {
        text
    }
}

fn is_stop_word(word: &str) -> bool {
    CHINESE_STOP_WORDS.contains(&word) || ENGLISH_STOP_WORDS.contains(&word)
}

/// Splits text into search terms. Cheap to clone: the dictionary is shared.
#[derive(Clone)]
pub struct Analyzer {
    /// jieba, with the collection's vocabulary added when there is one.
    jieba: Arc<Jieba>,
    /// The added words (folded), each with the words jieba's default dictionary cuts it
    /// into (`cut_for_search`: byte offset in the word, word), which are emitted as well.
    vocabulary: Arc<HashMap<String, Vec<(usize, String)>>>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// An analyzer over jieba's default dictionary (loaded once per process).
    pub fn new() -> Self {
        Analyzer {
            jieba: Arc::clone(&DEFAULT_JIEBA),
            vocabulary: Arc::default(),
        }
    }

    /// An analyzer whose jieba also knows the words of `vocabulary`, each with the
    /// frequency jieba suggests to keep it whole. A vocabulary word is emitted together
    /// with the terms the default dictionary gives for it, so the vocabulary only ever
    /// adds terms: a text matches everything it matched without it.
    ///
    /// The default terms of the vocabulary words are cut here, by the new jieba before the
    /// words are added, so that a server holds one jieba and not also the default one
    /// (about 20 MB each, heaptrack of `wenda serve`).
    pub fn with_vocabulary(vocabulary: &Vocabulary) -> Self {
        if vocabulary.is_empty() {
            return Analyzer::new();
        }
        let mut jieba = Jieba::new();
        let parts = vocabulary
            .words()
            .map(|(word, _)| {
                let cut = jieba
                    .cut_for_search(word, true)
                    .into_iter()
                    .map(|t| (t.byte_start, t.word.to_string()))
                    .collect();
                (word.to_string(), cut)
            })
            .collect();
        for (word, _) in vocabulary.words() {
            jieba.add_word(word, None, Some("nz"));
        }
        Analyzer {
            jieba: Arc::new(jieba),
            vocabulary: Arc::new(parts),
        }
    }

    /// Segments `text` into tokens with byte offsets into `text` itself.
    pub fn analyze(&self, text: &str) -> Vec<AnalyzedToken> {
        // Fold widths char by char and remember, for each folded byte offset
        // at a char boundary, the original byte offset.
        let mut folded = String::with_capacity(text.len());
        let mut to_original = vec![0usize; text.len() + 1];
        for (orig_byte, c) in text.char_indices() {
            let f = fold_width(c);
            to_original[folded.len()] = orig_byte;
            folded.push(f);
        }
        to_original[folded.len()] = text.len();
        let folded = fold_traditional(folded);
        // Each word with its byte offset in `folded`: jieba's words, and for a vocabulary
        // word also the words the default dictionary cuts it into.
        let mut words: Vec<(usize, &str)> = Vec::new();
        for t in self.jieba.cut_for_search(&folded, true) {
            if let Some(parts) = self.vocabulary.get(t.word) {
                for (start, part) in parts {
                    words.push((t.byte_start + start, part.as_str()));
                }
            }
            words.push((t.byte_start, t.word));
        }
        let mut tokens = Vec::new();
        for (byte_start, raw) in words {
            if !raw.chars().any(|c| c.is_alphanumeric()) {
                continue;
            }
            let word = raw.trim_matches(|c: char| !(c.is_alphanumeric() || c == '%'));
            if word.is_empty() {
                continue;
            }
            let lower = word.to_lowercase();
            if is_stop_word(&lower) {
                continue;
            }
            let lead = raw.len()
                - raw
                    .trim_start_matches(|c: char| !(c.is_alphanumeric() || c == '%'))
                    .len();
            let from = byte_start + lead;
            let to = from + word.len();
            tokens.push(AnalyzedToken {
                text: lower,
                byte_from: to_original[from],
                byte_to: to_original[to],
            });
        }
        // Search mode emits the parts of a long word before the word itself;
        // consumers (tantivy's snippets) expect tokens in text order.
        tokens.sort_by_key(|t| (t.byte_from, t.byte_to));
        tokens.dedup();
        tokens
    }

    /// The words of `text` that name things, for deciding what a question is about:
    /// jieba's nouns (tags `n…`), verbal nouns (`vn`), abbreviations (`j`) and words it
    /// does not know (`x`, `eng`); not verbs (`v`): on dev, questions in everyday words
    /// ("帮上什么忙", "当作") were refused for them (外卖, 快递 and 殡葬 are tagged verbs
    /// too: [`Analyzer::activity_words`] gives those, weighed less); time words (`t`) of
    /// jieba's dictionary, which name seasons, festivals and periods a question can be
    /// about (春节, 孕期, 汛期) and one sector (婚庆), but not those that only say when
    /// relative to now ([`RELATIVE_TIME_WORDS`], [`Analyzer::time_words`]) nor runs jieba's
    /// HMM glues together and tags `t` (会往 in 会往哪些方向). Two characters or more, stop
    /// words left out, in first-seen order (folded like [`Analyzer::analyze`]).
    pub fn naming_words(&self, text: &str) -> Vec<String> {
        self.tagged_words(text, |tag, word| {
            let word = word.trim();
            if RELATIVE_TIME_WORDS.contains(&word) {
                return false;
            }
            tag.starts_with('n')
                || matches!(tag, "vn" | "j" | "x" | "eng")
                || (tag == "t" && self.jieba.has_word(word))
        })
    }

    /// The time words of `text` (jieba's tag `t`, in its dictionary) that say when relative
    /// to now ([`RELATIVE_TIME_WORDS`]: 今后, 如今, 目前). When a question is set says
    /// nothing of what it is about, so such a word the reports never write (今后, 如今, 将来)
    /// does not refuse it, while one they write (目前, 未来) is evidence like any other word.
    pub fn time_words(&self, text: &str) -> Vec<String> {
        self.tagged_words(text, |tag, word| {
            tag == "t" && self.jieba.has_word(word) && RELATIVE_TIME_WORDS.contains(&word.trim())
        })
    }

    /// The words of `text` that name an activity: jieba's verbs (tags `v…` other than the
    /// verbal nouns of [`Analyzer::naming_words`]) of two characters or more that are in
    /// jieba's dictionary, stop words left out. An activity the reports never describe
    /// (殡葬, 外卖, 充电) is a facet they lack; words jieba's HMM makes up from unknown
    /// character runs (缺好, 差在) are segmentation artefacts, not activities, and are left
    /// out.
    pub fn activity_words(&self, text: &str) -> Vec<String> {
        self.tagged_words(text, |tag, word| {
            tag.starts_with('v') && tag != "vn" && self.jieba.has_word(word)
        })
    }

    /// The words of `text` that say which industry or kind of organisation it is about:
    /// a word right before one of [`SECTOR_HEADS`] (殡葬 in 殡葬行业, 外卖 in 外卖平台,
    /// 风电 in 风电企业), filtered like [`Analyzer::naming_words`], of the tags of naming
    /// and activity words (not pronouns or numerals: 哪类企业, 哪几个行业). A question
    /// restricted to a sector names it this way, so a sector word the reports never use
    /// means the reports do not cover what is asked.
    pub fn sector_words(&self, text: &str) -> Vec<String> {
        let folded = fold_text(text);
        let tags = self.jieba.tag(&folded, true);
        let mut out: Vec<String> = Vec::new();
        for pair in tags.windows(2) {
            let word = pair[0].word.trim().to_lowercase();
            let tag = pair[0].tag;
            let names = tag.starts_with('n')
                || tag.starts_with('v')
                || matches!(tag, "t" | "j" | "x" | "eng");
            if SECTOR_HEADS.contains(&pair[1].word)
                && names
                && is_content_word(&word)
                && !out.contains(&word)
            {
                out.push(word);
            }
        }
        out
    }

    /// The names of people (jieba tags `nr…`) and of places (`ns…`) in `text`, for
    /// telling a sentence that names who or where from one that only repeats the question.
    pub fn names(&self, text: &str) -> (Vec<String>, Vec<String>) {
        let people = self.tagged_words(text, |tag, _| tag.starts_with("nr"));
        let places = self.tagged_words(text, |tag, _| tag.starts_with("ns"));
        (people, places)
    }

    /// The distinct words of `text` (folded like [`Analyzer::analyze`], lowercase) whose
    /// jieba tag and word `keep` accepts: two characters or more, letters and digits
    /// only, stop words left out, in first-seen order.
    fn tagged_words(&self, text: &str, keep: impl Fn(&str, &str) -> bool) -> Vec<String> {
        let folded = fold_text(text);
        let mut out: Vec<String> = Vec::new();
        for t in self.jieba.tag(&folded, true) {
            let word = t.word.trim().to_lowercase();
            if is_content_word(&word) && !out.contains(&word) && keep(t.tag, t.word) {
                out.push(word);
            }
        }
        out
    }

    /// The distinct terms of a query, in first-seen order.
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for t in self.analyze(query) {
            if !seen.contains(&t.text) {
                seen.push(t.text);
            }
        }
        seen
    }

    /// True when `text` contains anything that could ever match: somewhere it matches
    /// [`SEARCHABLE_PATTERN`] (a letter or a number; Chinese characters are letters).
    /// Used to reject punctuation-only queries.
    pub fn has_searchable_chars(text: &str) -> bool {
        static SEARCHABLE: LazyLock<regex::Regex> =
            LazyLock::new(|| regex::Regex::new(SEARCHABLE_PATTERN).expect("a valid pattern"));
        SEARCHABLE.is_match(text)
    }
}

/// The tantivy tokenizer wrapping [`Analyzer`].
#[derive(Clone, Default)]
pub struct JiebaTokenizer {
    analyzer: Analyzer,
}

impl JiebaTokenizer {
    /// A tokenizer over jieba's default dictionary, to register under [`TOKENIZER_NAME`].
    pub fn new() -> Self {
        JiebaTokenizer::with_analyzer(Analyzer::new())
    }

    /// A tokenizer over `analyzer` (e.g. one with a collection's vocabulary).
    pub fn with_analyzer(analyzer: Analyzer) -> Self {
        JiebaTokenizer { analyzer }
    }
}

/// Token stream over a pre-analysed token list.
pub struct AnalyzedTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for JiebaTokenizer {
    type TokenStream<'a> = AnalyzedTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> AnalyzedTokenStream {
        let tokens = self
            .analyzer
            .analyze(text)
            .into_iter()
            .enumerate()
            .map(|(position, t)| Token {
                offset_from: t.byte_from,
                offset_to: t.byte_to,
                position,
                text: t.text,
                position_length: 1,
            })
            .collect();
        AnalyzedTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for AnalyzedTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activities_are_dictionary_verbs_and_naming_words_are_nouns() {
        let analyzer = Analyzer::new();
        let question = "殡葬行业的大模型应用现状如何？";
        assert!(
            analyzer
                .activity_words(question)
                .contains(&"殡葬".to_string())
        );
        assert!(
            !analyzer
                .naming_words(question)
                .contains(&"殡葬".to_string())
        );
        assert!(
            !analyzer
                .activity_words(question)
                .contains(&"行业".to_string())
        );
        assert!(
            analyzer
                .activity_words("外卖平台的客服每天处理多少订单？")
                .contains(&"外卖".to_string())
        );
        // When a question is set names nothing it is about, nor does a run the HMM glues.
        for (question, time) in [
            ("今后大模型在金融行业会怎么发展？", "今后"),
            ("如今大模型在医疗领域有哪些应用？", "如今"),
            ("将来AI大模型会往哪些方向发展？", "会往"),
        ] {
            let words = analyzer.naming_words(question);
            assert!(!words.iter().any(|w| w == time), "{question}: {words:?}");
            assert!(
                words
                    .iter()
                    .any(|w| w == "方向" || w == "领域" || w == "行业")
            );
        }
        assert_eq!(
            analyzer.time_words("将来AI大模型会往哪些方向发展？"),
            vec!["将来".to_string()]
        );
        // Time words that name what a question is about stay naming words.
        for (question, topic) in [
            ("大模型在孕期健康管理中有哪些应用？", "孕期"),
            ("婚庆策划能用大模型吗？", "婚庆"),
            ("春节期间大模型客服的咨询量有多少？", "春节"),
        ] {
            let words = analyzer.naming_words(question);
            assert!(words.iter().any(|w| w == topic), "{question}: {words:?}");
        }
        // Runs jieba's HMM glues together are not dictionary words, so not activities.
        assert!(
            !analyzer
                .activity_words("大模型训练缺好数据这件事")
                .iter()
                .any(|w| w == "缺好")
        );
    }

    #[test]
    fn sector_words_are_the_words_before_an_industry_or_organisation_noun() {
        let analyzer = Analyzer::new();
        assert_eq!(
            analyzer.sector_words("外卖平台的大模型客服每天处理多少订单？"),
            ["外卖"]
        );
        assert_eq!(
            analyzer.sector_words("殡葬行业和制造企业的大模型应用现状如何？"),
            ["殡葬", "制造"]
        );
        // Without a head noun there is no sector, whatever the words.
        assert!(
            analyzer
                .sector_words("大模型在渔业中有哪些应用？")
                .is_empty()
        );
        // Stop words, pronouns and numerals before a head name no sector.
        for question in [
            "这些企业如何部署大模型？",
            "哪类企业是大模型的潜在客户？",
            "哪几个行业大模型渗透率最高？",
        ] {
            assert!(analyzer.sector_words(question).is_empty(), "{question}");
        }
    }

    #[test]
    fn the_question_language_goes_by_its_letters() {
        assert!(in_chinese("百丽时尚有多少家直营门店？"));
        assert!(in_chinese("GPT-3 参数量"));
        assert!(!in_chinese(
            "What did OrionStar (猎户星空) do with large models?"
        ));
        assert!(!in_chinese("How many stores?"));
    }

    fn words(text: &str) -> Vec<String> {
        Analyzer::new()
            .analyze(text)
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn traditional_text_analyses_like_simplified_and_keeps_its_offsets() {
        let traditional = "臺灣的資訊產業與銀行風險控制";
        let simplified = "台湾的资讯产业与银行风险控制";
        assert_eq!(words(traditional), words(simplified));
        assert!(words(traditional).contains(&"风险".to_string()));
        for t in Analyzer::new().analyze(traditional) {
            let original = &traditional[t.byte_from..t.byte_to];
            assert_eq!(original.chars().count(), t.text.chars().count(), "{t:?}");
        }
        // Simplified text and other scripts pass through unchanged.
        assert_eq!(fold_traditional(simplified.into()), simplified);
        assert_eq!(fold_traditional("GPT-4 在金融".into()), "GPT-4 在金融");
    }

    #[test]
    fn offsets_point_at_the_original_bytes() {
        let text = "２０２４年，ＡＩＧＣ与大模型在金融行业落地。GPT-4 的增长率达148%";
        for t in Analyzer::new().analyze(text) {
            let original = &text[t.byte_from..t.byte_to];
            let folded: String = original
                .chars()
                .map(fold_width)
                .collect::<String>()
                .to_lowercase();
            assert_eq!(folded, t.text, "token {t:?} covers {original:?}");
        }
    }

    #[test]
    fn technical_terms_years_and_percentages_are_terms() {
        let w = words("AIGC与MaaS模式，GPT-4发布于2023年，复合增长率达148%");
        for expected in ["aigc", "maas", "gpt", "2023", "148%"] {
            assert!(
                w.iter().any(|x| x == expected),
                "{expected} missing from {w:?}"
            );
        }
        assert!(w.iter().any(|x| x == "gpt-4" || x == "4"), "{w:?}");
    }

    #[test]
    fn full_width_forms_fold_and_latin_lowercases() {
        assert_eq!(words("ＡＩＧＣ"), words("aigc"));
        assert_eq!(words("MaaS"), vec!["maas"]);
    }

    #[test]
    fn search_mode_offers_parts_of_long_words() {
        let w = words("中华人民共和国");
        assert!(w.contains(&"中华人民共和国".to_string()));
        assert!(w.contains(&"共和国".to_string()), "{w:?}");
    }

    #[test]
    fn stop_words_and_punctuation_are_dropped() {
        let w = words("什么是大模型？的、了。The model!");
        assert!(
            !w.iter().any(|x| x == "什么" || x == "的" || x == "the"),
            "{w:?}"
        );
        assert!(w.iter().all(|x| x.chars().any(|c| c.is_alphanumeric())));
        assert!(w.contains(&"模型".to_string()));
    }

    #[test]
    fn punctuation_only_text_is_not_searchable() {
        assert!(!Analyzer::has_searchable_chars("？！。，  ..._"));
        for searchable in [
            "ＡＩ",
            "政务",
            "二〇二四",
            "Î",
            "5",
            "ok?",
            "Жизнь",
            "Ω",
            "カナ",
            "한국",
        ] {
            assert!(Analyzer::has_searchable_chars(searchable), "{searchable}");
        }
        // Not symbols or marks, however letter-like, and nothing beyond the pattern's
        // ranges (it cannot name characters past U+FFFF for every JSON Schema reader).
        for not in ["①", "¼", "Ⓐ", "\u{345}", "×", "\u{20000}", "⺀"] {
            assert!(!Analyzer::has_searchable_chars(not), "{not:?}");
        }
    }

    #[test]
    fn a_vocabulary_keeps_a_name_whole_and_takes_no_term_away() {
        let vocabulary = Vocabulary::discover(["京东推出“言犀”平台。"], ["头豹研究院"]);
        let enriched = Analyzer::with_vocabulary(&vocabulary);
        let text = "言犀与头豹研究院服务金融行业的风险控制";
        let plain = words(text);
        let with: Vec<String> = enriched.analyze(text).into_iter().map(|t| t.text).collect();
        // jieba's HMM happens to join 言犀 here; the vocabulary keeps it whole anywhere.
        assert!(with.contains(&"言犀".to_string()), "{with:?}");
        assert!(!plain.contains(&"头豹研究院".to_string()), "{plain:?}");
        // Every term of the plain analysis is still there, and the name is the only new
        // one: ordinary words are cut as before.
        let added: Vec<&String> = with.iter().filter(|w| !plain.contains(w)).collect();
        assert_eq!(added, ["头豹研究院"], "{with:?}");
        for w in &plain {
            assert!(with.contains(w), "{w} lost: {with:?}");
        }
        // Offsets still point at the original bytes.
        for t in enriched.analyze(text) {
            assert_eq!(&text[t.byte_from..t.byte_to], t.text);
        }
        // Without a vocabulary the analyzer is the plain one.
        assert_eq!(
            Analyzer::with_vocabulary(&Vocabulary::default()).analyze(text),
            Analyzer::new().analyze(text)
        );
    }

    #[test]
    fn tantivy_stream_yields_the_same_tokens() {
        let mut tokenizer = JiebaTokenizer::new();
        let mut stream = tokenizer.token_stream("大模型应用于医疗");
        let mut got = Vec::new();
        while stream.advance() {
            got.push(stream.token().text.clone());
        }
        assert_eq!(got, words("大模型应用于医疗"));
    }
}
