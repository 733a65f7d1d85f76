//! The report vocabulary: names and terms of this collection that jieba's dictionary
//! does not know (products, models, institutions: 言犀, 聚言, 秒画, 头豹研究院), found in
//! the reports and the catalog when an index is built, stored with it, and loaded into
//! the jieba the index and its queries are analysed with.
//!
//! Without it jieba cuts an unknown name into single characters, or its HMM joins them
//! differently in a report sentence and in a short question, so the two need not share
//! a term. Three sources, each a rule that holds for any Chinese report collection:
//!
//! - **catalog names**: the Chinese runs of titles, publishers and aliases;
//! - **quoted names**: short runs inside 《》, “” or 「」, where authors name things;
//! - **frequent runs**: a few consecutive jieba words, at least one of them a lone
//!   character or a Latin word, that recur ([`MIN_FREQUENCY`]), hold together (each
//!   piece mostly occurs in this run: [`MIN_COHESION`]) and stand free of their
//!   neighbours (words, punctuation or several different characters on each side:
//!   [`MIN_NEIGHBOURS`]), looked for twice: the second time with the words found and
//!   a few guides ([`MAX_GUIDE_MISALIGNED_SHARE`]) known, so that 言犀 in 言犀大模型 stands
//!   before a word; fragments of longer finds are dropped ([`FRAGMENT_SHARE`]).
//!
//! A word is kept only if every occurrence of it in the collection begins and ends at a
//! boundary of jieba's own segmentation, so it never cuts a word jieba already finds
//! (the "型和" of "大模型和"); and the analyzer also emits the default segmentation of
//! every vocabulary word it meets, so no term the plain dictionary gives is lost
//! ([`super::Analyzer::with_vocabulary`]).
//!
//! Written by hand: new-word discovery over a few hundred passages is a few dozen lines,
//! and no maintained crate does it over jieba's segmentation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use jieba_rs::Jieba;

use crate::corpus::is_han;
use crate::error::{Error, Result};

use super::{DEFAULT_JIEBA, fold_text, is_stop_word};

/// Version of the discovery rules; part of the index settings, so changing them
/// rebuilds the index (and its vocabulary).
pub const VOCABULARY_RULES_VERSION: &str = "vocabulary-v2";

/// File of the vocabulary inside an index data folder: one `word origin` line per word.
pub const VOCABULARY_FILE: &str = "vocabulary.txt";

/// A frequent run must occur at least this often: with fewer sightings the neighbour
/// and cohesion tests below say little. A name written once or twice is still found when
/// it is quoted or in the catalog.
pub const MIN_FREQUENCY: usize = 3;

/// Longest word kept, in characters: the names in our catalog and reports (头豹研究院,
/// 第一新声研究院) fit; longer runs are phrases or titles, which BM25 matches word by word.
pub const MAX_WORD_CHARS: usize = 8;

/// Most jieba words a frequent run may join; names of up to four pieces (京东/言/犀,
/// 弗若斯特/沙利/文) are covered.
pub const MAX_PIECES: usize = 4;

/// Distinct lone characters (a boundary counts as one, see `neighbour`) a frequent run
/// needs on each side unless only boundaries stand there: a run that always follows the
/// same lone character is part of a longer word. Two is the least that says "free"; the
/// reports give few occurrences.
pub const MIN_NEIGHBOURS: usize = 2;

/// Share of each piece's occurrences that must fall inside the run: a fragment of a name
/// mostly occurs in that name (犀 in 言犀), a function character or a common word does
/// not (各 in 各行业, 行业 in 各行业, 市场规模 in 市场规模约). One half separates the two
/// on our reports: testing only the lone pieces let 各行业, 当模型 and 市场规模约 in.
pub const MIN_COHESION: f32 = 0.5;

/// Share of a run's occurrences that may cut a jieba word for it to serve as a *guide*:
/// a word that only shapes the second look at the texts, never one the analyzer adds.
/// 大模型, the reports' most frequent term (1,652 times), is written inside 强大模型 or
/// 超大模型 eight times (0.5%), so it cannot be a vocabulary word; but as a guide it lets
/// the second look see 言犀 standing before a word (言犀大模型) and not before 大. Adding
/// 大模型 itself to the analyzer cost dev answers 0.758 → 0.735 gold bigram recall.
pub const MAX_GUIDE_MISALIGNED_SHARE: f32 = 0.01;

/// A frequent word found inside a longer vocabulary word at least this share of the
/// times it occurs is dropped as a fragment of that word. Nine in ten: a name's part
/// that also stands alone now and then (百丽 of 百丽时尚) is kept.
pub const FRAGMENT_SHARE: f32 = 0.9;

/// Where a vocabulary word came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A Chinese run of a catalog title, publisher or alias.
    Catalog,
    /// A short run inside 《》, “” or 「」 in a report.
    Quoted,
    /// A recurring, cohesive, free-standing run of jieba words.
    Frequent,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Catalog => "catalog",
            Origin::Quoted => "quoted",
            Origin::Frequent => "frequent",
        }
    }

    fn parse(s: &str) -> Option<Origin> {
        [Origin::Catalog, Origin::Quoted, Origin::Frequent]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// The words of one collection that the analyzer adds to jieba's dictionary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    words: BTreeMap<String, Origin>,
}

/// A jieba word that can be part of a vocabulary word: Chinese characters only, or a
/// Latin word (letters, maybe digits and inner connectors).
fn is_word_piece(word: &str) -> bool {
    word.chars().all(is_han)
        || (word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && word.chars().any(|c| c.is_ascii_alphabetic()))
}

/// A piece that jieba could not place in a longer word: one Chinese character, or a Latin
/// word (jieba never joins Latin and Chinese).
fn is_lone(word: &str) -> bool {
    let mut chars = word.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => is_han(c),
        _ => word.chars().any(|c| c.is_ascii_alphabetic()),
    }
}

/// Whether `word` could be added at all: 2..=[`MAX_WORD_CHARS`] characters of word
/// pieces, at least two of them Chinese, not a dictionary word already, and not one
/// jieba word either.
fn is_candidate(word: &str) -> bool {
    let chars = word.chars().count();
    (2..=MAX_WORD_CHARS).contains(&chars)
        && word.chars().filter(|c| is_han(*c)).count() >= 2
        && word
            .chars()
            .all(|c| is_han(c) || c.is_ascii_alphanumeric() || c == '-')
        && !DEFAULT_JIEBA.has_word(word)
        && DEFAULT_JIEBA.cut(word, false).len() >= 2
}

/// Counts of one frequent-run candidate.
#[derive(Default)]
struct RunCounts {
    occurrences: usize,
    left: HashSet<char>,
    right: HashSet<char>,
}

/// What stands beside a run: the jieba word `next_to` it when that is a single
/// character, else `' '`, a boundary (punctuation, a text edge, or a word of two or more
/// characters: a name always written after the same company, 京东言犀 or 商汤秒画, is still
/// a name, while a run always after the same lone character may be the tail of a longer
/// word).
fn neighbour(next_to: Option<&str>) -> char {
    let mut chars = next_to.unwrap_or_default().chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_alphanumeric() => c,
        _ => ' ',
    }
}

/// Whether the neighbours seen on one side of a run leave it standing free: only
/// boundaries, or at least [`MIN_NEIGHBOURS`] different ones.
fn is_free(neighbours: &HashSet<char>) -> bool {
    neighbours.len() >= MIN_NEIGHBOURS || neighbours.iter().all(|c| *c == ' ')
}

/// Counts over one segmentation of the collection: the runs of a few jieba words that
/// could be words, and every jieba word as a piece of its own.
struct RunStatistics {
    /// Occurrences of each run (always starting and ending at jieba's word boundaries).
    runs: HashMap<String, RunCounts>,
    /// Occurrences of each jieba word.
    pieces: HashMap<String, usize>,
}

impl RunStatistics {
    fn gather(texts: &[String], jieba: &Jieba) -> RunStatistics {
        let mut runs: HashMap<String, RunCounts> = HashMap::new();
        let mut pieces: HashMap<String, usize> = HashMap::new();
        for text in texts {
            let tokens = jieba.cut(text, false);
            for (i, t) in tokens.iter().enumerate() {
                *pieces.entry(t.word.to_string()).or_default() += 1;
                let before = neighbour(i.checked_sub(1).map(|p| tokens[p].word));
                let mut run = String::new();
                let mut has_lone = false;
                for (n, piece) in tokens[i..].iter().take(MAX_PIECES).enumerate() {
                    if !is_word_piece(piece.word) || is_stop_word(&piece.word.to_lowercase()) {
                        break;
                    }
                    run.push_str(piece.word);
                    has_lone |= is_lone(piece.word);
                    if run.chars().count() > MAX_WORD_CHARS {
                        break;
                    }
                    if n == 0 || !has_lone {
                        continue;
                    }
                    let counts = runs.entry(run.clone()).or_default();
                    counts.occurrences += 1;
                    counts.left.insert(before);
                    counts
                        .right
                        .insert(neighbour(tokens.get(i + n + 1).map(|t| t.word)));
                }
            }
        }
        RunStatistics { runs, pieces }
    }

    /// Whether `word`, found `occurrences` times in the texts, begins and ends at word
    /// boundaries of this segmentation every time.
    fn keeps_jieba_words(&self, word: &str, occurrences: usize) -> bool {
        self.misaligned_share(word, occurrences) == 0.0
    }

    /// Share of the `occurrences` of `word` that do not begin and end at word boundaries
    /// of this segmentation.
    fn misaligned_share(&self, word: &str, occurrences: usize) -> f32 {
        let aligned = self.runs.get(word).map_or(0, |r| r.occurrences);
        (occurrences - aligned.min(occurrences)) as f32 / occurrences.max(1) as f32
    }

    /// The runs not yet in `words` that recur, stand free and hold together (see the
    /// module documentation), cut into pieces by `jieba`, the segmentation counted here,
    /// with at most `misaligned` of their occurrences cutting a jieba word.
    fn frequent_runs(
        &self,
        jieba: &Jieba,
        occurrences: &dyn Fn(&str) -> usize,
        words: &BTreeMap<String, Origin>,
        misaligned: f32,
    ) -> Vec<String> {
        let mut found = Vec::new();
        let mut frequent: Vec<(&String, &RunCounts)> = self
            .runs
            .iter()
            .filter(|(_, r)| {
                r.occurrences >= MIN_FREQUENCY && is_free(&r.left) && is_free(&r.right)
            })
            .collect();
        frequent.sort_by(|a, b| a.0.cmp(b.0));
        for (run, counts) in frequent {
            if !is_candidate(run) || words.contains_key(run) {
                continue;
            }
            let cohesion = jieba
                .cut(run, false)
                .iter()
                .map(|p| {
                    counts.occurrences as f32
                        / self.pieces.get(p.word).copied().unwrap_or(1).max(1) as f32
                })
                .fold(f32::INFINITY, f32::min);
            if cohesion >= MIN_COHESION
                && self.misaligned_share(run, occurrences(run)) <= misaligned
            {
                found.push(run.clone());
            }
        }
        found
    }
}

impl Vocabulary {
    /// Finds the vocabulary of a collection: `texts` are its passages, `names` its
    /// catalog labels (titles, publishers, aliases). Deterministic for the same input.
    pub fn discover<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Vocabulary {
        let texts: Vec<String> = texts.into_iter().map(fold_text).collect();
        let occurrences =
            |word: &str| -> usize { texts.iter().map(|t| t.matches(word).count()).sum() };
        let mut words = BTreeMap::new();
        let first = RunStatistics::gather(&texts, &DEFAULT_JIEBA);
        for name in names {
            for run in fold_text(name).split(|c: char| !(is_han(c) || c.is_ascii_alphanumeric())) {
                if is_candidate(run) && first.keeps_jieba_words(run, occurrences(run)) {
                    words.entry(run.to_string()).or_insert(Origin::Catalog);
                }
            }
        }
        for text in &texts {
            for (open, close) in [('《', '》'), ('“', '”'), ('「', '」')] {
                for quoted in text.split(open).skip(1).filter_map(|s| s.split_once(close)) {
                    let quoted = quoted.0;
                    if is_candidate(quoted) && first.keeps_jieba_words(quoted, occurrences(quoted))
                    {
                        words.entry(quoted.to_string()).or_insert(Origin::Quoted);
                    }
                }
            }
        }
        for run in first.frequent_runs(&DEFAULT_JIEBA, &occurrences, &words, 0.0) {
            words.insert(run, Origin::Frequent);
        }
        // A second look with the words found so far and the guides: a name always
        // written before one of them (言犀 before 大模型, which jieba cuts as 大/模型) now
        // has a word as its neighbour.
        let guides = first.frequent_runs(
            &DEFAULT_JIEBA,
            &occurrences,
            &words,
            MAX_GUIDE_MISALIGNED_SHARE,
        );
        let mut jieba = Jieba::clone(&DEFAULT_JIEBA);
        for word in words.keys().chain(&guides) {
            jieba.add_word(word, None, None);
        }
        let second = RunStatistics::gather(&texts, &jieba);
        for run in second.frequent_runs(&jieba, &occurrences, &words, 0.0) {
            words.insert(run, Origin::Frequent);
        }
        // A run that nearly always occurs inside a longer word found is a fragment of it
        // (弗若 of 弗若斯特).
        let fragments: Vec<String> = words
            .iter()
            .filter(|(word, origin)| {
                **origin == Origin::Frequent
                    && words.keys().any(|longer| {
                        longer.len() > word.len()
                            && longer.contains(word.as_str())
                            && occurrences(longer) as f32
                                >= FRAGMENT_SHARE * occurrences(word) as f32
                    })
            })
            .map(|(word, _)| word.clone())
            .collect();
        for fragment in fragments {
            words.remove(&fragment);
        }
        Vocabulary { words }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when discovery found nothing.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether `word` (folded as the analyzer folds it) is in the vocabulary.
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains_key(word)
    }

    /// The words in order, with where each came from.
    pub fn words(&self) -> impl Iterator<Item = (&str, Origin)> {
        self.words.iter().map(|(w, o)| (w.as_str(), *o))
    }

    /// The file form: one `word origin` line per word, sorted.
    pub fn to_file_text(&self) -> String {
        self.words
            .iter()
            .map(|(w, o)| format!("{w} {}\n", o.as_str()))
            .collect()
    }

    /// Reads the file form written by [`Vocabulary::to_file_text`]; `path` names the file
    /// in the error.
    pub fn from_file_text(text: &str, path: &Path) -> Result<Vocabulary> {
        let mut words = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let parsed = line
                .split_once(' ')
                .and_then(|(w, o)| Some((w, Origin::parse(o)?)))
                .filter(|(w, _)| !w.is_empty());
            let Some((word, origin)) = parsed else {
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line {}: expected `word origin`, found {line:?}", n + 1),
                    ),
                ));
            };
            words.insert(word.to_string(), origin);
        }
        Ok(Vocabulary { words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_name_and_a_catalog_name_are_found_and_ordinary_words_are_not() {
        let texts = [
            "京东推出“言犀”平台。",
            "报告由头豹研究院发布，金融行业应用广泛。",
        ];
        let v = Vocabulary::discover(texts, ["头豹研究院 头豹"]);
        assert!(v.contains("言犀"), "{v:?}");
        assert!(v.contains("头豹研究院"), "{v:?}");
        assert!(!v.contains("金融"), "{v:?}");
        assert!(!v.contains("金融行业"), "{v:?}");
    }

    #[test]
    fn a_recurring_free_standing_name_is_found() {
        let texts = [
            "言犀平台服务零售。",
            "京东言犀覆盖客服。",
            "基于言犀，企业降低成本。",
            "我们使用言犀：效果好。",
        ];
        let v = Vocabulary::discover(texts, []);
        assert_eq!(
            v.words().collect::<Vec<_>>(),
            vec![("言犀", Origin::Frequent)]
        );
    }

    #[test]
    fn a_name_before_a_frequent_unknown_word_is_found_by_the_second_look() {
        // 大模型 is frequent but once cut by 强大: it guides, it is not added. 言犀 is
        // always followed by 大 in jieba's cut; beside the guide it stands free.
        let mut texts: Vec<String> = Vec::new();
        for _ in 0..10 {
            for field in ["行业", "金融", "医疗", "政务", "通用"] {
                for verb in ["落地", "应用", "发展"] {
                    texts.push(format!("{field}大模型{verb}。"));
                }
            }
        }
        texts.extend(
            [
                "强大模型很重要。",
                "京东推出言犀大模型。",
                "言犀大模型服务零售。",
                "基于言犀大模型，企业降本。",
                "我们用言犀大模型做客服。",
            ]
            .map(String::from),
        );
        let v = Vocabulary::discover(texts.iter().map(String::as_str), []);
        assert!(v.contains("言犀"), "{v:?}");
        assert!(!v.contains("大模型"), "{v:?}");
    }

    #[test]
    fn a_fragment_of_a_longer_name_is_dropped() {
        let texts = [
            "德宝艺苑举办展览。",
            "参观德宝艺苑。",
            "德宝艺苑，位于北京。",
            "我们去德宝艺苑看画。",
        ];
        let v = Vocabulary::discover(texts, []);
        assert!(v.contains("德宝艺苑"), "{v:?}");
        assert!(!v.contains("德宝"), "{v:?}");
    }

    #[test]
    fn a_run_that_would_cut_a_known_word_is_refused() {
        // "型和" recurs with varied neighbours, but it would cut 模型 in every text.
        let texts = ["“型和”", "大模型和数据", "小模型和算力", "新模型和应用"];
        let v = Vocabulary::discover(texts, ["型和"]);
        assert!(!v.contains("型和"), "{v:?}");
    }

    #[test]
    fn function_characters_do_not_make_words() {
        let texts = [
            "企业在金融落地。",
            "企业在医疗落地。",
            "政府在政务落地。",
            "银行在风控落地。",
        ];
        let v = Vocabulary::discover(texts, []);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn the_file_form_reads_back_and_bad_lines_are_refused() {
        let v = Vocabulary::discover(["京东推出“言犀”平台。"], ["头豹研究院"]);
        let text = v.to_file_text();
        let back = Vocabulary::from_file_text(&text, Path::new("vocabulary.txt")).unwrap();
        assert_eq!(back, v);
        let err = Vocabulary::from_file_text("言犀 invented\n", Path::new("v.txt")).unwrap_err();
        assert!(err.to_string().contains("v.txt"), "{err}");
    }
}
