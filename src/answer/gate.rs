//! The relevance gate: whether the reports speak of a question at all. It weighs the
//! question's words that no passage contains against those its best evidence passage
//! holds, and how far dense retrieval's best passage stands out from the rest; a refusal
//! names the words the reports lack.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::analysis::{Glossary, in_chinese};
use crate::corpus::is_han;
use crate::retrieve::{DenseStats, Engine};

/// Share of the question's term weight (idf-weighted) a passage must contain to be
/// preferred as evidence for the answer's sentences; also the whole relevance rule
/// when no embedding model is loaded (BM25 only). Questions about things the reports
/// never mention share at most a generic word or two ("大模型", "应用") with any passage.
pub const MIN_TERM_COVERAGE: f32 = 0.5;

/// The relevance decision for a question in Chinese: `dense top cosine +
/// ZH_COVERAGE_WEIGHT × best passage's term coverage` must reach [`ZH_THRESHOLD`].
/// Fitted on dev.jsonl (37 Chinese questions) and dev-negatives.jsonl (18 Chinese) with
/// multilingual-e5-small: every answerable question scores ≥ 0.893, 17 of 18 negatives
/// < 0.884 (one, a car maker's sales, 0.909). The coverage term separates better than the
/// margin over the background (a grid over both weights); dense cosine alone cannot
/// separate ("红烧肉怎么做" scores 0.85). Another model needs these refitted.
pub const ZH_COVERAGE_WEIGHT: f32 = 0.05;

/// Threshold of the Chinese relevance score (see [`ZH_COVERAGE_WEIGHT`]): midway
/// between the lowest answerable question and the highest refused negative below it.
pub const ZH_THRESHOLD: f32 = 0.889;

/// The relevance decision for a question without Chinese characters (English over
/// Chinese reports): `dense top + CROSS_MARGIN_WEIGHT × (top − background) +
/// CROSS_COVERAGE_WEIGHT × coverage` must reach [`CROSS_THRESHOLD`]. English questions
/// score 0.75–0.84 whatever they ask, so how far the best passage stands out from the
/// background counts as much as the score itself. Fitted on dev-en.jsonl and the English
/// questions of dev.jsonl (15) against the two English negatives: answerable ≥ 0.801,
/// negatives ≤ 0.791 (a grid over both weights). Few examples: the weakest of the rules.
pub const CROSS_MARGIN_WEIGHT: f32 = 1.0;

/// See [`CROSS_MARGIN_WEIGHT`].
pub const CROSS_COVERAGE_WEIGHT: f32 = 0.1;

/// See [`CROSS_MARGIN_WEIGHT`].
pub const CROSS_THRESHOLD: f32 = 0.796;

/// Width of the logistic that turns a relevance score's distance from its threshold into
/// the `confidence` reported with an answer (0.5 at the threshold; 0.01 above it ≈ 0.73):
/// the scores of answerable and unanswerable questions lie a few hundredths apart.
pub const CONFIDENCE_SCALE: f32 = 0.01;

/// The confidence reported, at most, when the question names what no passage contains
/// ([`Relevance::unmentioned`]): below 0.5, so the question is refused.
pub const MISSING_TERM_CONFIDENCE: f32 = 0.1;

/// A word of the question the reports lack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingTerm {
    /// The word as analysed (lowercase, simplified characters; for an English question
    /// its English stem).
    pub term: String,
    /// Where it is missing.
    pub missing_from: MissingFrom,
}

/// Where a question's word is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingFrom {
    /// No passage of the collection contains it: the reports do not mention it, and the
    /// question is refused.
    Collection,
    /// The passages retrieved as evidence lack it (some other passage has it).
    Evidence,
}

/// What decides whether the reports speak of a question: the words it names that no
/// passage contains, weighed against those the best evidence passage holds.
#[derive(Debug, Clone, Default)]
pub struct Relevance {
    /// The words the reports lack ([`MissingTerm`]).
    pub missing: Vec<MissingTerm>,
    /// Sum of the weights of the words no passage contains, each weighing what a word of
    /// document frequency 0 weighs (the most specific a word can be).
    pub absent_weight: f32,
    /// The most weight of the question's present words one evidence passage holds.
    pub matched_weight: f32,
    /// The question is not in Chinese: its absent words are words the glossary knows
    /// whose every translation the collection lacks, which is not a typo or an everyday
    /// paraphrase; and its present words are the glossary's guesses, which weigh only
    /// [`CROSS_MATCHED_SHARE`] against them.
    pub cross_lingual: bool,
    /// How many of the absent words name the sector the question is about
    /// ([`crate::analysis::Analyzer::sector_words`]: 殡葬 in 殡葬行业): the question asks about an industry or
    /// kind of organisation the reports never mention, so one refuses.
    pub absent_sectors: usize,
    /// How far the best passage stands out in meaning from the rest (the dense margin of
    /// [`DenseStats`]: best cosine minus the background), when dense retrieval ran over
    /// enough passages to measure the background ([`DenseStats::full_background`]).
    pub meaning_margin: Option<f32>,
}

impl Relevance {
    /// Whether the question names something the reports never mention: for a question in
    /// another language, words that weigh more than [`CROSS_MATCHED_SHARE`] of what its
    /// best evidence passage holds ([`Relevance::cross_lingual`]); for one in Chinese,
    /// words that weigh more than everything its best evidence passage shares with it: "大模型在渔业中有哪些
    /// 应用？" has only generic words (大模型, 应用) besides the absent 渔业, while a question
    /// with one unusual word ("场合") among several specific ones the evidence holds
    /// (豆包, 智能助手) is about what the reports say. Such words are the asker's own
    /// wording when a passage stands out in meaning (`Relevance::paraphrased`); a sector
    /// the reports lack refuses whatever the rest.
    pub fn unmentioned(&self, gate: &GateCalibration) -> bool {
        if self.cross_lingual {
            return self.absent_weight > CROSS_MATCHED_SHARE * self.matched_weight;
        }
        if self.absent_sectors > 0 {
            return true;
        }
        if self.paraphrased(gate) {
            return false;
        }
        self.absent_weight > ABSENT_WEIGHT_RATIO * self.matched_weight
    }

    /// Whether the words of a Chinese question that no passage contains are taken for the
    /// asker's wording: one passage stands out in meaning ([`PARAPHRASE_MEANING_MARGIN`])
    /// and the evidence shares some of the question's words. Not limited to one absent
    /// word or to words other than names: on the first 400 CMRC questions over their own
    /// corpus, answered 0.993 / has gold 0.930 as it is (0.995 / 0.932 without asking for
    /// shared words), 0.990 / 0.927 with one absent word at most, 0.983 / 0.920 with no
    /// absent name (names written otherwise than the text writes them), while no
    /// negative of ours reaches the margin.
    fn paraphrased(&self, gate: &GateCalibration) -> bool {
        self.matched_weight > 0.0
            && self
                .meaning_margin
                .is_some_and(|m| m >= gate.paraphrase_margin)
    }
}

/// The thresholds of the relevance decision that depend on the embedding model: each
/// model puts its cosines in a band of its own (multilingual-e5-small's Chinese top
/// scores lie at 0.79–0.94, bge-small-zh-v1.5's at 0.36–0.84), so thresholds fitted with
/// one refuse every question with the other. The weights of the rules
/// ([`ZH_COVERAGE_WEIGHT`], [`CROSS_MARGIN_WEIGHT`], [`CROSS_COVERAGE_WEIGHT`]) are the
/// same for both: only where they cut was fitted again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateCalibration {
    /// Threshold of the Chinese relevance score ([`ZH_THRESHOLD`] for e5).
    pub zh_threshold: f32,
    /// Threshold of the relevance score of a question in another language
    /// ([`CROSS_THRESHOLD`] for e5).
    pub cross_threshold: f32,
    /// Dense margin from which a Chinese question's absent words are taken for its
    /// wording ([`PARAPHRASE_MEANING_MARGIN`] for e5).
    pub paraphrase_margin: f32,
}

impl GateCalibration {
    /// The thresholds fitted with `intfloat/multilingual-e5-small` (the default model).
    pub const E5_SMALL: GateCalibration = GateCalibration {
        zh_threshold: ZH_THRESHOLD,
        cross_threshold: CROSS_THRESHOLD,
        paraphrase_margin: PARAPHRASE_MEANING_MARGIN,
    };

    /// The thresholds fitted with `BAAI/bge-small-zh-v1.5`.
    pub const BGE_SMALL_ZH: GateCalibration = GateCalibration {
        zh_threshold: BGE_ZH_THRESHOLD,
        cross_threshold: BGE_CROSS_THRESHOLD,
        paraphrase_margin: BGE_PARAPHRASE_MEANING_MARGIN,
    };

    /// The thresholds for the model of `model_id` (`name@revision`, as
    /// [`Engine::model_id`] gives it); e5's for any other model or none (without a model
    /// only term coverage decides, see [`confidence`]).
    pub fn for_model(model_id: Option<&str>) -> GateCalibration {
        let name = model_id.map(|id| id.split('@').next().unwrap_or(id));
        if name == Some(crate::embed::profile::BGE_SMALL_ZH) {
            GateCalibration::BGE_SMALL_ZH
        } else {
            GateCalibration::E5_SMALL
        }
    }
}

/// [`ZH_THRESHOLD`] for `BAAI/bge-small-zh-v1.5`, fitted the same way on the same
/// questions (dev.jsonl's Chinese questions against dev-negatives.jsonl's): the lowest
/// answerable question scores 0.502, the one Chinese negative the relevance decision
/// leaves to the score 0.394; midway. Over `eval/questions.jsonl` the lowest answerable
/// scores 0.469, the others ≥ 0.525.
pub const BGE_ZH_THRESHOLD: f32 = 0.448;

/// [`CROSS_THRESHOLD`] for `BAAI/bge-small-zh-v1.5` (a Chinese model: English questions
/// score 0.48–0.70 over the reports): fitted on dev-en.jsonl and dev.jsonl's English
/// questions against dev-negatives.jsonl's English ones, which do not separate (the lowest
/// answerable, 0.476, is below "Which team won the 2023 NBA finals?", 0.484); midway
/// between that negative and the next answerable (0.514), so the negative is refused and
/// one English question of dev with it.
pub const BGE_CROSS_THRESHOLD: f32 = 0.499;

/// [`PARAPHRASE_MEANING_MARGIN`] for `BAAI/bge-small-zh-v1.5`, whose margins are wider:
/// the Chinese negatives of dev-negatives.jsonl and `eval/near-negatives.jsonl` reach
/// 0.132 (next 0.122, 0.121), answerable questions of dev.jsonl and
/// `eval/questions.jsonl` have quartiles 0.079 / 0.132 / 0.173. Above every negative, as
/// for e5.
pub const BGE_PARAPHRASE_MEANING_MARGIN: f32 = 0.14;

/// The dense margin (best cosine minus the mean at ranks 11–50) from which a Chinese
/// question's words that no passage contains are taken for the asker's own wording
/// ("“机器学习”这个说法最早是哪一年提出的": the reports say 概念), not for a facet the
/// reports lack: one passage stands out in meaning as no unanswerable question's does. With
/// multilingual-e5-small, the 89 Chinese negatives of `eval/near-negatives*.jsonl` and
/// `../shared/eval/dev-negatives.jsonl` reach at most 0.031 (upper quartiles 0.017–0.023);
/// answerable questions have quartiles 0.018 / 0.025 / 0.042 (`eval/questions.jsonl`) and
/// 0.019 / 0.031 / 0.039 (`../shared/eval/dev.jsonl`).
/// 0.04 keeps a margin above every negative. A question naming a sector the reports lack
/// is refused whatever its margin. Another model needs it measured again.
pub const PARAPHRASE_MEANING_MARGIN: f32 = 0.04;

/// How much more the question's words no passage contains must weigh than its words the
/// best evidence passage holds for the question to be refused ([`Relevance::unmentioned`]).
/// 1.0: the reports are taken to lack the subject when what they lack outweighs what they
/// hold; chosen by that rule, not fitted (no other value was tried).
pub const ABSENT_WEIGHT_RATIO: f32 = 1.0;

/// What a question's verb that no passage contains ([`crate::analysis::Analyzer::activity_words`]: 殡葬, 外卖,
/// 充电) weighs against the question, as a share of an absent naming word: an activity
/// the reports never describe is a facet they lack, but a verb is also how a person
/// paraphrases ("把智能客服当作切入口"), so it says less than a noun.
pub const ABSENT_ACTIVITY_SHARE: f32 = 0.5;

/// What an English word the collection never uses in translation weighs against a
/// question that also quotes Chinese words the collection holds, as a share of an absent
/// Chinese naming word: the glossary's translations are guesses ("avatar" → 化身, 头像,
/// where the reports say 分身), the quoted Chinese is the person's own. The share of
/// [`ABSENT_ACTIVITY_SHARE`], for a word that says less than a noun the person wrote;
/// not fitted.
pub const ABSENT_TRANSLATION_SHARE: f32 = 0.5;

/// What the glossary translations of an English question's words that its best evidence
/// passage holds weigh against its words whose every translation the collection lacks
/// ([`Relevance::unmentioned`]): half, as [`ABSENT_TRANSLATION_SHARE`] weighs a guess
/// against a word the person wrote. So one absent word ("miscalculated", a phrase such as
/// "case study") refuses a question unless its evidence holds twice its weight. Before,
/// any absent word refused: the English near-negatives of `eval/near-negatives.jsonl`
/// hold at most 1.02 times their absent weight in evidence ("textile factory"), while
/// answerable questions refused for one word of their wording held 2.7 and 3.5 times it.
pub const CROSS_MATCHED_SHARE: f32 = 0.5;

/// Words by which a person addresses the service rather than name what they ask about
/// (我想知道…, 跟我讲讲…, 举几个例子, 谢谢): the reports write few of them, and their
/// absence says nothing of the subject, so they never refuse a question; where the reports
/// write one, it is evidence like any other word. Before, "我想知道大模型在金融行业有哪些应用"
/// was refused for 知道 and the same question ending in 谢谢 for 谢谢. Written from the
/// request, telling and politeness words of everyday Chinese, not from any question set.
pub const REQUEST_WORDS: &[&str] = &[
    "知道",
    "想知道",
    "了解",
    "想了解",
    "请教",
    "告诉",
    "告知",
    "讲讲",
    "讲一讲",
    "说说",
    "说一说",
    "聊聊",
    "聊一聊",
    "谈谈",
    "谈一谈",
    "介绍",
    "简介",
    "解释",
    "讲解",
    "解答",
    "回答",
    "说明",
    "描述",
    "概括",
    "总结",
    "归纳",
    "列举",
    "列出",
    "罗列",
    "梳理",
    "举例",
    "例子",
    "比如",
    "比如说",
    "谢谢",
    "感谢",
    "多谢",
    "麻烦",
    "劳驾",
    "拜托",
    "帮忙",
    "帮帮",
    "问问",
    "查查",
    "看看",
];

/// The words of `question` the reports lack and the weights that decide
/// ([`Relevance`]). For a question in Chinese the words are its naming words
/// ([`crate::analysis::Analyzer::naming_words`]), none of which refuses it when it is one
/// of [`REQUEST_WORDS`], and its time words relative to now
/// ([`crate::analysis::Analyzer::time_words`]), which only count where the reports write
/// them; for one in another language its common (not
/// capitalized) words whose translations the collection never uses
/// ([`Engine::unused_english_words`]) and the Chinese words it was translated into
/// (`translated`). `evidence` holds the words of each passage retrieved.
pub fn relevance(
    engine: &Engine,
    question: &str,
    translated: &[String],
    evidence: &[HashSet<String>],
) -> Relevance {
    let analyzer = engine.analyzer();
    let n = engine.passages().len().max(1) as f32;
    let idf = |df: f32| ((n - df + 0.5) / (df + 0.5) + 1.0).ln().max(0.05);
    let mut relevance = Relevance::default();
    let words = if in_chinese(question) {
        QuestionWords::of_chinese(engine, question)
    } else {
        QuestionWords::of_other(engine, question, translated)
    };
    relevance.absent_sectors = words.absent_sectors;
    relevance.cross_lingual = words.cross_lingual;
    relevance.absent_weight = words.absent_weight(idf(0.0));
    let present = words.present;
    relevance.missing = words
        .absent
        .into_iter()
        .map(|term| MissingTerm {
            term,
            missing_from: MissingFrom::Collection,
        })
        .collect();
    // Each present word with its weight and the terms it is analysed into.
    let weighed: Vec<(String, f32, Vec<String>)> = present
        .into_iter()
        .map(|word| {
            let parts = analyzer.query_terms(&word);
            let df = parts
                .iter()
                .chain(std::iter::once(&word))
                .map(|t| engine.document_frequency(t))
                .max()
                .unwrap_or(0);
            (word, idf(df as f32), parts)
        })
        .collect();
    let holds = |words: &HashSet<String>, word: &str, parts: &[String]| {
        words.contains(word) || (!parts.is_empty() && parts.iter().all(|p| words.contains(p)))
    };
    relevance.matched_weight = evidence
        .iter()
        .map(|words| {
            weighed
                .iter()
                .filter(|(w, _, parts)| holds(words, w, parts))
                .map(|(_, weight, _)| weight)
                .sum::<f32>()
        })
        .fold(0.0, f32::max);
    // A word the person asks with says nothing of the subject, so the evidence lacks
    // nothing when it lacks one.
    for (word, _, parts) in &weighed {
        if !REQUEST_WORDS.contains(&word.as_str())
            && !evidence.iter().any(|words| holds(words, word, parts))
        {
            relevance.missing.push(MissingTerm {
                term: word.clone(),
                missing_from: MissingFrom::Evidence,
            });
        }
    }
    relevance
}

/// The words of a question the relevance decision weighs: those some passage holds and
/// those none does, with how many of the absent ones weigh less than a naming word.
#[derive(Debug, Default)]
struct QuestionWords {
    /// Words some passage holds (for an English question that quotes no Chinese the
    /// collection holds, the Chinese it was translated into).
    present: Vec<String>,
    /// Words no passage holds, in the order they are listed as missing.
    absent: Vec<String>,
    /// How many of `absent` name an activity ([`ABSENT_ACTIVITY_SHARE`]).
    absent_activities: usize,
    /// How many of `absent` are English words of a question that also quotes Chinese the
    /// reports hold ([`ABSENT_TRANSLATION_SHARE`]).
    absent_guesses: usize,
    /// [`Relevance::absent_sectors`].
    absent_sectors: usize,
    /// [`Relevance::cross_lingual`].
    cross_lingual: bool,
}

impl QuestionWords {
    /// The words of a question in Chinese: its naming words ([`REQUEST_WORDS`] and words
    /// jieba cut across a term, `cut_across_a_term`, never absent; a word the reports
    /// write only as its abbreviation present as that), its
    /// time words relative to now where the reports write them, its activity words no
    /// passage holds, and the sector it asks about when no passage names it.
    fn of_chinese(engine: &Engine, question: &str) -> Self {
        let analyzer = engine.analyzer();
        let mut words = QuestionWords::default();
        for word in analyzer.naming_words(question) {
            if in_collection(engine, &word) {
                words.present.push(word);
                continue;
            }
            if REQUEST_WORDS.contains(&word.as_str()) || cut_across_a_term(engine, question, &word)
            {
                continue;
            }
            // Written in the reports as its abbreviation (个人电脑 → PC): present as that.
            let abbreviated = engine.abbreviations_used(std::slice::from_ref(&word));
            if abbreviated.is_empty() {
                words.absent.push(word);
            } else {
                for term in abbreviated {
                    if !words.present.contains(&term) {
                        words.present.push(term);
                    }
                }
            }
        }
        // When the question is set: evidence where the reports write it, else nothing.
        for word in analyzer.time_words(question) {
            if !words.present.contains(&word) && in_collection(engine, &word) {
                words.present.push(word);
            }
        }
        for word in analyzer.activity_words(question) {
            if !words.absent.contains(&word)
                && !REQUEST_WORDS.contains(&word.as_str())
                && !in_collection(engine, &word)
            {
                words.absent.push(word);
                words.absent_activities += 1;
            }
        }
        // A sector word the reports lack refuses on its own (see
        // [`Relevance::absent_sectors`]); listed with the naming words.
        for word in analyzer.sector_words(question) {
            if !in_collection(engine, &word) {
                words.absent_sectors += 1;
                if !words.absent.contains(&word) {
                    words.absent.insert(0, word);
                }
            }
        }
        words
    }

    /// The words of a question in another language: its common words whose every glossary
    /// translation the collection lacks (or, when nothing of it is known, all its own
    /// words), weighed against the Chinese it quotes that the collection holds, else
    /// against the Chinese it was translated into (`translated`).
    fn of_other(engine: &Engine, question: &str, translated: &[String]) -> Self {
        let analyzer = engine.analyzer();
        let mut words = QuestionWords::default();
        words.absent = engine.unused_english_words(&common_words(question));
        // Nothing of the question is known: no word the glossary translates, no name read
        // from pinyin, and none of its own words in any passage ("asdf qwer zxcv", a
        // made-up name): the reports say nothing of it, however close its vector falls.
        if translated.is_empty() {
            let own = analyzer.query_terms(question);
            if !own.is_empty() && own.iter().all(|t| engine.document_frequency(t) == 0) {
                for word in own {
                    if !words.absent.contains(&word) {
                        words.absent.push(word);
                    }
                }
            }
        }
        // The Chinese words an English question quotes ("digital human (数智人)") are the
        // person's own, not the glossary's guesses: when the collection holds some, they
        // are weighed against the absent English words as in a Chinese question, each of
        // those at [`ABSENT_TRANSLATION_SHARE`].
        words.present = analyzer
            .naming_words(question)
            .into_iter()
            .chain(analyzer.time_words(question))
            .chain(analyzer.activity_words(question))
            .filter(|w| w.chars().any(is_han) && in_collection(engine, w))
            .collect();
        if words.present.is_empty() {
            words.cross_lingual = true;
            words.present = translated.to_vec();
        } else {
            words.absent_guesses = words.absent.len();
        }
        words
    }

    /// What the absent words weigh, `unit` each (the weight of a word of document frequency
    /// 0), activities and guesses at their shares.
    fn absent_weight(&self, unit: f32) -> f32 {
        ((self.absent.len() - self.absent_activities - self.absent_guesses) as f32
            + ABSENT_ACTIVITY_SHARE * self.absent_activities as f32
            + ABSENT_TRANSLATION_SHARE * self.absent_guesses as f32)
            * unit
    }
}

/// An English question with its names left out ([`Glossary::without_names`]: what the
/// glossary gives for "Frost & Sullivan" or "Belle" as common words says nothing about
/// whether the reports name them), and its hyphenated compounds too ([`is_hyphenated`]).
fn common_words(question: &str) -> String {
    let compounds_out: Vec<&str> = question
        .split(' ')
        .map(|word| if is_hyphenated(word) { "," } else { word })
        .collect();
    Glossary::bundled().without_names(&compounds_out.join(" "))
}

/// Whether `word` is a hyphenated compound ("few-shot", "real-time", "AI-driven"): a
/// modifier whose parts the glossary knows only in their own senses (few-shot → 射击 is
/// no subject of the question), so they are left out of [`common_words`] like names.
fn is_hyphenated(word: &str) -> bool {
    let mut parts = word.trim_matches(|c: char| !c.is_alphanumeric()).split('-');
    parts.clone().count() >= 2 && parts.all(|p| p.chars().any(char::is_alphabetic))
}

/// Share of the passages that must hold a term for a question word cut across it to be
/// taken for jieba's mistake (`cut_across_a_term`): a term the reports use throughout.
/// 大模型 is in 83% of the passages; the runs a real topic word's last character starts in
/// our near-negatives ("业中" after 渔业, "业管理" after 林业) are in 0.44% at most. A tenth,
/// not fitted.
pub const THROUGHOUT_SHARE: f32 = 0.1;

/// Share of the passages holding a term's last two characters that must hold the whole
/// term (`cut_across_a_term`): the word's last character nearly always comes with what
/// follows it. 大模型 against 模型 is 0.96; 业大模 against 大模 (行业大模型, where 业 ends
/// another word) is 0.18, 用大模 0.14, 业应用 0.22. Half, between them, not fitted.
pub const TERM_COHESION: f32 = 0.5;

/// Whether jieba cut `word` of `question` across a term the reports use throughout: the
/// word's last character, with the two Chinese characters after it in the question, is a
/// run that at least [`THROUGHOUT_SHARE`] of the passages hold, nearly always where they
/// hold its last two characters ([`TERM_COHESION`]), and what is left of the word is one
/// character. 上大 (an abbreviation of 上海大学) in "企业上大模型之前要准备什么" takes the
/// 大 of 大模型, and no passage writes 上大; the question asks about 大模型, so 上大 is no
/// word of it. 渔业 in 渔业大模型 keeps its 业: 业大模 is a run of 行业大模型, not a term.
fn cut_across_a_term(engine: &Engine, question: &str, word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() != 2 {
        return false;
    }
    let folded = crate::analysis::fold_text(question).to_lowercase();
    let Some(at) = folded.find(word) else {
        return false;
    };
    let run: String = folded[at..].chars().skip(chars.len() - 1).take(3).collect();
    if run.chars().count() < 3 || !run.chars().all(is_han) {
        return false;
    }
    let tail: String = run.chars().skip(1).collect();
    let passages = engine.passages();
    // One pass: a passage holding the run holds its tail too.
    let (holding, holding_tail) = passages.iter().filter(|p| p.text.contains(&tail)).fold(
        (0, 0),
        |(run_count, tail_count), p| {
            (
                run_count + usize::from(p.text.contains(&run)),
                tail_count + 1,
            )
        },
    );
    holding >= 2
        && holding as f32 >= THROUGHOUT_SHARE * passages.len() as f32
        && holding as f32 >= TERM_COHESION * holding_tail as f32
}

/// Whether some passage of the collection contains `word`: as an indexed term, as all
/// the terms it is analysed into, or as text.
fn in_collection(engine: &Engine, word: &str) -> bool {
    if engine.document_frequency(word) > 0 {
        return true;
    }
    let parts: Vec<String> = engine
        .analyzer()
        .query_terms(word)
        .into_iter()
        .filter(|p| p != word)
        .collect();
    if !parts.is_empty() && parts.iter().all(|p| engine.document_frequency(p) > 0) {
        return true;
    }
    engine.passages().iter().any(|p| p.text.contains(word))
}

/// The refusal's text: which words the reports do not mention, when that decided, then
/// [`NOT_FOUND_ANSWER`].
pub fn refusal_text(missing: &[MissingTerm], unmentioned: bool) -> String {
    let absent: Vec<&str> = missing
        .iter()
        .filter(|m| m.missing_from == MissingFrom::Collection)
        .map(|m| m.term.as_str())
        .collect();
    if absent.is_empty() || !unmentioned {
        NOT_FOUND_ANSWER.to_string()
    } else {
        format!("{NOT_MENTIONED}{}。{NOT_FOUND_ANSWER}", absent.join("、"))
    }
}

/// How a refusal names the question's words the reports never mention.
pub const NOT_MENTIONED: &str = "报告中未提到：";

/// The reply when the reports do not answer the question.
pub const NOT_FOUND_ANSWER: &str =
    "没有在报告中找到与这个问题相关的内容。请换一种说法，或用报告中可能出现的关键词提问。";

/// How sure we are that the reports answer the question, from what retrieval saw: the
/// best dense cosine, how far it stands out from the background, and how much of the
/// question's term weight the best passage contains; see [`ZH_THRESHOLD`] and
/// [`CROSS_THRESHOLD`] for the rules and their fitting, and `gate` for the thresholds of
/// the model that embedded the question. Without dense retrieval (no
/// model) the coverage alone decides, at [`MIN_TERM_COVERAGE`].
pub fn confidence(
    dense: Option<DenseStats>,
    best_coverage: f32,
    chinese: bool,
    gate: &GateCalibration,
) -> f32 {
    let (score, threshold) = match dense {
        Some(d) if chinese => (
            d.top + ZH_COVERAGE_WEIGHT * best_coverage,
            gate.zh_threshold,
        ),
        Some(d) => (
            d.top
                + CROSS_MARGIN_WEIGHT * (d.top - d.background)
                + CROSS_COVERAGE_WEIGHT * best_coverage,
            gate.cross_threshold,
        ),
        None => {
            return if best_coverage >= MIN_TERM_COVERAGE {
                0.5 + 0.5 * best_coverage
            } else {
                0.5 * best_coverage / MIN_TERM_COVERAGE
            };
        }
    };
    1.0 / (1.0 + (-(score - threshold) / CONFIDENCE_SCALE).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_jieba_cuts_across_the_term_every_passage_holds_is_no_word_of_the_question() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::retrieve::tests::lexical_engine(
            dir.path(),
            &[
                "金融行业是大模型应用落地最快的领域之一。",
                "企业在部署大模型时面临算力不足和人才短缺等挑战。",
                "医院部署大模型后，门诊病历的书写时间减少了一半。",
                "智能客服是大模型落地的切入口，人工成本随之降低。",
                "金融行业大模型需要高质量的数据。",
                "医疗行业大模型辅助医生书写病历。",
            ],
        );
        // jieba cuts 企业上大模型 as 企业/上大/模型: 上大 takes the 大 of 大模型.
        assert!(cut_across_a_term(
            &engine,
            "企业上大模型之前要准备什么？",
            "上大"
        ));
        // A topic word whose last character starts a run few passages hold (业管理) stays.
        assert!(!cut_across_a_term(
            &engine,
            "林业管理中大模型发挥了什么作用？",
            "林业"
        ));
        // Nor when the run after it is a piece of a longer phrase (行业大模型), not a term.
        assert!(!cut_across_a_term(
            &engine,
            "渔业大模型有哪些应用案例？",
            "渔业"
        ));
        // Nor is a word cut when the run after it is the question's end.
        assert!(!cut_across_a_term(&engine, "大模型能用在渔业吗", "渔业"));
    }

    /// A word of the question that no passage contains.
    fn absent(term: &str) -> MissingTerm {
        MissingTerm {
            term: term.into(),
            missing_from: MissingFrom::Collection,
        }
    }

    #[test]
    fn a_question_whose_meaning_stands_out_is_not_refused_for_its_own_wording() {
        // "“机器学习”这个说法最早是哪一年提出的": 说法 is in no passage and outweighs the
        // evidence's words, but one passage stands out in meaning.
        let wording = Relevance {
            missing: vec![absent("说法")],
            absent_weight: 3.4,
            matched_weight: 2.3,
            ..Relevance::default()
        };
        assert!(wording.unmentioned(&GateCalibration::E5_SMALL));
        let standing_out = Relevance {
            meaning_margin: Some(PARAPHRASE_MEANING_MARGIN + 0.01),
            ..wording.clone()
        };
        assert!(!standing_out.unmentioned(&GateCalibration::E5_SMALL));
        // Below the margin, as every unanswerable question measured: still refused.
        let background = Relevance {
            meaning_margin: Some(PARAPHRASE_MEANING_MARGIN - 0.01),
            ..wording.clone()
        };
        assert!(background.unmentioned(&GateCalibration::E5_SMALL));
        // A sector the reports lack refuses whatever the margin.
        let sector = Relevance {
            absent_sectors: 1,
            ..standing_out.clone()
        };
        assert!(sector.unmentioned(&GateCalibration::E5_SMALL));
        // So does evidence sharing none of the question's words; several absent words do
        // not.
        let two = Relevance {
            missing: vec![absent("说法"), absent("天花板")],
            absent_weight: 6.8,
            ..standing_out.clone()
        };
        assert!(!two.unmentioned(&GateCalibration::E5_SMALL));
        let nothing_shared = Relevance {
            matched_weight: 0.0,
            ..standing_out
        };
        assert!(nothing_shared.unmentioned(&GateCalibration::E5_SMALL));
    }

    #[test]
    fn an_english_word_of_wording_refuses_only_against_thin_evidence() {
        // "How do courts use large models to assist judges?": court has no translation the
        // reports use, and the evidence holds only generic guesses.
        let court = Relevance {
            missing: vec![absent("court")],
            absent_weight: 6.8,
            matched_weight: 6.5,
            cross_lingual: true,
            ..Relevance::default()
        };
        assert!(court.unmentioned(&GateCalibration::E5_SMALL));
        // "…which technique … since models without it may produce … miscalculated
        // results?": one absent word against evidence holding several specific ones.
        let wording = Relevance {
            missing: vec![absent("miscalculated")],
            absent_weight: 6.8,
            matched_weight: 18.6,
            ..court.clone()
        };
        assert!(!wording.unmentioned(&GateCalibration::E5_SMALL));
        // Evidence holding no more than twice the absent weight still refuses.
        let thin = Relevance {
            matched_weight: 2.0 * 6.8 - 0.1,
            ..wording
        };
        assert!(thin.unmentioned(&GateCalibration::E5_SMALL));
    }

    #[test]
    fn each_model_is_judged_by_its_own_thresholds() {
        assert_eq!(
            GateCalibration::for_model(Some("BAAI/bge-small-zh-v1.5@2f69970f18a00ba4")),
            GateCalibration::BGE_SMALL_ZH
        );
        for other in [
            Some("intfloat/multilingual-e5-small@0db63e48749a5013"),
            Some("someone/bge-small-zh-v1.5-finetuned@1"),
            None,
        ] {
            assert_eq!(GateCalibration::for_model(other), GateCalibration::E5_SMALL);
        }
        let stats = |top, background| {
            Some(DenseStats {
                top,
                background,
                full_background: true,
            })
        };
        let (e5, bge) = (&GateCalibration::E5_SMALL, &GateCalibration::BGE_SMALL_ZH);
        // bge-small-zh's cosines are lower: a typical answerable Chinese question of its
        // (top 0.60) is answered by its thresholds and was refused by e5's, which refused
        // every question; its unanswerable ones (0.39) are still refused.
        assert!(confidence(stats(0.60, 0.47), 0.8, true, bge) > 0.9);
        assert!(confidence(stats(0.60, 0.47), 0.8, true, e5) < 0.01);
        assert!(confidence(stats(0.39, 0.30), 0.3, true, bge) < 0.1);
        assert!(confidence(stats(0.50, 0.40), 0.0, false, bge) > 0.5);
        // Its margins are wider too: one that stands out for e5 is background for bge.
        let wording = Relevance {
            absent_weight: 3.4,
            matched_weight: 2.3,
            meaning_margin: Some(0.1),
            ..Relevance::default()
        };
        assert!(!wording.unmentioned(e5));
        assert!(wording.unmentioned(bge));
        let standing_out = Relevance {
            meaning_margin: Some(BGE_PARAPHRASE_MEANING_MARGIN + 0.01),
            ..wording
        };
        assert!(!standing_out.unmentioned(bge));
    }

    #[test]
    fn the_gate_answers_above_its_threshold_and_refuses_below() {
        let stats = |top, background| {
            Some(DenseStats {
                top,
                background,
                full_background: true,
            })
        };
        // Chinese: the dense top score plus a little coverage decides.
        assert!(confidence(stats(0.93, 0.88), 0.8, true, &GateCalibration::E5_SMALL) > 0.9);
        assert!(confidence(stats(0.85, 0.83), 0.2, true, &GateCalibration::E5_SMALL) < 0.1);
        let at = confidence(
            stats(ZH_THRESHOLD, 0.85),
            0.0,
            true,
            &GateCalibration::E5_SMALL,
        );
        assert!((at - 0.5).abs() < 1e-3, "{at}");
        // English: the same top score counts more when it stands out from the background.
        let flat = confidence(stats(0.78, 0.77), 0.0, false, &GateCalibration::E5_SMALL);
        let standing_out = confidence(stats(0.78, 0.74), 0.0, false, &GateCalibration::E5_SMALL);
        assert!(flat < 0.5 && standing_out > 0.5, "{flat} {standing_out}");
        // Without the model: coverage alone, at MIN_TERM_COVERAGE.
        assert!(confidence(None, MIN_TERM_COVERAGE, true, &GateCalibration::E5_SMALL) >= 0.5);
        assert!(
            confidence(
                None,
                MIN_TERM_COVERAGE - 0.01,
                true,
                &GateCalibration::E5_SMALL
            ) < 0.5
        );
    }

    #[test]
    fn capitalized_names_are_left_out_unless_the_glossary_knows_them_as_places() {
        let words = common_words("How are Chinese companies promoting large models in Africa?");
        assert!(words.contains("Africa"), "{words}");
        let words = common_words("How many stores did Belle Fashion open in November?");
        assert_eq!(words, "How many stores did , , open in ,");
        // Compounds are modifiers; a figure with a hyphen is no compound.
        let words = common_words("How does the few-shot digital human use GPT-3 in 2023-2024?");
        assert_eq!(words, "How does the , digital human use , in 2023-2024?");
    }
}
