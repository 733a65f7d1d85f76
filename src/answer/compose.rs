//! Extractive composition: the sentences of the evidence passages that best answer the
//! question, the answering sentence first, each shortened around what the question asks
//! and followed by its citation marker.

use std::collections::HashSet;

use crate::analysis::Analyzer;
use crate::corpus::{opens_with_furniture, readable_sentences as sentences};
use crate::retrieve::Hit;

use super::{Source, source};

/// Most sentences in an extractive answer: a short paragraph, whose length
/// [`MAX_ANSWER_CHARS`] bounds too. On dev (budget 240), 2 / 3 / 4 sentences gave bigram
/// recall 0.613 / 0.645 / 0.657 but numbers present 0.818 / 0.818 / 0.727 and median
/// length 151 / 192 / 221. Once list items became sentences of their own (sentence rules
/// v5, shorter sentences), 3 / 4 gave dev bigram recall 0.754 / 0.783, numbers 0.727 /
/// 0.818, median 155 / 194, and dev-en bigram recall 0.491 / 0.555.
pub const MAX_ANSWER_SENTENCES: usize = 4;

/// An answer adds no sentence that would take it past this many characters (the first
/// sentence always stays): a short paragraph a person reads at a glance. On dev, budgets
/// of 160 / 200 / 240 / 400 gave gold bigram recall 0.600 / 0.625 / 0.645 / 0.664 and
/// median lengths 144 / 176 / 192 / 208 characters; 240 was the largest within 200. With
/// English questions searched through their translations and sentence-aware dense scores
/// ([`crate::retrieve::SENTENCE_SHARE`]), 220 / 230 gave 0.753 / 0.759 with medians 195
/// / 201 (at a share of 0.3, 210 / 220 / 225 / 230 gave 0.751 / 0.759 / 0.747 / 0.765 and
/// 193 / 195 / 198 / 201): 220 is the largest within 200 at both.
pub const MAX_ANSWER_CHARS: usize = 220;

/// Sentences longer than this are cut at a clause boundary for display.
pub const MAX_SENTENCE_CHARS: usize = 160;

/// Factor on the score of a sentence that holds a number when the question asks for
/// one ([`asks_for_a_number`]): such questions are answered by a figure, and the
/// sentence naming the topic without it ("GPT-3 …" in a timeline) should lose to the
/// one stating it. On dev: numbers present 0.636 at 1.0, see the closing note for 1.5.
pub const NUMBER_BONUS: f32 = 1.5;

/// Words by which a question asks for a quantity or a date.
const NUMBER_CUES: &[&str] = &[
    "多少",
    "几",
    "比例",
    "占比",
    "规模",
    "数量",
    "参数量",
    "增长率",
    "何时",
    "什么时候",
    "哪一年",
    "哪年",
    "how many",
    "how much",
    "percentage",
    "when",
    "what year",
    "how long",
];

/// Whether the question asks for a quantity or a date.
pub fn asks_for_a_number(question: &str) -> bool {
    let q = question.to_lowercase();
    NUMBER_CUES.iter().any(|cue| q.contains(cue))
}

/// Factor on the score of a sentence that holds a quoted name (《…》, “…”, 「…」) when the
/// question asks for a name or title ([`asks_for_a_name`]): reports quote the names of
/// their products, platforms and publications, and the sentence that quotes one is the
/// answer, not the one describing the topic. The same factor as [`NUMBER_BONUS`], for
/// the same reason. On dev (1.0 → 1.5): numbers present 0.818 → 0.909, gold bigram
/// recall 0.736 → 0.758, median length 198 both; dev-en unchanged.
pub const NAME_BONUS: f32 = 1.5;

/// Share of a Chinese question's character pairs (`char_pairs`, weighed by how few
/// candidate sentences hold each) in a sentence's overlap with it, the rest being its
/// word overlap: the words the analyzer cuts differ between question and answer
/// (第一大镇 against 汤顿是第一大镇 may not cut alike), their characters do not. Tried on
/// the first 400 CMRC questions (0, 0.3, 0.5, 0.7, 0.85, 1): 0.7 gave the most answers
/// holding a gold answer, 0.882 → 0.890; checked on the first 400 DRCD questions (0.882 →
/// 0.885) and dev (unchanged).
pub const SENTENCE_PAIR_SHARE: f32 = 0.7;

/// Weight of the character-pair share against word overlap in choosing which of the
/// chosen sentences leads a Chinese answer, so large that the pairs decide and words only
/// break ties. Tried on the first 400 CMRC questions (0, 0.5, 1, 2, 4, 8, 100): the first
/// sentence held a gold answer 0.723 → 0.745, rising with the weight; checked on the first
/// 400 DRCD questions (0.780 → 0.792).
pub const LEAD_PAIR_WEIGHT: f32 = 100.0;

/// Words by which a question asks for a name or a title.
const NAME_CUES: &[&str] = &[
    "名称",
    "叫什么",
    "全称",
    "标题",
    "书名",
    "题目",
    "名字",
    "name of",
    "named",
    "called",
    "title",
];

/// Whether the question asks for a name or a title.
pub fn asks_for_a_name(question: &str) -> bool {
    let q = question.to_lowercase();
    NAME_CUES.iter().any(|cue| q.contains(cue))
}

/// What kind of name a question asks for, beyond titles ([`asks_for_a_name`]): a sentence
/// naming a person or place the question does not name, when it asks who or where, gets
/// [`NAME_BONUS`] in sentence choice and for the lead, the factor of the other answer
/// types, not fitted (on the first 400 CMRC questions: has gold 0.890 → 0.895, first
/// sentence 0.743 → 0.760; DRCD 0.885 → 0.885, 0.792 → 0.797).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Person,
    Place,
}

/// Words by which a Chinese question asks who.
const PERSON_CUES: &[&str] = &["谁", "哪位", "哪个人", "什么人"];

/// Words by which a Chinese question asks where.
const PLACE_CUES: &[&str] = &[
    "哪里",
    "哪儿",
    "什么地方",
    "什么地区",
    "哪个地区",
    "哪些地区",
    "哪个国家",
    "哪个城市",
    "哪个省",
    "在哪",
    "何处",
    "何地",
];

/// The kind of name the question asks for, if any.
fn asks_for_kind(question: &str) -> Option<NameKind> {
    if PERSON_CUES.iter().any(|c| question.contains(c)) {
        Some(NameKind::Person)
    } else if PLACE_CUES.iter().any(|c| question.contains(c)) {
        Some(NameKind::Place)
    } else {
        None
    }
}

/// Whether `sentence` names a person or place of `kind` the question does not.
fn names_a_new(kind: NameKind, sentence: &str, question: &str, analyzer: &Analyzer) -> bool {
    let (people, places) = analyzer.names(sentence);
    let names = match kind {
        NameKind::Person => people,
        NameKind::Place => places,
    };
    names.iter().any(|n| !question.contains(n.as_str()))
}

/// Whether `sentence` quotes a name: two or more characters inside 《》, “” or 「」.
fn quotes_a_name(sentence: &str) -> bool {
    [('《', '》'), ('“', '”'), ('「', '」')]
        .iter()
        .any(|(open, close)| {
            sentence
                .split(*open)
                .skip(1)
                .filter_map(|s| s.split_once(*close))
                .any(|(name, _)| name.chars().filter(|c| c.is_alphanumeric()).count() >= 2)
        })
}

/// Share of its weight that a question word (or character pair) keeps for a sentence once
/// the answer already holds it, when a Chinese question's next sentence is chosen: the
/// answer then grows by what it still lacks, not by more sentences naming the question's
/// topic. Over the first 400 CMRC / DRCD questions, 1.0 (no change) / 0.5 / 0.25 / 0.1 /
/// 0.0 gave has-gold 0.905 / 0.905 / 0.912 / 0.915 / 0.917 and 0.885 / 0.882 / 0.882 /
/// 0.880 / 0.880, dev unchanged; at 0.0 over all questions, CMRC 0.894 → 0.904 (0.894 →
/// 0.904 on the 2,819 not tried on) and DRCD 0.910 → 0.912.
pub const COVERED_WORD_SHARE: f32 = 0.0;

/// A sentence's word overlap with the question is divided by `1 + RANK_DISCOUNT × rank`
/// of its passage (0-based), so that better-ranked passages win close calls. On dev,
/// 0.15 / 0.2 / 0.3 / 0.4 / 0.5 gave gold bigram recall 0.645 / 0.641 / 0.690 / 0.689 /
/// 0.694 and cited evidence 0.800 / 0.800 / 0.850 / 0.850 / 0.850: 0.3 opens the plateau.
pub const RANK_DISCOUNT: f32 = 0.3;

/// Share of a sentence's score that comes from its closeness in meaning to the question
/// (sentence vector cosine, scaled over the candidates), the rest from word overlap, for
/// a question in Chinese. On dev.jsonl, 0 / 0.2 / 0.3 / 0.4 / 0.5 / 0.7 gave gold bigram
/// recall 0.695 / 0.706 / 0.715 / 0.713 / 0.715 / 0.721, numbers present 0.818 up to 0.5
/// and 0.727 at 0.7, cited evidence 0.875, median length 188–205: 0.5 is the middle of
/// the plateau, before figures start to be crowded out.
pub const SENTENCE_MEANING_WEIGHT: f32 = 0.5;

/// [`SENTENCE_MEANING_WEIGHT`] for a question in another language. Its word overlap is
/// with the Chinese words its English was translated into ([`crate::retrieve::Engine::query_terms`]), a
/// weaker signal than a Chinese question's own words. On dev-en.jsonl, with retrieval as
/// it is now (translations, margin-scaled fusion, sentence share), 0.3 / 0.4 / 0.45 / 0.5
/// / 0.55 / 0.6 / 0.8 gave gold bigram recall 0.571 / 0.571 / 0.573 / 0.573 / 0.573 /
/// 0.503 / 0.503 (numbers present 0.75 up to 0.55, then 0.50): 0.45 is inside the plateau,
/// away from its edge. Before the translations only meaning counted (1.0).
pub const CROSS_SENTENCE_MEANING_WEIGHT: f32 = 0.45;

/// For a question not in Chinese, a sentence's scaled closeness in meaning loses this
/// much per unit of its Latin-letter share: multilingual embeddings put texts in the
/// question's language closer than they deserve, so the reports' English glossary lines
/// ("LLM：Large Language Model，大型语言模型…") won every English question about models.
/// On dev-en.jsonl 0 / 0.5 / 1 / 2 / 3 / 4 / 8 gave gold bigram recall 0.414 / 0.417 /
/// 0.483 / 0.483 / 0.487 / 0.487 / 0.370 (at 8 sentences naming GPT-3 or ModelArts lose
/// too), and the English questions of dev.jsonl moved its recall from 0.715 to 0.736 at
/// 3 and 4: 3 stays clear of the cliff.
pub const LATIN_SHARE_PENALTY: f32 = 3.0;

/// Share of a text's characters that are Latin letters.
fn latin_share(text: &str) -> f32 {
    let chars = text.chars().count().max(1) as f32;
    text.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32 / chars
}

/// The question's terms reweighed for choosing among `candidates` (the words of each
/// candidate sentence): each weight times the term's inverse frequency among the
/// candidates, so that the words every sentence shares (the subject the passages are
/// about: "莱昂德罗·内托") count less than those that tell the answering sentence apart
/// (the predicate next to the question word: "效力", "球队").
fn discriminating_terms<'a>(
    terms: &[(String, f32)],
    candidates: impl Iterator<Item = &'a HashSet<String>>,
) -> Vec<(String, f32)> {
    let candidates: Vec<&HashSet<String>> = candidates.collect();
    let n = candidates.len() as f32;
    terms
        .iter()
        .map(|(t, w)| {
            let sf = candidates.iter().filter(|c| c.contains(t)).count() as f32;
            (t.clone(), w * ((n + 1.0) / (sf + 0.5)).ln().max(0.05))
        })
        .collect()
}

/// The character pairs of `text` (letters and digits only, folded like the analyzer:
/// width, traditional → simplified, lowercase), for matching a question's wording where
/// word segmentation splits it differently (第一大镇 against 第一大区).
fn char_pairs(text: &str) -> HashSet<(char, char)> {
    let folded = crate::analysis::fold_text(text).to_lowercase();
    let chars: Vec<char> = folded.chars().collect();
    chars
        .windows(2)
        .filter(|w| w[0].is_alphanumeric() && w[1].is_alphanumeric())
        .map(|w| (w[0], w[1]))
        .collect()
}

/// The question's character pairs, each weighed by how few of `candidates` hold it (as
/// [`discriminating_terms`] weighs words).
fn pair_weights(
    question: &HashSet<(char, char)>,
    candidates: &[HashSet<(char, char)>],
) -> Vec<((char, char), f32)> {
    let n = candidates.len() as f32;
    question
        .iter()
        .map(|pair| {
            let sf = candidates.iter().filter(|c| c.contains(pair)).count() as f32;
            (*pair, ((n + 1.0) / (sf + 0.5)).ln().max(0.05))
        })
        .collect()
}

/// Share of the weighed question pairs ([`pair_weights`]) that `sentence` holds.
fn pair_coverage(weights: &[((char, char), f32)], sentence: &HashSet<(char, char)>) -> f32 {
    novel_share(weights, sentence, &HashSet::new())
}

/// Share of the weight of `weights` that `held` holds, counting what `already` holds at
/// [`COVERED_WORD_SHARE`] of its weight (nothing already held: the plain share).
fn novel_share<T: Eq + std::hash::Hash>(
    weights: &[(T, f32)],
    held: &HashSet<T>,
    already: &HashSet<T>,
) -> f32 {
    let total: f32 = weights.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    weights
        .iter()
        .filter(|(t, _)| held.contains(t))
        .map(|(t, w)| {
            if already.contains(t) {
                COVERED_WORD_SHARE * w
            } else {
                *w
            }
        })
        .sum::<f32>()
        / total
}

/// Particles that end a Chinese question's topic, the name it opens with (黄足笛鲷 in
/// 黄足笛鲷在哪里栖息, 阿马里洛 in 阿马里洛的原名是什么).
const TOPIC_ENDS: &[char] = &[
    '的', '在', '是', '有', '被', '以', '为', '于', '从', '又', '曾',
];

/// The character pairs of the question's topic: its opening up to the first of
/// [`TOPIC_ENDS`], when that is at least two characters and at most half the question.
fn topic_pairs(question: &str) -> HashSet<(char, char)> {
    let chars: Vec<char> = question.chars().collect();
    match chars.iter().position(|c| TOPIC_ENDS.contains(c)) {
        Some(end) if end >= 2 && end * 2 <= chars.len() => {
            char_pairs(&chars[..end].iter().collect::<String>())
        }
        _ => HashSet::new(),
    }
}

/// The analysed words of `text`.
pub(super) fn words_of(text: &str, analyzer: &Analyzer) -> HashSet<String> {
    analyzer.analyze(text).into_iter().map(|t| t.text).collect()
}

/// Share of the term weight of `terms` found among `words`.
pub(super) fn coverage_of(words: &HashSet<String>, terms: &[(String, f32)]) -> f32 {
    novel_share(terms, words, &HashSet::new())
}

/// A sentence cut to at most [`MAX_SENTENCE_CHARS`] for display: the window that holds
/// the most of the question's term weight (long "sentences" are often timelines or
/// table rows, and the part the question asks about can be anywhere in them), starting
/// up to [`WINDOW_LEAD_CHARS`] before its first match at a clause boundary when there is
/// one, with "……" where text was left out.
fn shorten(sentence: &str, terms: &[(String, f32)], analyzer: &Analyzer) -> String {
    let chars: Vec<(usize, char)> = sentence.char_indices().collect();
    let n = chars.len();
    if n <= MAX_SENTENCE_CHARS {
        return sentence.to_string();
    }
    let char_at = |byte: usize| chars.partition_point(|(b, _)| *b < byte);
    let weight = |t: &str| terms.iter().find(|(w, _)| w == t).map(|(_, w)| *w);
    let matches: Vec<(usize, &str, f32)> = analyzer
        .analyze(sentence)
        .into_iter()
        .filter_map(|t| {
            let w = weight(&t.text)?;
            Some((
                char_at(t.byte_from),
                terms.iter().find(|(x, _)| *x == t.text)?.0.as_str(),
                w,
            ))
        })
        .collect();
    let mut best = (0usize, 0.0f32);
    for &(at, _, _) in &matches {
        let start = at
            .saturating_sub(WINDOW_LEAD_CHARS)
            .min(n - MAX_SENTENCE_CHARS);
        let mut seen: Vec<&str> = Vec::new();
        let mut score = 0.0;
        for &(pos, term, w) in &matches {
            if pos >= start && pos < start + MAX_SENTENCE_CHARS && !seen.contains(&term) {
                seen.push(term);
                score += w;
            }
        }
        if score > best.1 {
            best = (start, score);
        }
    }
    let mut start = best.0;
    if start > 0 {
        // Begin after a clause mark inside the lead, so the window opens on a phrase.
        let lead_end = (start + WINDOW_LEAD_CHARS).min(n);
        if let Some(p) = (start..lead_end)
            .find(|&i| matches!(chars[i].1, '，' | '；' | '。' | '：' | ' ' | '、'))
        {
            start = p + 1;
        }
    }
    let mut end = (start + MAX_SENTENCE_CHARS).min(n);
    // A figure is kept whole with its unit ("1750亿", "48.5%", "2023年"): the window
    // does not end inside it.
    let in_figure = |c: char| c.is_ascii_digit() || matches!(c, '.' | '%' | '％');
    let mut extra = 0;
    while end < n
        && extra < MAX_FIGURE_TAIL_CHARS
        && in_figure(chars[end - 1].1)
        && (in_figure(chars[end].1) || FIGURE_UNITS.contains(chars[end].1))
    {
        end += 1;
        extra += 1;
    }
    let mut window: String = chars[start..end].iter().map(|(_, c)| c).collect();
    if end < n {
        if let Some(i) = window
            .rfind(['，', '；', '、', ','])
            .filter(|i| *i > window.len() / 2)
        {
            window.truncate(i);
        }
        window.push_str("……");
    }
    if start > 0 {
        window.insert_str(0, "……");
    }
    window
}

/// Most characters a shortened sentence's window is extended by to keep a figure whole
/// with its unit: the longest figure with unit in the dev answers ("1,500亿亿次") is ten.
pub const MAX_FIGURE_TAIL_CHARS: usize = 10;

/// Units and periods that belong to the figure before them.
const FIGURE_UNITS: &str = "亿万千百元年月日个家倍次人台项%";

/// Characters kept before the first matched word of a shortened sentence: enough for the
/// name a figure belongs to ("深度求索DeepSeek-V3 6710亿参数" puts the name 14 characters
/// before the figure the question quotes).
pub const WINDOW_LEAD_CHARS: usize = 24;

/// A passage used as evidence for an answer, with how close each of its readable
/// sentences is in meaning to the question (cosines, in sentence order), when known.
pub(super) struct Evidence<'a> {
    pub(super) hit: &'a Hit,
    meaning: Option<&'a [f32]>,
}

impl<'a> Evidence<'a> {
    pub(super) fn new(hit: &'a Hit, meaning: &'a Option<Vec<f32>>) -> Self {
        Evidence {
            hit,
            meaning: meaning.as_deref(),
        }
    }
}

/// A sentence of the evidence that may go into the answer.
struct Candidate {
    hit_index: usize,
    position: usize,
    text: String,
    /// Its score before any sentence is taken: [`Candidate::blend`] of `overlap`, times
    /// `factor`.
    score: f32,
    /// Its share of the question's weighed words and character pairs.
    overlap: f32,
    words: HashSet<String>,
    pairs: HashSet<(char, char)>,
    /// Closeness in meaning to the question, scaled to [0, 1] over all candidates.
    meaning: Option<f32>,
    /// The passage-rank discount times the bonuses for what the question asks for.
    factor: f32,
}

impl Candidate {
    /// Word overlap and closeness in meaning, blended at `meaning_weight`.
    fn blend(&self, overlap: f32, meaning_weight: f32) -> f32 {
        match self.meaning {
            Some(m) => (1.0 - meaning_weight) * overlap + meaning_weight * m,
            None => overlap,
        }
    }
}

/// A candidate taken into the answer, with the text shown for it ([`shorten`]) and its
/// share of the question's discriminating term weight ([`discriminating_terms`]).
struct Chosen {
    hit_index: usize,
    position: usize,
    shown: String,
    overlap: f32,
}

/// What a question asks for, read from its wording: a figure ([`asks_for_a_number`]), a
/// quoted name ([`asks_for_a_name`]), or for a Chinese question a person or a place. A
/// sentence holding it weighs more, both when sentences are chosen and when the lead is.
struct Wanted {
    /// The question folded as the analyzer folds text (traditional → simplified), so that
    /// cues and names compare across scripts (幾 / 几, 名稱 / 名称).
    question: String,
    number: bool,
    name: bool,
    kind: Option<NameKind>,
}

impl Wanted {
    /// What `question` asks for; who and where only in Chinese, whose cues they are.
    fn of(question: &str, chinese: bool) -> Self {
        let question = crate::analysis::fold_text(question);
        Wanted {
            number: asks_for_a_number(&question),
            name: asks_for_a_name(&question),
            kind: if chinese {
                asks_for_kind(&question)
            } else {
                None
            },
            question,
        }
    }

    /// `weight` times [`NUMBER_BONUS`] when `sentence` holds a figure the question asks
    /// for, and times [`NAME_BONUS`] for a quoted name or a new person or place it asks for.
    fn weigh(&self, mut weight: f32, sentence: &str, analyzer: &Analyzer) -> f32 {
        if self.number && sentence.chars().any(|c| c.is_ascii_digit()) {
            weight *= NUMBER_BONUS;
        }
        if self.name && quotes_a_name(sentence) {
            weight *= NAME_BONUS;
        }
        if let Some(kind) = self.kind
            && names_a_new(kind, sentence, &self.question, analyzer)
        {
            weight *= NAME_BONUS;
        }
        weight
    }
}

/// The extractive answer to `question` from the evidence passages `hits` (best first):
/// at most [`MAX_ANSWER_SENTENCES`] sentences within [`MAX_ANSWER_CHARS`], the one that
/// answers best first, each followed by its passage's citation marker, and the sources
/// the markers name.
pub(super) fn compose(
    question: &str,
    chinese: bool,
    hits: &[Evidence],
    terms: &[(String, f32)],
    analyzer: &Analyzer,
) -> (String, Vec<Source>) {
    let wanted = Wanted::of(question, chinese);
    let meaning_weight = if chinese {
        SENTENCE_MEANING_WEIGHT
    } else {
        CROSS_SENTENCE_MEANING_WEIGHT
    };
    // Meaning is scaled to [0, 1] over all candidates, as word overlap is: cosines of
    // one model lie in a narrow band, and only their order among the candidates counts.
    let cosines = hits.iter().filter_map(|e| e.meaning).flatten().copied();
    let (lo, hi) = cosines.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), c| {
        (lo.min(c), hi.max(c))
    });
    // Every candidate sentence with its words, analysed once.
    let split: Vec<Vec<(String, HashSet<String>)>> = hits
        .iter()
        .map(|e| {
            sentences(&e.hit.text)
                .into_iter()
                .map(|s| {
                    let words = words_of(&s, analyzer);
                    (s, words)
                })
                .collect()
        })
        .collect();
    let sentence_terms = discriminating_terms(terms, split.iter().flatten().map(|(_, w)| w));
    let candidate_pairs: Vec<HashSet<(char, char)>> =
        split.iter().flatten().map(|(s, _)| char_pairs(s)).collect();
    let pair_weights = pair_weights(&char_pairs(question), &candidate_pairs);
    let topic = topic_pairs(&wanted.question);
    // Passages whose opening sentence names the question's topic: their other sentences
    // speak of it too ("本鱼分布于…"), so for the lead they count as naming it, and what
    // decides is the rest of the question (栖息, 原名). Counting it in full, not at 0.5 or
    // 0.75, did best on the first 400 CMRC questions (first sentence 0.760 → 0.785) and
    // the first 400 DRCD ones (0.797 → 0.792, against 0.790 at 0.5); over all of them,
    // CMRC 0.740 → 0.765 (0.762 on the 2,819 not tried on) and DRCD 0.807 → 0.806.
    let about_topic: Vec<bool> = split
        .iter()
        .map(|sentences| {
            !topic.is_empty()
                && sentences
                    .first()
                    .is_some_and(|(s, _)| topic.is_subset(&char_pairs(s)))
        })
        .collect();
    // Character pairs say nothing of an English question over Chinese sentences.
    let (sel_pairs, lead_pairs) = if chinese {
        (SENTENCE_PAIR_SHARE, LEAD_PAIR_WEIGHT)
    } else {
        (0.0, 0.0)
    };
    let mut candidates = Vec::new();
    for (hit_index, evidence) in hits.iter().enumerate() {
        let meanings = evidence.meaning;
        for (position, (sentence, words)) in split[hit_index].iter().enumerate() {
            let sentence = sentence.clone();
            let pairs = char_pairs(&sentence);
            let overlap = (1.0 - sel_pairs) * coverage_of(words, &sentence_terms)
                + sel_pairs * pair_coverage(&pair_weights, &pairs);
            let meaning = match meanings.and_then(|m| m.get(position)) {
                Some(c) if hi > lo => {
                    let mut meaning = (c - lo) / (hi - lo);
                    if !chinese {
                        meaning -= LATIN_SHARE_PENALTY * latin_share(&sentence);
                    }
                    Some(meaning)
                }
                _ => None,
            };
            // Discounted by the passage's rank so that the best passage's sentences win
            // close calls.
            let factor = wanted.weigh(
                1.0 / (1.0 + RANK_DISCOUNT * hit_index as f32),
                &sentence,
                analyzer,
            );
            let mut candidate = Candidate {
                hit_index,
                position,
                text: sentence,
                score: 0.0,
                overlap,
                words: words.clone(),
                pairs,
                meaning,
                factor,
            };
            candidate.score = candidate.blend(overlap, meaning_weight) * factor;
            candidates.push(candidate);
        }
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.hit_index.cmp(&b.hit_index))
    });
    let mut chosen: Vec<Chosen> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    // The question's words and character pairs that the sentences taken so far hold.
    let mut held_terms: HashSet<String> = HashSet::new();
    let mut held_pairs: HashSet<(char, char)> = HashSet::new();
    let mut length = 0;
    let mut remaining = candidates;
    while chosen.len() < MAX_ANSWER_SENTENCES && !remaining.is_empty() {
        // After the first sentence, a Chinese question's words count at
        // COVERED_WORD_SHARE of their weight where the answer already holds them, so
        // that the next sentence is the one adding what the question asks (效力于…球队)
        // rather than another naming its topic (徐晓飞…). English questions keep their
        // scores: their words are glossary translations, several per English word, and
        // holding one says little of the others.
        let rescore = |c: &Candidate| -> f32 {
            if chosen.is_empty() || !chinese {
                return c.score;
            }
            let overlap = (1.0 - sel_pairs) * novel_share(&sentence_terms, &c.words, &held_terms)
                + sel_pairs * novel_share(&pair_weights, &c.pairs, &held_pairs);
            c.blend(overlap, meaning_weight) * c.factor
        };
        let Some((index, score)) = remaining
            .iter()
            .map(rescore)
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let c = remaining.remove(index);
        let key = sentence_key(&c.text);
        if score <= 0.0 && !chosen.is_empty() || seen.contains(&key) {
            continue;
        }
        let shown = shorten(&c.text, terms, analyzer);
        let shown_chars = shown.chars().count();
        if !chosen.is_empty() && length + shown_chars > MAX_ANSWER_CHARS {
            continue;
        }
        seen.insert(key);
        length += shown_chars;
        held_terms.extend(
            sentence_terms
                .iter()
                .filter(|(t, _)| c.words.contains(t))
                .map(|(t, _)| t.clone()),
        );
        held_pairs.extend(c.pairs.iter().copied());
        chosen.push(Chosen {
            hit_index: c.hit_index,
            position: c.position,
            shown,
            overlap: c.overlap,
        });
    }
    if chosen.is_empty() {
        chosen = opening_sentences(hits[0].hit, terms, analyzer);
    }
    // The sentence that answers best leads; the others follow in a sensible order: by
    // source, then as the text runs.
    // Of the sentences taken, the one holding the most of the question's discriminating
    // term weight leads (on a tie, the best scored): closeness in meaning helps to pick
    // sentences about the question, while the words that tell them apart say which one
    // answers it (CMRC first-sentence share 0.677 → 0.693 on the 400 questions this was
    // tried on, 0.688 → 0.698 on the other 2,819; DRCD 0.789 → 0.791; dev unchanged).
    if chosen.len() > 1 {
        // A sentence holding what the question asks for (a figure, a quoted name) leads
        // before one that only shares its words, by the bonuses that choose sentences
        // (over all questions: CMRC first-sentence share 0.715 → 0.718, DRCD 0.798 →
        // 0.800; on the 400 of each it was tried on first, 0.715 → 0.715 and 0.775 →
        // 0.780; dev bigram recall 0.783 → 0.784).
        let lead_weight = |c: &Chosen| {
            let w = c.overlap
                + lead_pairs
                    * pair_coverage(&pair_weights, &{
                        let mut pairs = char_pairs(&c.shown);
                        if about_topic[c.hit_index] {
                            pairs.extend(topic.iter().copied());
                        }
                        pairs
                    });
            wanted.weigh(w, &c.shown, analyzer)
        };
        let lead = (0..chosen.len())
            .max_by(|a, b| {
                lead_weight(&chosen[*a])
                    .total_cmp(&lead_weight(&chosen[*b]))
                    .then(b.cmp(a))
            })
            .unwrap_or(0);
        let first = chosen.remove(lead);
        chosen.insert(0, first);
        chosen[1..].sort_by_key(|c| (c.hit_index, c.position));
    }
    // A sentence that opens with a heading or a section title (readable sentences take
    // most such openings off; table rows under a title keep theirs) may hold the figure
    // asked for, so it stays, but never first when another can lead.
    let opens_badly = |c: &Chosen| {
        opens_with_furniture(
            c.shown.trim_start_matches('…'),
            &hits[c.hit_index].hit.citation.section,
        )
    };
    if let Some(lead) = chosen.iter().position(|c| !opens_badly(c)) {
        let first = chosen.remove(lead);
        chosen.insert(0, first);
    } else if let Some(c) = remaining.iter().find_map(|c| {
        // Every sentence taken opens badly (rows of a table: "大模型推出时间：2024年11月"):
        // the best sentence left that does not leads, and the last taken make room for it.
        let key = sentence_key(&c.text);
        let lead = Chosen {
            hit_index: c.hit_index,
            position: c.position,
            shown: shorten(&c.text, terms, analyzer),
            overlap: c.overlap,
        };
        (c.score > 0.0 && !seen.contains(&key) && !opens_badly(&lead)).then_some(lead)
    }) {
        let mut length = c.shown.chars().count();
        chosen.insert(0, c);
        let mut kept = 1;
        for taken in &chosen[1..] {
            length += taken.shown.chars().count();
            if length > MAX_ANSWER_CHARS || kept == MAX_ANSWER_SENTENCES {
                break;
            }
            kept += 1;
        }
        chosen.truncate(kept);
    }
    render(&chosen, hits)
}

/// The answer when no sentence shares the question's words (found by meaning alone, as
/// an English question may be): the opening sentences of the best passage `hit`, within
/// the same budgets.
fn opening_sentences(hit: &Hit, terms: &[(String, f32)], analyzer: &Analyzer) -> Vec<Chosen> {
    let mut chosen = Vec::new();
    let mut length = 0;
    for (position, text) in sentences(&hit.text).into_iter().enumerate() {
        let shown = shorten(&text, terms, analyzer);
        let shown_chars = shown.chars().count();
        if chosen.len() == MAX_ANSWER_SENTENCES
            || (!chosen.is_empty() && length + shown_chars > MAX_ANSWER_CHARS)
        {
            break;
        }
        length += shown_chars;
        chosen.push(Chosen {
            hit_index: 0,
            position,
            shown,
            overlap: 0.0,
        });
    }
    chosen
}

/// What tells a sentence apart from its repeats: its letters and digits. Overlapping
/// passages repeat sentences, and an answer holds each once.
fn sentence_key(text: &str) -> String {
    text.chars().filter(|ch| ch.is_alphanumeric()).collect()
}

/// The answer's text, each sentence followed by the marker of its passage (passages
/// numbered in the order the answer first cites them), and the sources the markers name.
fn render(chosen: &[Chosen], hits: &[Evidence]) -> (String, Vec<Source>) {
    let mut markers: Vec<usize> = Vec::new();
    let mut answer = String::new();
    for c in chosen {
        let marker = match markers.iter().position(|h| *h == c.hit_index) {
            Some(i) => i + 1,
            None => {
                markers.push(c.hit_index);
                markers.len()
            }
        };
        answer.push_str(&c.shown);
        answer.push_str(&format!("[{marker}]"));
    }
    let sources = markers
        .iter()
        .enumerate()
        .map(|(i, h)| source(i + 1, hits[*h].hit))
        .collect();
    (answer, sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Citation;

    #[test]
    fn who_and_where_questions_prefer_sentences_naming_a_new_person_or_place() {
        let analyzer = Analyzer::new();
        assert_eq!(
            asks_for_kind("数珠丸被谁拍下后交到了本兴寺？"),
            Some(NameKind::Person)
        );
        assert_eq!(
            asks_for_kind("黑彩陶器的原产地是哪里？"),
            Some(NameKind::Place)
        );
        assert_eq!(asks_for_kind("黑彩陶器是什么？"), None);
        let question = "苏轼的父亲是谁？";
        assert!(names_a_new(
            NameKind::Person,
            "其父苏洵是著名文学家。",
            question,
            &analyzer
        ));
        // The person the question names is not an answer.
        assert!(!names_a_new(
            NameKind::Person,
            "苏轼是北宋文学家。",
            question,
            &analyzer
        ));
        assert!(names_a_new(
            NameKind::Place,
            "他出生于四川眉山。",
            "他出生在哪里？",
            &analyzer
        ));
    }

    #[test]
    fn a_question_opening_with_a_name_has_that_name_as_its_topic() {
        assert_eq!(topic_pairs("黄足笛鲷在哪里栖息？"), char_pairs("黄足笛鲷"));
        assert_eq!(
            topic_pairs("阿马里洛的原名是什么？"),
            char_pairs("阿马里洛")
        );
        // No topic when the question opens with a particle or the opening is most of it.
        assert!(topic_pairs("在法国殖民前，几内亚地区采用什么贸易方式？").is_empty());
        assert!(topic_pairs("中国建筑工程总公司标识是？").is_empty());
    }

    #[test]
    fn character_pairs_find_the_wording_of_the_question_across_word_cuts() {
        let question = char_pairs("萨默塞特的第一大镇是什么？");
        // The subject is in most candidates, so its pairs say little; 大镇 tells them apart.
        let sentences = [
            "北萨默塞特是第一大区。",
            "萨默塞特的汤顿是第一大镇（亦是郡治）。",
            "萨默塞特郡是英国英格兰西南部的郡。",
            "萨默塞特平原位于郡的中部。",
        ];
        let candidates: Vec<_> = sentences.iter().map(|s| char_pairs(s)).collect();
        let weights = pair_weights(&question, &candidates);
        let share = |i: usize| pair_coverage(&weights, &candidates[i]);
        assert!(share(1) > share(0), "{} vs {}", share(1), share(0));
        // Pairs never span punctuation, and traditional characters and full-width
        // letters fold as the analyzer folds them.
        assert!(!char_pairs("特，第").contains(&('特', '第')));
        assert_eq!(char_pairs("萬億ＧＰ"), char_pairs("万亿gp"));
        // A sentence holding all of the question's pairs has all of its share.
        let whole = char_pairs("萨默塞特的第一大镇是什么");
        assert!((pair_coverage(&weights, &whole) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn words_every_candidate_shares_weigh_less_than_those_that_tell_one_apart() {
        let set = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
        let candidates = [
            set(&["内托", "葡萄牙", "射手"]),
            set(&["内托", "效力", "球队"]),
            set(&["内托", "转会", "射手"]),
        ];
        let terms = vec![("内托".to_string(), 5.0), ("效力".to_string(), 2.0)];
        let reweighed = discriminating_terms(&terms, candidates.iter());
        assert!(reweighed[1].1 > reweighed[0].1, "{reweighed:?}");
        // So the sentence with the predicate covers more than one with the subject alone.
        assert!(
            coverage_of(&candidates[1], &reweighed) > 2.0 * coverage_of(&candidates[0], &reweighed)
        );
    }

    #[test]
    fn long_sentences_are_cut_at_a_clause() {
        let long = format!("{}，{}。", "大".repeat(120), "模".repeat(80));
        let analyzer = Analyzer::new();
        let short = shorten(&long, &[], &analyzer);
        assert!(short.ends_with("……"));
        assert!(short.chars().count() <= MAX_SENTENCE_CHARS + 2);
    }

    /// The analysed terms of `text`, each of weight 1.
    fn equal_weights(analyzer: &Analyzer, text: &str) -> Vec<(String, f32)> {
        analyzer
            .query_terms(text)
            .into_iter()
            .map(|t| (t, 1.0))
            .collect()
    }

    fn hit(rank: usize, text: &str) -> Hit {
        Hit {
            rank,
            id: format!("r#{rank}"),
            score: 1.0 / rank as f32,
            text: text.into(),
            snippet: String::new(),
            citation: Citation {
                source: format!("r{rank}.txt"),
                title: "报告".into(),
                section: String::new(),
                line_start: 1,
                line_end: 1,
                char_start: 0,
                char_end: text.chars().count(),
            },
            bm25: None,
            dense: None,
        }
    }

    #[test]
    fn composition_picks_matching_sentences_once_and_numbers_their_sources() {
        let analyzer = Analyzer::new();
        let terms: Vec<(String, f32)> = equal_weights(&analyzer, "银行 风险控制");
        let shared = "银行利用大模型加强风险控制能力。";
        let a = hit(1, &format!("报告介绍了行业背景和发展历程。{shared}"));
        let b = hit(2, &format!("{shared}零售门店数字化也在推进之中。"));
        let evidence = [Evidence::new(&a, &None), Evidence::new(&b, &None)];
        let (answer, sources) = compose("银行如何做风险控制", true, &evidence, &terms, &analyzer);
        // The shared sentence appears once, cited to the first passage that has it.
        assert_eq!(answer.matches("风险控制").count(), 1, "{answer}");
        assert!(answer.starts_with(shared), "{answer}");
        assert!(answer.contains("[1]"), "{answer}");
        assert_eq!(sources[0].id, "r#1");
        assert!(
            !answer.contains("零售门店"),
            "unrelated sentence kept: {answer}"
        );
        // Every marker points at a listed source.
        for s in &sources {
            assert!(answer.contains(&format!("[{}]", s.marker)));
        }
    }

    #[test]
    fn an_english_question_is_answered_by_the_sentences_closest_in_meaning() {
        let analyzer = Analyzer::new();
        // English words match nothing in Chinese passages: word overlap is zero.
        let terms: Vec<(String, f32)> =
            equal_weights(&analyzer, "How many stores does Belle have?");
        let a = hit(
            1,
            "报告介绍了零售行业的发展背景。百丽时尚在全国拥有超过9000家直营门店。",
        );
        let b = hit(2, "医疗大模型辅助医生书写病历。");
        let meaning_a = Some(vec![0.71, 0.86]);
        let meaning_b = Some(vec![0.74]);
        let evidence = [Evidence::new(&a, &meaning_a), Evidence::new(&b, &meaning_b)];
        let question = "How many stores does Belle have?";
        let (answer, _) = compose(question, false, &evidence, &terms, &analyzer);
        assert!(
            answer.starts_with("百丽时尚在全国拥有超过9000家直营门店。"),
            "{answer}"
        );
        // Without sentence vectors the answer falls back to the best passage's opening.
        let plain = [Evidence::new(&a, &None), Evidence::new(&b, &None)];
        let (answer, _) = compose(question, false, &plain, &terms, &analyzer);
        assert!(answer.starts_with("报告介绍了"), "{answer}");
    }

    #[test]
    fn english_glossary_lines_do_not_win_english_questions_by_their_language() {
        let analyzer = Analyzer::new();
        let glossary = "LLM：Large Language Model，大型语言模型，用深度学习算法处理自然语言。";
        let answer = "决策式大模型对结果的准确性和可解释性要求非常高，落地难度更大。";
        let a = hit(1, &format!("{glossary}{answer}"));
        // The glossary line is a little closer in meaning, for its English words.
        let meaning = Some(vec![0.84, 0.82]);
        let evidence = [Evidence::new(&a, &meaning)];
        let question = "Why are decision-making models harder to deploy?";
        let (text, _) = compose(question, false, &evidence, &[], &analyzer);
        assert!(text.starts_with(answer), "{text}");
        assert!(latin_share(glossary) > 0.4 && latin_share(answer) == 0.0);
    }

    #[test]
    fn after_the_first_sentence_the_answer_grows_by_what_it_lacks() {
        let analyzer = Analyzer::new();
        let question = "徐晓飞现在效力于哪个球队";
        let terms: Vec<(String, f32)> = equal_weights(&analyzer, question);
        // Five sentences name the person the question is about; the one that answers
        // names the team instead, and is further in meaning from the question.
        let about = hit(
            1,
            "徐晓飞是中国足球运动员，司职中场。徐晓飞曾在日本读大学。徐晓飞回到中国。\
             徐晓飞首次出场。徐晓飞因伤退役。2012年复出，现加盟日本四国联赛球队。",
        );
        let other = hit(
            2,
            "城市人口逐年增加。河流穿过平原。气候温和湿润。工厂生产纺织品。\
             学校设有图书馆。公园种满树木。",
        );
        let about_meaning = Some(vec![1.0, 0.6, 0.6, 0.6, 0.6, 0.5]);
        let other_meaning = Some(vec![0.0; 6]);
        let evidence = [
            Evidence::new(&about, &about_meaning),
            Evidence::new(&other, &other_meaning),
        ];
        let (answer, _) = compose(question, true, &evidence, &terms, &analyzer);
        // Taken as the second sentence, it holds the most of the question and leads.
        assert!(
            answer.starts_with("2012年复出，现加盟日本四国联赛球队"),
            "{answer}"
        );
        assert_eq!(answer.matches("徐晓飞").count(), 3, "{answer}");
    }

    #[test]
    fn an_answer_of_table_rows_is_led_by_a_sentence() {
        let analyzer = Analyzer::new();
        // An English question, searched by the Chinese of its words.
        let question = "When did JD launch its large model?";
        let terms: Vec<(String, f32)> = equal_weights(&analyzer, "京东 大模型 推出 时间");
        // Four passages are rows of a table holding most of those words; the fifth has a
        // sentence holding fewer of them.
        let rows: Vec<Hit> = (1..=4)
            .map(|i| hit(i, &format!("•大模型推出时间：2024年{i}月")))
            .collect();
        let sentence = hit(5, "言犀服务京东的商家，生成商品内容。");
        let mut evidence: Vec<Evidence> = rows.iter().map(|h| Evidence::new(h, &None)).collect();
        evidence.push(Evidence::new(&sentence, &None));
        let (answer, _) = compose(question, false, &evidence, &terms, &analyzer);
        assert!(answer.starts_with("言犀服务京东的商家"), "{answer}");
        assert!(answer.contains("大模型推出时间："), "{answer}");
    }

    #[test]
    fn a_long_sentence_is_shown_around_what_the_question_asks() {
        let analyzer = Analyzer::new();
        let terms: Vec<(String, f32)> = equal_weights(&analyzer, "GPT-3 参数");
        let timeline = format!(
            "{}2020年，OpenAI发布GPT-3，参数量达到1750亿，{}",
            "1956年，人工智能概念提出，标志着领域的诞生，".repeat(6),
            "此后模型规模持续扩大，应用不断丰富，".repeat(12)
        );
        let shown = shorten(&timeline, &terms, &analyzer);
        assert!(shown.contains("1750亿"), "{shown}");
        assert!(shown.starts_with("……") && shown.ends_with("……"), "{shown}");
        assert!(shown.chars().count() <= MAX_SENTENCE_CHARS + 4, "{shown}");
    }

    #[test]
    fn questions_asking_for_a_name_prefer_the_sentence_quoting_one() {
        assert!(asks_for_a_name(
            "What is the full title of the white paper?"
        ));
        assert!(asks_for_a_name("这个平台的名称是什么？"));
        assert!(!asks_for_a_name("大模型有哪些应用？"));
        assert!(quotes_a_name("本次《2024年大模型白皮书》撰写期间"));
        assert!(!quotes_a_name("“”与《》之间没有名字"));
        // Four sentences share the one informative word; only three fit in an answer.
        let text = "白皮书总结了优秀案例。白皮书分析了行业趋势。白皮书介绍了研究方法。\
                    本次《2024年大模型应用案例白皮书》由研究院撰写。";
        let (h, meaning) = (hit(0, text), None);
        let evidence = [Evidence::new(&h, &meaning)];
        let analyzer = Analyzer::new();
        let question = "白皮书的全称是什么？";
        let terms: Vec<(String, f32)> = equal_weights(&analyzer, question);
        let (answer, _) = compose(question, true, &evidence, &terms, &analyzer);
        assert!(
            answer.contains("《2024年大模型应用案例白皮书》"),
            "{answer}"
        );
    }

    #[test]
    fn questions_asking_for_a_figure_are_recognized() {
        assert!(asks_for_a_number("百丽时尚有多少家直营门店？"));
        assert!(asks_for_a_number("How many provinces does it cover?"));
        assert!(!asks_for_a_number("豆包这个智能助手在哪些场合用得比较好？"));
    }
}
