//! English questions over Chinese reports: the English words and phrases of a question
//! that a bilingual dictionary knows become the Chinese words the collection uses for
//! them, so BM25 has something to match (dictionary-based cross-language retrieval).
//!
//! Without this, an English question's BM25 matches are the reports' few English lines,
//! whatever it asks (dev-en BM25 R@5 0.083), and hybrid search has only the dense side.
//! The dictionary is CC-CEDICT (see `glossary/README.md`), compiled into the binary and
//! read on the first English question. Which of a word's many translations to search for
//! is decided by the collection: the one it uses most (the "most frequent translation"
//! rule of dictionary-based CLIR), among those it uses at all.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::LazyLock;

use tantivy::tokenizer::{
    Language, LowerCaser, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// The bundled dictionary: one line per entry, simplified headword, a tab, and the
/// English definitions separated by `/`.
const BUNDLED_GLOSSARY: &[u8] = include_bytes!("glossary/cedict-zh-en.tsv.gz");

/// Longest English phrase, in content words, looked up as one unit. Most dictionary
/// phrases a question names have two or three ("customer service", "computing power",
/// "State Grid Corporation of China" is four after its stop words).
pub const MAX_PHRASE_WORDS: usize = 4;

/// Longest definition, in content words, the glossary keeps: longer ones are
/// explanations ("unit of land area equivalent to …"), not translations.
pub const MAX_DEFINITION_WORDS: usize = 6;

/// Chinese words searched per English word or phrase: the one the collection uses most.
/// On dev-en.jsonl plus the three English questions of dev.jsonl (15), BM25 alone gave
/// R@5 / MRR@10 0.533 / 0.469 at 1, 0.467 / 0.401 at 2, 0.533 / 0.403 at 3 and 0.467 /
/// 0.392 at 4: a second translation is more often a near-miss (模型 / 典型 for "model")
/// than a synonym the reports use.
pub const MAX_TRANSLATIONS: usize = 1;

/// English words that only shape a question (auxiliaries, reporting verbs, pronouns),
/// dropped before lookup together with the analyzer's English stop words (which hold the
/// interrogatives): translating "how many" or "does" would search for 多少 and 做 in every
/// question.
pub const QUESTION_WORDS: &[&str] = &[
    "many",
    "much",
    "has",
    "have",
    "had",
    "may",
    "might",
    "must",
    "according",
    "report",
    "reports",
    "mentioned",
    "mention",
    "say",
    "says",
    "said",
    "name",
    "named",
    "called",
    "exactly",
    "kind",
    "kinds",
    "type",
    "types",
    "one",
    "ones",
    "s",
    "but",
    "if",
    "no",
    "not",
    "such",
    "then",
    "they",
    "whose",
];

/// Stems of the English adverbs that place a question in time ("today", "currently"):
/// translated and searched like other words (目前 for "currently" finds passages), but
/// never a subject the reports lack, since they say 目前 or 现在 where the glossary has
/// 今天 and 今日 for "today".
pub const TIME_WORDS: &[&str] = &["today", "nowaday", "now", "current", "recent"];

/// English number words ("seven", "first", "twice"): a quantity, never a subject the
/// reports lack, since they write figures in digits (1-7月 for "the first seven months",
/// where the glossary has 七 and 第一). Like [`TIME_WORDS`], translated and searched.
pub const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "billions",
    "trillion",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "twice",
    "half",
    "halves",
    "dozen",
    "dozens",
    "double",
    "triple",
    "quarter",
    "quarters",
];

/// Irregular English verb forms and their base form ("sold" → "sell"): a stemmer leaves
/// them as they are, and the dictionary defines verbs by their base ("to sell"), so
/// "sold" alone finds only 销行 ("to be sold") and would be a word the reports never use.
/// Forms that are also common nouns or adjectives ("found", "left", "saw", "felt",
/// "rose") are left out. Written by hand: the list is short and closed.
pub const IRREGULAR_VERBS: &[(&str, &str)] = &[
    ("arose", "arise"),
    ("arisen", "arise"),
    ("became", "become"),
    ("began", "begin"),
    ("begun", "begin"),
    ("bought", "buy"),
    ("broke", "break"),
    ("broken", "break"),
    ("brought", "bring"),
    ("built", "build"),
    ("caught", "catch"),
    ("chose", "choose"),
    ("chosen", "choose"),
    ("dealt", "deal"),
    ("drew", "draw"),
    ("drawn", "draw"),
    ("drove", "drive"),
    ("driven", "drive"),
    ("fought", "fight"),
    ("flew", "fly"),
    ("flown", "fly"),
    ("forgot", "forget"),
    ("forgotten", "forget"),
    ("gave", "give"),
    ("given", "give"),
    ("gone", "go"),
    ("went", "go"),
    ("grew", "grow"),
    ("grown", "grow"),
    ("held", "hold"),
    ("kept", "keep"),
    ("knew", "know"),
    ("known", "know"),
    ("led", "lead"),
    ("lent", "lend"),
    ("lost", "lose"),
    ("made", "make"),
    ("meant", "mean"),
    ("met", "meet"),
    ("paid", "pay"),
    ("ran", "run"),
    ("rebuilt", "rebuild"),
    ("risen", "rise"),
    ("sent", "send"),
    ("shown", "show"),
    ("sold", "sell"),
    ("sought", "seek"),
    ("spent", "spend"),
    ("spoke", "speak"),
    ("spoken", "speak"),
    ("stood", "stand"),
    ("struck", "strike"),
    ("taught", "teach"),
    ("thought", "think"),
    ("threw", "throw"),
    ("thrown", "throw"),
    ("told", "tell"),
    ("took", "take"),
    ("taken", "take"),
    ("understood", "understand"),
    ("undertook", "undertake"),
    ("undertaken", "undertake"),
    ("withdrew", "withdraw"),
    ("won", "win"),
    ("wrote", "write"),
    ("written", "write"),
];

/// `text` with its irregular verb forms ([`IRREGULAR_VERBS`]) in their base form, word
/// for word, so that its stems line up with its words as written.
fn base_forms(text: &str) -> String {
    static WORD: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"[A-Za-z]+").expect("a valid pattern"));
    WORD.replace_all(text, |m: &regex::Captures| {
        let word = &m[0];
        let lower = word.to_ascii_lowercase();
        IRREGULAR_VERBS
            .iter()
            .find(|(form, _)| *form == lower)
            .map_or_else(|| word.to_string(), |(_, base)| base.to_string())
    })
    .into_owned()
}

/// English → Chinese: each English definition of the dictionary, as its content-word
/// stems, and the Chinese headwords it defines.
pub struct Glossary {
    entries: BTreeMap<String, Vec<String>>,
    /// The definitions of at most [`SHORT_DEFINITION_WORDS`] words that are a headword's
    /// first sense (消费 "to consume"; not 大方's "a type of green tea" or 追's "to court"),
    /// with those headwords: what [`Glossary::unused_words`] asks of related words.
    first_senses: BTreeMap<String, Vec<String>>,
    /// The one-word definitions the dictionary writes capitalized, lowercase, other than
    /// [`CALENDAR_NAMES`]: places, bodies and events ("Africa", "Mars", "Olympic"), which
    /// a question names as capitalized words too ([`Glossary::is_proper_noun`]).
    proper_nouns: HashSet<String>,
    /// The two-word definitions in their own words, each made singular
    /// ([`singular`]): "wind farm", "sign language". [`Glossary::unused_words_and_phrases`]
    /// holds a question's phrase absent only when it is one of these.
    two_word_definitions: HashSet<String>,
    /// Chinese headword → the abbreviations the dictionary gives as one of its senses
    /// ([`abbreviation_sense`]): 个人电脑 "personal computer/PC", 光学字符识别 "optical
    /// character recognition (OCR)". The reports often write a concept as its abbreviation,
    /// so a question's Chinese word they lack may still be what they say.
    abbreviations: HashMap<String, Vec<String>>,
    /// One-word definitions that a headword gives after its first sense, each with that
    /// first sense when it is one word too (供货商 "supplier/vendor": vendor → supplier): the
    /// dictionary lists them as other words for the same thing. [`Glossary::translate`]
    /// translates such a word as the headwords whose first sense that is
    /// ([`Glossary::first_senses`]: supplier → 供应商) when none of its own translations is
    /// used. Only through the first sense: a later sense of a word's own headword is another
    /// meaning (火星 "Mars/spark" does not make Mars 星火).
    alternate_glosses: HashMap<String, Vec<String>>,
}

/// Month and weekday names: capitalized in English and in the dictionary, but a date, not
/// a subject (the reports write "11月", never 十一月), so they are no proper nouns of
/// [`Glossary::is_proper_noun`].
pub const CALENDAR_NAMES: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One English word or phrase of a question and the Chinese words searched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concept {
    /// The stems looked up, space-separated ("state grid").
    pub english: String,
    /// Chinese words the collection uses, most used first.
    pub chinese: Vec<String>,
}

impl Glossary {
    /// Reads dictionary lines `headword<TAB>definition/definition…`. Definitions that only
    /// point at other entries ("variant of …", "see …", classifiers, surnames) or hold
    /// Chinese are skipped; parenthesized remarks are dropped.
    pub fn parse(text: &str) -> Glossary {
        let mut analyzer = english_analyzer();
        let mut word_analyzer = english_word_analyzer();
        let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut proper_nouns = HashSet::new();
        let mut two_word_definitions = HashSet::new();
        let mut first_senses: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut abbreviations: HashMap<String, Vec<String>> = HashMap::new();
        let mut alternate_glosses: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let Some((headword, definitions)) = line.split_once('\t') else {
                continue;
            };
            if headword.chars().any(crate::corpus::is_han) {
                for abbreviation in definitions.split(['/', ';']).filter_map(abbreviation_sense) {
                    let known = abbreviations.entry(headword.to_string()).or_default();
                    if !known.contains(&abbreviation) {
                        known.push(abbreviation);
                    }
                }
            }
            // The headword's one-word senses, in order (sense number, stem).
            let mut one_word: Vec<(usize, String)> = Vec::new();
            for (sense, definition) in definitions
                .split('/')
                .enumerate()
                .flat_map(|(sense, group)| group.split(';').map(move |d| (sense, d)))
            {
                let Some(plain) = definition_text(definition) else {
                    continue;
                };
                // "ByteDance, Beijing-based Internet technology company": the headword's
                // English name, however long what follows it.
                if let Some(name) = leading_name(definition) {
                    let key = content_stems(&mut analyzer, &name).join(" ");
                    let words = entries.entry(key).or_default();
                    if !words.iter().any(|w| w == headword) {
                        words.push(headword.to_string());
                    }
                }
                let stems = content_stems(&mut analyzer, &plain);
                if stems.is_empty() || stems.len() > MAX_DEFINITION_WORDS {
                    continue;
                }
                if stems.len() == 2 {
                    two_word_definitions
                        .insert(content_words(&mut word_analyzer, &plain).join(" "));
                }
                let key = stems.join(" ");
                if stems.len() == 1 {
                    one_word.push((sense, key.clone()));
                }
                if sense == 0 && key.split(' ').count() <= SHORT_DEFINITION_WORDS {
                    let words = first_senses.entry(key.clone()).or_default();
                    if !words.iter().any(|w| w == headword) {
                        words.push(headword.to_string());
                    }
                }
                if let Some(name) = capitalized_word(definition)
                    && !CALENDAR_NAMES.contains(&name.as_str())
                {
                    proper_nouns.insert(name);
                }
                let words = entries.entry(key).or_default();
                if !words.iter().any(|w| w == headword) {
                    words.push(headword.to_string());
                }
            }
            // Only a headword with two senses in all: one with many (傤 "load/cargo/old
            // variant of…/to transport/…") lists several meanings, not two words for one.
            if definitions.split('/').count() == ALTERNATE_GLOSS_SENSES
                && let Some((0, first)) = one_word.first()
            {
                for (sense, alternate) in &one_word[1..] {
                    if *sense > 0 && alternate != first {
                        let known = alternate_glosses.entry(alternate.clone()).or_default();
                        if !known.contains(first) {
                            known.push(first.clone());
                        }
                    }
                }
            }
        }
        Glossary {
            entries,
            first_senses,
            alternate_glosses,
            proper_nouns,
            two_word_definitions,
            abbreviations,
        }
    }

    /// The abbreviations the dictionary gives for the Chinese `headword` (个人电脑 → PC),
    /// as written there; empty when it gives none.
    pub fn abbreviations(&self, headword: &str) -> &[String] {
        self.abbreviations
            .get(headword)
            .map_or(&[], |found| found.as_slice())
    }

    /// Whether the dictionary defines some headword by `word` alone, capitalized: a place,
    /// body or event ("Africa" → 非洲, "Mars" → 火星), so a capitalized word of a question
    /// that it knows this way names a subject, not a company or person (those it does
    /// not define so: "Frost & Sullivan", "Belle"; surnames are skipped when parsing).
    pub fn is_proper_noun(&self, word: &str) -> bool {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("’s"))
            .unwrap_or(word);
        self.proper_nouns.contains(&word.to_lowercase())
    }

    /// `question` with its capitalized words after the first replaced by commas, so that
    /// phrases do not join across them: names ("Frost & Sullivan", "Belle", "First New
    /// Voice"), whose words the glossary knows only as common words (第一, 新, 语音). Kept
    /// are the proper nouns it defines as such ([`Glossary::is_proper_noun`]: "Beijing",
    /// "Africa"), whose Chinese names the reports would use.
    pub fn without_names(&self, question: &str) -> String {
        question
            .split(' ')
            .enumerate()
            .map(|(i, word)| {
                let name = i > 0
                    && word.starts_with(|c: char| c.is_uppercase())
                    && !self.is_proper_noun(word);
                if name { "," } else { word }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether `word` is an English word the glossary translates on its own ("China",
    /// "Huawei"), as opposed to a name it does not know ("Tongyi", "Alibaba").
    pub fn knows(&self, word: &str) -> bool {
        let stems = content_stems(&mut english_analyzer(), word);
        stems.len() == 1 && !self.lookup(&stems[0]).is_empty()
    }

    /// The dictionary compiled into the binary, parsed on first use (about half a second).
    pub fn bundled() -> &'static Glossary {
        static BUNDLED: LazyLock<Glossary> = LazyLock::new(|| {
            let mut text = String::new();
            // The bytes are part of the binary, checked by the tests: reading them cannot
            // fail unless the build itself is broken.
            flate2::read::GzDecoder::new(BUNDLED_GLOSSARY)
                .read_to_string(&mut text)
                .expect("the bundled glossary is valid gzip and UTF-8");
            Glossary::parse(&text)
        });
        &BUNDLED
    }

    /// Number of distinct English definitions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the glossary holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Headwords defined exactly by `key`; for a phrase of several words, when none is,
    /// those whose definition begins with it ("state grid" → 国家电网公司, "State Grid
    /// Corporation of China").
    fn lookup(&self, key: &str) -> Vec<&str> {
        if let Some(words) = self.entries.get(key) {
            return words.iter().map(String::as_str).collect();
        }
        if !key.contains(' ') {
            return Vec::new();
        }
        let prefix = format!("{key} ");
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .flat_map(|(_, words)| words.iter().map(String::as_str))
            .collect()
    }

    /// The Chinese words to search for an English `question`: its phrases are looked up
    /// longest first (up to [`MAX_PHRASE_WORDS`]), left to right within each clause, and
    /// each keeps its [`MAX_TRANSLATIONS`] translations the collection uses most.
    /// `frequency` says how often the collection uses a Chinese word (None: never).
    pub fn translate(
        &self,
        question: &str,
        frequency: impl Fn(&str) -> Option<u64>,
    ) -> Vec<Concept> {
        self.look_up(question, frequency, None).0
    }

    /// The English words of `question` the glossary knows but the collection uses none of
    /// the translations of ("fishing" → 渔业, 捕鱼…, none in the reports): words whose
    /// subject the reports never mention. Words the glossary does not know (most proper
    /// names) are not among them: that the reports lack them says nothing. Each is named
    /// as the question writes it, made singular ("fishing", "hotel").
    pub fn unused_words(
        &self,
        question: &str,
        frequency: impl Fn(&str) -> Option<u64>,
    ) -> Vec<String> {
        self.look_up(question, frequency, None).1
    }

    /// [`Glossary::unused_words`], and the two-word phrases the glossary defines in the
    /// question's own words, plural aside, whose every translation the collection lacks
    /// ("sign language" → 手语, "wind farms" → 风场) and whose words it never writes side by
    /// side in translation either: a phrase says more than its words, each of which the
    /// reports may use on their own (签, 语言). `holds_any` says whether the collection's
    /// text contains any of the strings given, and gets each translation of the first word
    /// joined to each of the second's. Stems are not enough: "electricity consumption"
    /// stems as the dictionary's "electric consumption" (功耗, a device's power draw), and
    /// the reports do speak of electricity use.
    pub fn unused_words_and_phrases(
        &self,
        question: &str,
        frequency: impl Fn(&str) -> Option<u64>,
        holds_any: &dyn Fn(&[String]) -> bool,
    ) -> Vec<String> {
        self.look_up(question, frequency, Some(holds_any)).1
    }

    /// Each translation of `first` joined to each of `second`'s, at most
    /// [`MAX_COMPOSED_TRANSLATIONS`] of each (the shortest: single characters compose most).
    fn compositions(&self, first: &str, second: &str) -> Vec<String> {
        let shortest = |stem: &str| {
            let mut words = self.lookup(stem);
            words.sort_by_key(|w| (w.chars().count(), *w));
            words.dedup();
            words.truncate(MAX_COMPOSED_TRANSLATIONS);
            words
        };
        let seconds = shortest(second);
        shortest(first)
            .into_iter()
            .flat_map(|a| seconds.iter().map(move |b| format!("{a}{b}")))
            .collect()
    }

    /// Whether the collection uses a headword whose first sense is a definition of at most
    /// [`SHORT_DEFINITION_WORDS`] words that has `stem` (or a stem of the same word family,
    /// one the prefix of the other, [`MIN_RELATED_STEM`] bytes or more, differing by at most
    /// [`MAX_SUFFIX_BYTES`]) among its words: a
    /// word's exact definition often lists other headwords than the one the reports use
    /// (消费 is defined as "to consume", not "consumption"), so a word counts as unused
    /// only when none of its short definitions is. Later senses do not count: 追 ("to
    /// chase … to court") in the reports says nothing about courts, nor 大方 ("generous";
    /// also a green tea) about tea.
    /// The Chinese words the collection uses for `stem` through another word for it
    /// ([`Glossary::alternate_glosses`]): the headwords whose first sense that word is,
    /// most used first, at most [`MAX_TRANSLATIONS`].
    fn alternate_translations(
        &self,
        stem: &str,
        frequency: &impl Fn(&str) -> Option<u64>,
    ) -> Vec<String> {
        let mut used: Vec<(&str, u64)> = self
            .alternate_glosses
            .get(stem)
            .into_iter()
            .flatten()
            .filter_map(|first| self.first_senses.get(first))
            .flatten()
            .filter_map(|w| frequency(w).map(|f| (w.as_str(), f)))
            .collect();
        used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        used.dedup_by(|a, b| a.0 == b.0);
        used.into_iter()
            .take(MAX_TRANSLATIONS)
            .map(|(w, _)| w.to_string())
            .collect()
    }

    fn used_in_short_definitions(
        &self,
        stem: &str,
        frequency: &impl Fn(&str) -> Option<u64>,
    ) -> bool {
        let related = |w: &str| {
            w == stem
                || (w.len().min(stem.len()) >= MIN_RELATED_STEM
                    && w.len().abs_diff(stem.len()) <= MAX_SUFFIX_BYTES
                    && (w.starts_with(stem) || stem.starts_with(w)))
        };
        self.first_senses.iter().any(|(key, words)| {
            key.split(' ').any(related) && words.iter().any(|w| frequency(w).is_some())
        })
    }

    /// [`Glossary::translate`] and [`Glossary::unused_words`] in one pass; with
    /// `holds_any`, the unused two-word phrases of
    /// [`Glossary::unused_words_and_phrases`] too (a phrase found unused is not translated:
    /// the concepts are then incomplete, and only the unused words are meant to be read).
    fn look_up(
        &self,
        question: &str,
        frequency: impl Fn(&str) -> Option<u64>,
        holds_any: Option<HoldsAny>,
    ) -> (Vec<Concept>, Vec<String>) {
        let mut analyzer = english_analyzer();
        let mut unused = Vec::new();
        let mut concepts: Vec<Concept> = chinese_amounts(question)
            .into_iter()
            .filter(|(_, amount)| frequency(amount).is_some())
            .map(|(english, amount)| Concept {
                english,
                chinese: vec![amount],
            })
            .collect();
        // The amounts are translated whole: their scale words are not looked up again.
        let rest = AMOUNT.replace_all(question, ",");
        let mut word_analyzer = english_word_analyzer();
        for clause in rest.split(is_clause_break) {
            let stems = content_stems(&mut analyzer, &base_forms(clause));
            let words = content_words(&mut word_analyzer, clause);
            let mut i = 0;
            while i < stems.len() {
                let mut taken = 1;
                let mut found = false;
                let mut unused_phrase = None;
                for n in (1..=MAX_PHRASE_WORDS.min(stems.len() - i)).rev() {
                    let key = stems[i..i + n].join(" ");
                    let mut used: Vec<(&str, u64)> = self
                        .lookup(&key)
                        .into_iter()
                        .filter_map(|w| frequency(w).map(|f| (w, f)))
                        .collect();
                    if used.is_empty() {
                        if n == 2
                            && let Some(holds_any) = holds_any
                            && !self.lookup(&key).is_empty()
                            && !stems[i..i + 2]
                                .iter()
                                .any(|s| TIME_WORDS.contains(&s.as_str()))
                            && let Some(pair) = words.get(i..i + 2)
                            && self.two_word_definitions.contains(&pair.join(" "))
                            && !holds_any(&self.compositions(&stems[i], &stems[i + 1]))
                        {
                            unused_phrase = Some(pair.join(" "));
                        }
                        continue;
                    }
                    used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    used.dedup_by(|a, b| a.0 == b.0);
                    concepts.push(Concept {
                        english: key,
                        chinese: used
                            .into_iter()
                            .take(MAX_TRANSLATIONS)
                            .map(|(w, _)| w.to_string())
                            .collect(),
                    });
                    taken = n;
                    found = true;
                    break;
                }
                if let Some(phrase) = unused_phrase {
                    if !unused.contains(&phrase) {
                        unused.push(phrase);
                    }
                    i += 2;
                    continue;
                }
                let stem = &stems[i];
                if !found {
                    let chinese = self.alternate_translations(stem, &frequency);
                    if !chinese.is_empty() {
                        concepts.push(Concept {
                            english: stem.clone(),
                            chinese,
                        });
                        found = true;
                    }
                }
                // Named as the question writes it ("fishing", not the stem "fish").
                let word = words.get(i).unwrap_or(stem);
                if !found
                    && !stem.chars().any(|c| c.is_ascii_digit())
                    && !TIME_WORDS.contains(&stem.as_str())
                    && !NUMBER_WORDS.contains(&word.to_lowercase().as_str())
                    && !self.lookup(stem).is_empty()
                    && !self.used_in_short_definitions(stem, &frequency)
                    && !unused.contains(word)
                {
                    unused.push(word.clone());
                }
                i += taken;
            }
        }
        (concepts, unused)
    }
}

/// Says whether the collection's text holds any of some strings
/// ([`Glossary::unused_words_and_phrases`]).
type HoldsAny<'a> = &'a dyn Fn(&[String]) -> bool;

/// How many senses a headword has when its later one-word sense counts as another word
/// for its first (see `Glossary::alternate_glosses`): two ("supplier/vendor"). Chosen by
/// that reading of the dictionary; with any number, "cargo" became 加载 through 傤
/// "load/cargo/…" and an English near-negative of `eval/near-negatives.jsonl` was
/// answered.
pub const ALTERNATE_GLOSS_SENSES: usize = 2;

/// Translations per word joined in [`Glossary::unused_words_and_phrases`]: a word has up
/// to a few dozen; 16 of each bounds the strings searched to 256, and the short ones,
/// kept first, are the ones that compose. A bound on the cost, not fitted: no other value
/// was tried.
pub const MAX_COMPOSED_TRANSLATIONS: usize = 16;

/// Definitions of at most this many words count for [`Glossary::unused_words`]: longer
/// ones mention a word in passing ("used in the fishing industry").
pub const SHORT_DEFINITION_WORDS: usize = 2;

/// Stems of one word family share a prefix this long at least ("consum", "consumpt").
pub const MIN_RELATED_STEM: usize = 5;

/// Stems of one word family differ by a suffix this long at most ("consum" + "pt"); a
/// longer one is another word ("earth", "earthquak").
pub const MAX_SUFFIX_BYTES: usize = 3;

/// An English amount with a scale word: digits, then thousand, million, billion or trillion.
static AMOUNT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion)\b")
        .expect("a valid pattern")
});

/// English amounts with a scale word written the way Chinese reports write them:
/// "671 billion" → 6710亿, "1.5 million" → 150万, "2 trillion" → 2万亿. Chinese counts in
/// 万 (10⁴) and 亿 (10⁸), so the digits themselves change and BM25 could not match them
/// otherwise; a figure is often the rarest, most telling term of a question.
fn chinese_amounts(question: &str) -> Vec<(String, String)> {
    AMOUNT
        .captures_iter(question)
        .filter_map(|c| {
            let number: f64 = c[1].parse().ok()?;
            let scale = c[2].to_lowercase();
            // The English scale as a multiple of the Chinese unit it is written in.
            let (factor, unit) = match scale.as_str() {
                "thousand" => (1e3, ""),
                "million" => (1e2, "万"),
                "billion" => (10.0, "亿"),
                _ => (1.0, "万亿"),
            };
            let value = number * factor;
            // Whole amounts only: "1.25 billion" is 12.5亿, which reports also write so.
            let digits = if value.fract().abs() < 1e-9 {
                format!("{}", value as u64)
            } else {
                let s = format!("{value:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            };
            Some((format!("{} {scale}", &c[1]), format!("{digits}{unit}")))
        })
        .collect()
}

/// Lowercase words, the analyzer's English stop words and [`QUESTION_WORDS`] removed, English
/// Snowball stems: the same for a question and a dictionary definition, so "provinces"
/// finds "province" and "operating" finds "to operate".
fn english_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(stop_words()))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The words both English analyzers drop: the analyzer's English stop words and
/// [`QUESTION_WORDS`].
fn stop_words() -> Vec<String> {
    QUESTION_WORDS
        .iter()
        .chain(super::ENGLISH_STOP_WORDS)
        .map(|w| w.to_string())
        .collect()
}

/// [`english_analyzer`] without the stemmer, for [`content_words`], which makes its words
/// singular ([`singular`]) instead: Snowball stems merge derived words whose phrases mean
/// other things ("electric consumption", 功耗, a device's power draw; "electricity
/// consumption", a grid's), while a plural is the same phrase ("wind farms"). It keeps
/// the same words as [`english_analyzer`], one for each of its stems.
fn english_word_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(stop_words()))
        .build()
}

/// The singular of a lowercase English noun by the regular endings: "farms" → "farm",
/// "libraries" → "library", "taxes" → "tax"; "glass" and "analysis" stay.
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies")
        && stem.len() >= 2
    {
        return format!("{stem}y");
    }
    for ending in ["ches", "shes", "sses", "xes"] {
        if let Some(stem) = word.strip_suffix(ending) {
            return format!("{stem}{}", &ending[..ending.len() - 2]);
        }
    }
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with(['s', 'u', 'i']) => stem.to_string(),
        _ => word.to_string(),
    }
}

/// Content words of `text` made singular, in order: what [`english_word_analyzer`] keeps.
fn content_words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    content_stems(analyzer, text)
        .iter()
        .map(|w| singular(w))
        .collect()
}

/// Content-word stems of `text`, in order.
fn content_stems(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stems = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        stems.push(token.text.clone());
    }
    stems
}

/// Characters that end a clause: an English phrase never spans them.
fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | ':' | '?' | '!' | '(' | ')' | '"' | '\'' | '‘' | '’' | '“' | '”'
    )
}

/// The word, lowercase, of a dictionary definition that is one capitalized word
/// ("Africa", "Mars (planet)"), parenthesized remarks aside.
fn capitalized_word(definition: &str) -> Option<String> {
    let plain = definition.split('(').next().unwrap_or("").trim();
    (!plain.is_empty()
        && !definition.contains("name)")
        && plain.starts_with(|c: char| c.is_ascii_uppercase())
        && plain.chars().all(|c| c.is_ascii_alphabetic()))
    .then(|| plain.to_ascii_lowercase())
}

/// The name that opens a dictionary definition of a company, place or work, before its
/// comma: one or two capitalized words ("ByteDance, Beijing-based Internet technology
/// company", "Sanlu Group, Chinese state-owned dairy products company").
fn leading_name(definition: &str) -> Option<String> {
    let (name, _) = definition.trim().split_once(", ")?;
    let words: Vec<&str> = name.split(' ').collect();
    (words.len() <= 2
        && words.iter().all(|w| {
            w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.len() >= 2
                && w.chars().all(|c| c.is_ascii_alphabetic())
        }))
    .then(|| name.to_lowercase())
}

/// The abbreviation a dictionary sense is, when it is one: the whole sense ("PC", "IPO"),
/// or a closing parenthesis holding the initials of the words before it ("optical
/// character recognition (OCR)", "return on investment (ROI)"; not the labels "(TCM)",
/// "(UK)" or "(PRC)"): two or more capital letters, ending in one, with letters or digits
/// between ("MAC", "CPU"; not "Mars"). A caller counts one only where the collection
/// writes it.
fn abbreviation_sense(sense: &str) -> Option<String> {
    let sense = sense.trim();
    let (candidate, expanded) = match sense.strip_suffix(')') {
        Some(rest) => {
            let (before, inside) = rest.rsplit_once('(')?;
            (inside, Some(before))
        }
        None => (sense, None),
    };
    let capitals = candidate.chars().filter(|c| c.is_ascii_uppercase()).count();
    let is_abbreviation = capitals >= 2
        && candidate.starts_with(|c: char| c.is_ascii_uppercase())
        && candidate.chars().all(|c| c.is_ascii_alphanumeric())
        && candidate
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_uppercase());
    if !is_abbreviation {
        return None;
    }
    if let Some(before) = expanded {
        // The initials of the last words before the parenthesis spell it.
        let initials: String = before
            .split(|c: char| c.is_whitespace() || c == '-')
            .filter_map(|w| w.chars().next())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let letters: String = candidate
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !initials.ends_with(&letters) {
            return None;
        }
    }
    Some(candidate.to_string())
}

/// One dictionary definition lowercase with its parenthesized remarks dropped, or None
/// when it is no translation.
fn definition_text(definition: &str) -> Option<String> {
    let lower = definition.trim().to_lowercase();
    let skip = lower.is_empty()
        || lower.contains("variant of")
        || lower.starts_with("see ")
        || lower.starts_with("cl:")
        || lower.contains("surname")
        || lower.contains("abbr. for")
        || lower.contains('|')
        || lower.chars().any(crate::corpus::is_han);
    if skip {
        return None;
    }
    let mut plain = String::with_capacity(lower.len());
    let mut depth = 0usize;
    for c in lower.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Glossary {
        Glossary::parse(
            "模型\tmodel/mold\n\
             型号\tmodel (of a product)\n\
             模特\t(fashion) model\n\
             行业\tindustry/profession\n\
             产业\tindustry\n\
             工业\tindustry\n\
             客服\tcustomer service\n\
             客户服务\tcustomer service/client service\n\
             服务\tto serve/service\n\
             国家电网公司\tState Grid Corporation of China\n\
             省\tprovince/to save\n\
             省份\tprovince\n\
             做\tto do\n\
             多少\thow many/how much\n\
             䴉\tvariant of 鹮\n",
        )
    }

    /// How often a toy collection uses each word.
    fn collection(word: &str) -> Option<u64> {
        match word {
            "模型" => Some(90),
            "型号" => Some(3),
            "行业" => Some(50),
            "产业" => Some(20),
            "工业" => Some(5),
            "客服" => Some(8),
            "服务" => Some(40),
            "国家电网公司" => Some(1),
            "省" => Some(6),
            _ => None,
        }
    }

    #[test]
    fn abbreviations_are_the_senses_written_as_capitals() {
        let glossary = Glossary::parse(
            "个人电脑\tpersonal computer/PC\n\
             光学字符识别\toptical character recognition (OCR)\n\
             火星\tMars (planet)\n\
             中央处理机\tcentral processing unit (CPU); processor\n",
        );
        assert_eq!(glossary.abbreviations("个人电脑"), ["PC"]);
        assert_eq!(glossary.abbreviations("光学字符识别"), ["OCR"]);
        assert_eq!(glossary.abbreviations("中央处理机"), ["CPU"]);
        assert!(glossary.abbreviations("火星").is_empty());
        assert!(glossary.abbreviations("渔业").is_empty());
        assert_eq!(abbreviation_sense(" IPO"), Some("IPO".to_string()));
        assert_eq!(
            abbreviation_sense("return on investment (ROI)"),
            Some("ROI".to_string())
        );
        // Labels in parentheses are no abbreviations of the sense.
        assert_eq!(
            abbreviation_sense("to suffer from internal heat (TCM)"),
            None
        );
        assert_eq!(abbreviation_sense("AAA battery (PRC)"), None);
        assert_eq!(abbreviation_sense("Parliament (UK)"), None);
        assert_eq!(abbreviation_sense("Ph.D."), None);
        assert_eq!(abbreviation_sense("Mars"), None);
        assert_eq!(abbreviation_sense("A"), None);
    }

    #[test]
    fn words_become_the_translation_the_collection_uses_most() {
        let concepts = fixture().translate("How do industry models differ?", collection);
        let chinese: Vec<&[String]> = concepts.iter().map(|c| c.chinese.as_slice()).collect();
        assert_eq!(
            chinese,
            vec![&["行业".to_string()][..], &["模型".to_string()][..]],
            "{concepts:?}"
        );
    }

    #[test]
    fn a_phrase_is_translated_as_one_before_its_words() {
        let concepts = fixture().translate("Which customer service is used?", collection);
        assert_eq!(concepts[0].english, "custom servic");
        assert_eq!(concepts[0].chinese, vec!["客服".to_string()]);
        assert!(
            !concepts
                .iter()
                .any(|c| c.chinese.contains(&"服务".to_string()))
        );
        // A name that begins a longer definition is found by its beginning, and plurals
        // find their singular.
        let concepts = fixture().translate(
            "How many provinces does State Grid's area cover?",
            collection,
        );
        let words: Vec<&str> = concepts
            .iter()
            .flat_map(|c| c.chinese.iter().map(String::as_str))
            .collect();
        assert!(words.contains(&"省"), "{concepts:?}");
        assert!(words.contains(&"国家电网公司"), "{concepts:?}");
    }

    #[test]
    fn question_words_and_unused_translations_are_not_searched() {
        let concepts = fixture().translate("How many does it do?", collection);
        assert!(concepts.is_empty(), "{concepts:?}");
        // 省份 is a translation of "province" the collection never uses.
        let concepts = fixture().translate("province", collection);
        assert_eq!(concepts[0].chinese, vec!["省".to_string()]);
        // Pointers to other entries are no translations.
        assert!(fixture().translate("variant", |_| Some(1)).is_empty());
    }

    #[test]
    fn amounts_are_written_in_chinese_units() {
        let amounts =
            |q: &str| -> Vec<String> { chinese_amounts(q).into_iter().map(|(_, a)| a).collect() };
        assert_eq!(
            amounts("a model with 671 billion parameters"),
            vec!["6710亿"]
        );
        assert_eq!(
            amounts("175 Billion, 1.5 million users, 3 thousand, 2 trillion tokens"),
            vec!["1750亿", "150万", "3000", "2万亿"]
        );
        assert_eq!(amounts("1.25 billion"), vec!["12.5亿"]);
        assert!(amounts("billions of users, 2024").is_empty());
        // An amount the collection writes becomes a concept of its own.
        let concepts = Glossary::parse("")
            .translate("Which model has 671 billion parameters?", |w| {
                (w == "6710亿").then_some(1)
            });
        assert_eq!(concepts[0].chinese, vec!["6710亿".to_string()]);
    }

    #[test]
    fn only_a_first_sense_keeps_a_word_from_being_unused() {
        let glossary = Glossary::parse(
            "茶\ttea/tea plant\n\
             大方\tgenerous/a type of green tea\n\
             消费\tto consume (goods and services)\n",
        );
        let used = |w: &str| matches!(w, "大方" | "消费").then_some(1);
        // 大方 is used, but "green tea" is not its first sense.
        assert_eq!(
            glossary.unused_words("Which tea is graded?", used),
            vec!["tea"]
        );
        // 消费's first sense is "to consume": "consumption" is a word the reports use.
        assert!(glossary.unused_words("consumption", used).is_empty());
    }

    #[test]
    fn a_word_the_dictionary_gives_as_another_word_for_a_used_one_is_translated_by_it() {
        let glossary = Glossary::parse(
            "供货商\tsupplier/vendor\n\
             供应商\tsupplier\n\
             傤\tload/cargo/old variant of 載/to transport\n\
             加载\tload\n\
             火星\tMars (planet)/spark\n\
             星火\tspark\n",
        );
        let used = |w: &str| matches!(w, "供应商" | "加载" | "星火").then_some(1);
        // 供货商 "supplier/vendor": vendor is another word for supplier, which the
        // reports write 供应商.
        let concepts = glossary.translate("Which hospital IT vendor?", used);
        assert!(
            concepts
                .iter()
                .any(|c| c.english == "vendor" && c.chinese == ["供应商"]),
            "{concepts:?}"
        );
        assert!(glossary.unused_words("vendor", used).is_empty());
        // Not through a headword of many senses (傤), nor through a word's own later sense
        // (火星 "Mars/spark" does not make Mars 星火).
        assert_eq!(glossary.unused_words("cargo", used), vec!["cargo"]);
        assert_eq!(glossary.unused_words("Mars", used), vec!["mar"]);
    }

    #[test]
    fn number_words_and_irregular_verbs_are_not_subjects_the_reports_lack() {
        let glossary = Glossary::parse(
            "七\tseven/7\n\
             销行\tto sell/to be on sale/to be sold\n\
             销售\tto sell/to market\n\
             项目\tproject\n\
             渔业\tfishing industry/fishery\n",
        );
        let used = |w: &str| matches!(w, "销售" | "项目").then_some(1);
        // The reports write 1-7月, not 七; "sold" is "sell", and they write 销售.
        assert!(
            glossary
                .unused_words("Which projects were sold in the first seven months?", used)
                .is_empty()
        );
        let concepts = glossary.translate("What was sold?", used);
        assert_eq!(concepts[0].chinese, vec!["销售"]);
        // A subject still counts.
        assert_eq!(
            glossary.unused_words("Which fishery projects were sold?", used),
            vec!["fishery"]
        );
        assert_eq!(
            base_forms("Who sold, built and Made it?"),
            "Who sell, build and make it?"
        );
    }

    #[test]
    fn a_company_is_found_by_the_name_its_definition_opens_with() {
        let glossary = Glossary::parse(
            "字节跳动\tByteDance, Beijing-based Internet technology company, founded in 2012\n\
             商汤科技\tSenseTime, artificial intelligence company focused on computer vision\n\
             三联书店\tJoint Publishing, bookstore chain and publisher\n",
        );
        let used = |w: &str| matches!(w, "字节跳动" | "商汤科技").then_some(1);
        let chinese = |q: &str| -> Vec<String> {
            glossary
                .translate(q, used)
                .into_iter()
                .flat_map(|c| c.chinese)
                .collect()
        };
        assert_eq!(
            chinese("What did ByteDance and SenseTime launch?"),
            vec!["字节跳动", "商汤科技"]
        );
        assert_eq!(
            leading_name("Joint Publishing, bookstore chain"),
            Some("joint publishing".into())
        );
        assert_eq!(leading_name("to sell, to market"), None);
        assert_eq!(
            leading_name("Mie Prefecture in central Japan, a place"),
            None
        );
    }

    #[test]
    fn proper_nouns_are_places_and_events_not_surnames_or_months() {
        let glossary = Glossary::parse(
            "非洲\tAfrica/abbr. for 阿非利加洲[A1 fei1 li4 jia1 Zhou1]\n\
             贝尔\tBell (name)\n\
             火星\tMars (planet)\n\
             十一月\tNovember/eleventh month (of the lunar year)\n\
             佛洛斯特\tFrost (surname)\n\
             霜\tfrost\n\
             北京市\tBeijing/capital of People's Republic of China\n",
        );
        assert!(glossary.is_proper_noun("Africa?"));
        assert!(glossary.is_proper_noun("Mars"));
        assert!(glossary.is_proper_noun("Beijing's"));
        assert!(!glossary.is_proper_noun("November"));
        assert!(!glossary.is_proper_noun("Frost"));
        assert!(!glossary.is_proper_noun("Belle"));
        assert!(!glossary.is_proper_noun("Bell"));
    }

    #[test]
    fn a_phrase_the_dictionary_gives_in_the_question_s_words_is_unused_when_none_of_its_translations_is()
     {
        let glossary = Glossary::parse(
            "风场\twind farm\n\
             风\twind\n\
             农场\tfarm\n\
             功耗\telectric consumption\n\
             电\telectric/electricity\n\
             消费\tconsumption\n\
             今天\ttoday\n",
        );
        let used = |w: &str| matches!(w, "风" | "农场" | "电" | "消费").then_some(1);
        let nowhere = |_: &[String]| false;
        // Each word alone is used, so the word rule finds nothing; the phrase is unused.
        let question = "How do wind farms use models?";
        assert!(glossary.unused_words(question, used).is_empty());
        assert_eq!(
            glossary.unused_words_and_phrases(question, used, &nowhere),
            vec!["wind farm"]
        );
        // The collection writing the words side by side in translation (风农场) keeps it.
        let somewhere = |_: &[String]| true;
        assert!(
            glossary
                .unused_words_and_phrases(question, used, &somewhere)
                .is_empty()
        );
        // "electricity consumption" shares its stems with "electric consumption" (功耗), but
        // is another phrase: a grid's, not a device's.
        assert!(
            glossary
                .unused_words_and_phrases("On the electricity consumption side?", used, &nowhere)
                .is_empty()
        );
        // A word placing the question in time is no subject the reports lack.
        assert!(
            glossary
                .unused_words("Which farms use models today?", used)
                .is_empty()
        );
        // Only a phrase the dictionary gives: "news agency" made singular reads "new
        // agency", but new agencies are no news agencies; a phrase of a time word is no
        // subject either.
        let glossary = Glossary::parse(
            "通讯社\tnews agency\n\
             新\tnew\n\
             机构\tagency\n\
             近年\trecent years\n\
             年\tyear\n",
        );
        let used = |w: &str| matches!(w, "新" | "机构" | "年").then_some(1);
        assert!(
            glossary
                .unused_words_and_phrases(
                    "How do new agencies grow in recent years?",
                    used,
                    &nowhere
                )
                .is_empty()
        );
    }

    #[test]
    fn nouns_are_made_singular_by_their_regular_endings() {
        for (plural, one) in [
            ("farms", "farm"),
            ("libraries", "library"),
            ("taxes", "tax"),
            ("churches", "church"),
            ("classes", "class"),
            ("glass", "glass"),
            ("analysis", "analysis"),
            ("status", "status"),
            ("bus", "bus"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
    }

    #[test]
    fn phrases_do_not_span_clauses() {
        let glossary = Glossary::parse("客服\tcustomer service\n");
        assert!(
            glossary
                .translate("the customer, service", |_| Some(1))
                .is_empty()
        );
        assert_eq!(
            glossary
                .translate("the customer service", |_| Some(1))
                .len(),
            1
        );
    }

    #[test]
    fn the_bundled_dictionary_knows_report_vocabulary() {
        let glossary = Glossary::bundled();
        assert!(glossary.len() > 50_000, "{} definitions", glossary.len());
        let any = |_: &str| Some(1);
        let find = |q: &str| -> Vec<String> {
            glossary
                .translate(q, any)
                .into_iter()
                .flat_map(|c| c.chinese)
                .collect()
        };
        // With every word allowed, ties break by the headword: check membership through
        // a collection that uses only the expected word.
        let only = |want: &'static str| move |w: &str| (w == want).then_some(1);
        for (english, chinese) in [
            ("computing power", "算力"),
            ("customer service", "客服"),
            ("decision-making", "决策"),
            ("parameters", "参数"),
            ("State Grid", "国家电网公司"),
        ] {
            let found: Vec<String> = glossary
                .translate(english, only(chinese))
                .into_iter()
                .flat_map(|c| c.chinese)
                .collect();
            assert_eq!(found, vec![chinese.to_string()], "{english}");
        }
        assert!(!find("computing power").is_empty());
    }
}
