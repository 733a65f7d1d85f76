//! Chinese names an English question writes in pinyin: "Tongyi Qianwen" is 通义千问,
//! "Du Xiaoman" 度小满, "Taikang" 泰康. No dictionary lists the products, companies and
//! places the reports name, and the glossary leaves names out ([`super::translation`]),
//! so a question about them had only its common words to search with. Pinyin is
//! regular: a name's syllables, read back to the characters that sound so, find how the
//! collection writes it.
//!
//! Written here because it is the product's own: the `pinyin` crate gives each
//! character's readings; which names to read and how to find them in the reports is ours.

use std::collections::HashMap;
use std::sync::LazyLock;

use pinyin::ToPinyinMulti;

/// Ways of cutting one word into syllables kept ("xian" is xian or xi an): enough for
/// every name of the English sets, most of which cut one way; a bound on the cost, not
/// fitted.
pub const MAX_SYLLABIFICATIONS: usize = 8;

/// Most names of one question looked for in the collection ([`spellings`] scans its text
/// once per reading): a question names a few; a bound on the cost of one that is nothing
/// but capitalized pinyin, not fitted.
pub const MAX_NAME_LOOKUPS: usize = 8;

/// Fewest syllables of a name read as pinyin: a single syllable ("Li", "Ma") sounds like
/// dozens of characters and finds something in any collection.
pub const MIN_NAME_SYLLABLES: usize = 2;

/// First and last character of the CJK Unified Ideographs block, the characters read.
const FIRST_HAN: char = '\u{4E00}';
const LAST_HAN: char = '\u{9FFF}';

/// A set of characters of the CJK Unified Ideographs block, one bit each: a name is
/// looked for at every position of the collection's text, so membership is a bit test
/// (a hash set made the lookup of an English question's names take longer than its
/// search).
struct HanSet(Vec<u64>);

impl HanSet {
    fn new() -> Self {
        HanSet(vec![0; (LAST_HAN as usize - FIRST_HAN as usize) / 64 + 1])
    }

    fn insert(&mut self, c: char) {
        let i = c as usize - FIRST_HAN as usize;
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, c: char) -> bool {
        (FIRST_HAN..=LAST_HAN).contains(&c) && {
            let i = c as usize - FIRST_HAN as usize;
            self.0[i / 64] & (1 << (i % 64)) != 0
        }
    }
}

/// The characters of the CJK Unified Ideographs block by their toneless readings, every
/// reading of a character with several ("度": du, duo); "ü" is also read as "v" and "u",
/// the ways English text writes it.
static CHARACTERS_BY_SYLLABLE: LazyLock<HashMap<String, HanSet>> = LazyLock::new(|| {
    let mut table: HashMap<String, HanSet> = HashMap::new();
    for c in FIRST_HAN..=LAST_HAN {
        let Some(readings) = c.to_pinyin_multi() else {
            continue;
        };
        for reading in readings {
            let plain = reading.plain();
            for spelling in [
                plain.to_string(),
                plain.replace('ü', "v"),
                plain.replace('ü', "u"),
            ] {
                table.entry(spelling).or_insert_with(HanSet::new).insert(c);
            }
        }
    }
    table
});

/// The ways `word` (ASCII letters, any case) cuts into pinyin syllables, at most
/// [`MAX_SYLLABIFICATIONS`]; empty when it does not ("Tencent", "Frost").
pub fn syllabify(word: &str) -> Vec<Vec<String>> {
    let word = word.to_ascii_lowercase();
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return Vec::new();
    }
    // Whether the letters from each position on cut into syllables at all, from the end:
    // the search below then enters no dead end, and stops after MAX_SYLLABIFICATIONS
    // ways however long the word ("xianxian…q" would otherwise try 2ⁿ cuts).
    let n = word.len();
    let mut completes = vec![false; n + 1];
    completes[n] = true;
    for start in (0..n).rev() {
        completes[start] = (1..=(n - start).min(LONGEST_SYLLABLE)).any(|len| {
            completes[start + len] && CHARACTERS_BY_SYLLABLE.contains_key(&word[start..start + len])
        });
    }
    let mut found = Vec::new();
    if completes[0] {
        cut(&word, 0, &completes, &mut Vec::new(), &mut found);
    }
    found
}

/// Letters in the longest pinyin syllable ("zhuang", "shuang").
const LONGEST_SYLLABLE: usize = 6;

fn cut(
    word: &str,
    start: usize,
    completes: &[bool],
    path: &mut Vec<String>,
    found: &mut Vec<Vec<String>>,
) {
    if found.len() == MAX_SYLLABIFICATIONS {
        return;
    }
    if start == word.len() {
        found.push(path.clone());
        return;
    }
    for len in (1..=(word.len() - start).min(LONGEST_SYLLABLE)).rev() {
        let syllable = &word[start..start + len];
        if completes[start + len] && CHARACTERS_BY_SYLLABLE.contains_key(syllable) {
            path.push(syllable.to_string());
            cut(word, start + len, completes, path, found);
            path.pop();
        }
    }
}

/// The runs of consecutive capitalized words of `question` that read as pinyin, each as
/// its words: "When did Alibaba launch Tongyi Qianwen?" → `[Alibaba]`, `[Tongyi, Qianwen]`.
/// Left out are words written all in capitals (acronyms: "AI", "ERNIE") and those
/// `is_english` knows, which the glossary translates ("China", "Huawei").
pub fn pinyin_runs(question: &str, is_english: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for token in question.split(|c: char| !c.is_ascii_alphanumeric() && c != '\'' && c != '’') {
        let word = token
            .strip_suffix("'s")
            .or_else(|| token.strip_suffix("’s"))
            .unwrap_or(token);
        let reads = word.len() >= 2
            && word.starts_with(|c: char| c.is_ascii_uppercase())
            && word[1..].bytes().all(|b| b.is_ascii_lowercase())
            && !syllabify(word).is_empty()
            && !is_english(word);
        if reads {
            run.push(word.to_string());
        }
        // A possessive ends its name ("Alibaba's Zhangbei").
        if (!reads || word.len() != token.len()) && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// How `text` may write the name of `words` (pinyin, one or more words): the character
/// sequences reading as the name's syllables that it holds, with how often, most often
/// first; none when the name has fewer than [`MIN_NAME_SYLLABLES`] syllables.
pub fn spellings(words: &[String], text: &[char]) -> Vec<(String, usize)> {
    // Every reading of the whole name: the product of each word's syllabifications.
    let mut readings: Vec<Vec<String>> = vec![Vec::new()];
    for word in words {
        let cuts = syllabify(word);
        readings = readings
            .iter()
            .flat_map(|r| {
                cuts.iter().map(move |c| {
                    let mut r = r.clone();
                    r.extend(c.iter().cloned());
                    r
                })
            })
            .take(MAX_SYLLABIFICATIONS)
            .collect();
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for reading in readings.iter().filter(|r| r.len() >= MIN_NAME_SYLLABLES) {
        let sets: Vec<&HanSet> = reading
            .iter()
            .filter_map(|s| CHARACTERS_BY_SYLLABLE.get(s))
            .collect();
        if sets.len() != reading.len() || text.len() < sets.len() {
            continue;
        }
        for start in 0..=text.len() - sets.len() {
            if sets
                .iter()
                .enumerate()
                .all(|(i, set)| set.contains(text[start + i]))
            {
                *counts
                    .entry(text[start..start + sets.len()].iter().collect())
                    .or_default() += 1;
            }
        }
    }
    let mut found: Vec<(String, usize)> = counts.into_iter().collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn words_cut_into_syllables_or_not_at_all() {
        assert_eq!(syllabify("Qianwen")[0], vec!["qian", "wen"]);
        assert!(syllabify("xian").iter().any(|c| c == &["xi", "an"]));
        assert!(syllabify("Tencent").is_empty());
        assert!(syllabify("Frost").is_empty());
        assert!(syllabify("Word2Vec").is_empty());
        // A long word that almost cuts is answered at once, not after 2ⁿ tries.
        assert!(syllabify(&format!("{}q", "xian".repeat(200))).is_empty());
        assert_eq!(syllabify(&"xian".repeat(200)).len(), MAX_SYLLABIFICATIONS);
    }

    #[test]
    fn runs_are_capitalized_pinyin_words_the_glossary_does_not_know() {
        let english = |w: &str| matches!(w.to_lowercase().as_str(), "china" | "huawei");
        let runs = pinyin_runs(
            "When did Alibaba's Tongyi Qianwen reach China, Huawei and the AI of ERNIE?",
            english,
        );
        assert_eq!(runs, vec![vec!["Alibaba"], vec!["Tongyi", "Qianwen"]]);
    }

    #[test]
    fn a_name_is_found_as_the_collection_may_write_it() {
        let text = chars("度小满发布轩辕大模型。阿里巴巴推出通义千问。通义千问开放。");
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            spellings(&words("Tongyi Qianwen"), &text),
            vec![("通义千问".to_string(), 2)]
        );
        assert_eq!(spellings(&words("Du Xiaoman"), &text)[0].0, "度小满");
        assert_eq!(spellings(&words("Alibaba"), &text)[0].0, "阿里巴巴");
        // Not in the text, or a single syllable: nothing.
        assert!(spellings(&words("Hunyuan"), &text).is_empty());
        assert!(spellings(&words("Du"), &text).is_empty());
    }
}
