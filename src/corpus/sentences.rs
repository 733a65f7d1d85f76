//! The sentences of a passage a person can read on their own: what answers are made of
//! and what the index embeds one by one, so both see the same sentences.

use super::chunk::{is_closer, is_sentence_end};
use super::{clean_for_reading, is_han, split_sentences};

/// Sentences shorter than this (in characters) are fragments (headings,
/// table cells) and are not used on their own. 8 until rules v7 dropped complete short
/// answers ("体长约4公分。", 7): at 6, CMRC answers holding a gold answer went 0.895 →
/// 0.902 on the first 400 questions, DRCD and dev unchanged.
pub const MIN_SENTENCE_CHARS: usize = 6;

/// The sentences of a passage worth showing on their own: split by the corpus' rule
/// ([`split_sentences`]), cleaned of conversion residue
/// ([`clean_for_reading`]), fragments shorter than [`MIN_SENTENCE_CHARS`], headings
/// ([`is_heading`]), page furniture ([`is_furniture`]) and lines that are not prose
/// ([`is_prose`]) dropped.
pub fn readable_sentences(text: &str) -> Vec<String> {
    let labels = bold_labels(text);
    bracketed_sentences(text)
        .into_iter()
        .flat_map(|piece| list_items(piece, offset_in(text, piece), &labels))
        .map(clean_for_reading)
        .map(|s| without_leading_headings(s.trim_start_matches(BULLETS).trim()).to_string())
        .filter(|s| {
            s.chars().count() >= MIN_SENTENCE_CHARS
                && is_prose(s)
                && (!is_heading(s) || is_field(s))
                && !is_furniture(s)
                && !is_table_of_contents(s)
        })
        .collect()
}

/// [`split_sentences`], with a piece that ends inside an open bracket or quote joined to
/// those after it until it closes: a semicolon or full stop inside 「…」, （…） or -{…}-
/// ends no sentence ("伊维卡·奥利奇（，；），克罗地亚足球运动员…", "曾起草告示称「金钱鼠尾，乃新朝之
/// 雅政；峨冠博带，实亡国之陋规」。"), and cut there the answer lies in a piece that reads as
/// a fragment. Joining stops once a run reaches [`MAX_BRACKETED_CHARS`], where a bracket
/// broken by the text's extraction would otherwise swallow the passage.
fn bracketed_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut end, mut depth) = (0, 0, 0i32);
    for piece in split_sentences(text) {
        end += piece.len();
        // The depth at the sentence mark, before the closers that stay with it: a quote
        // that closes right after a full stop ends its sentence (“…。”), one that closes
        // after a semicolon (（，；）) does not.
        let body = piece.trim_end_matches(is_closer);
        let at_mark = depth + bracket_balance(body);
        depth = (depth + bracket_balance(piece)).max(0);
        let semicolon = body.ends_with(['；', ';']);
        let inside = at_mark > 0 && (depth > 0 || semicolon);
        if inside && text[start..end].chars().count() < MAX_BRACKETED_CHARS {
            continue;
        }
        out.push(&text[start..end]);
        start = end;
        depth = 0;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Opening brackets and quotes in `piece` less the closing ones.
fn bracket_balance(piece: &str) -> i32 {
    piece
        .chars()
        .map(|c| match c {
            '（' | '(' | '「' | '『' | '《' | '【' | '[' | '{' | '“' => 1,
            '）' | ')' | '」' | '』' | '》' | '】' | ']' | '}' | '”' => -1,
            _ => 0,
        })
        .sum()
}

/// Length in characters at which `bracketed_sentences` stops joining pieces while a
/// bracket stays open (the run may pass it by its last piece): the [`crate::answer::MAX_SENTENCE_CHARS`] a sentence is shown in,
/// past which it is cut anyway. Over all 3,219 CMRC questions, 320 / 160 gave answers
/// holding a gold answer 0.8931 / 0.8941 (first sentence 0.7673 / 0.7686): longer joins
/// cost answers their budget.
pub const MAX_BRACKETED_CHARS: usize = 160;

/// A piece cut before each list item that opens inside it: a bullet glyph
/// ([`ITEM_MARKS`]) or a markdown item with a bold label ("- **2020年**:"). PDF extraction
/// runs a list's items together without a sentence mark between them ("…奠定了基础- **2020
/// 年**: OpenAI推出了GPT-3模型…"), and each item says one thing: read as one sentence,
/// the item that answers is buried in the others and cut with them.
///
/// A bold field label of `labels` (byte offsets in the passage, `bold_labels`; `start`
/// is the piece's offset there) cuts only after another label of the same piece: a run
/// of fields is cut into its fields, while a bold term inside a sentence ("截至2023年底，
/// 平台**累计用户**：超过1亿人") leaves the sentence whole.
fn list_items<'a>(piece: &'a str, start: usize, labels: &[usize]) -> Vec<&'a str> {
    let end = start + piece.len();
    let first = labels.partition_point(|&l| l < start);
    let in_piece = labels[first..].iter().take_while(|&&l| l < end);
    let fields = in_piece.skip(1).map(|&l| l - start);
    let mut cuts: Vec<usize> = piece
        .match_indices(ITEM_MARKS)
        .map(|(i, _)| i)
        .chain(piece.match_indices("- **").map(|(i, _)| i))
        .chain(fields)
        .filter(|&i| !piece[..i].trim().is_empty())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut items = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        items.push(&piece[start..cut]);
        start = cut;
    }
    items.push(&piece[start..]);
    items
}

/// Byte offsets where bold field labels open in a passage's text ("…集中管理与分析**客户问题2**：
/// 线上流量越来越昂贵…"): a markdown bold run of at most [`MAX_BOLD_LABEL_CHARS`]
/// characters, not blank at either end, followed by a colon. PDF extraction prints a
/// case's fields (需求, 措施, 客户问题1…) each on its own line without a sentence mark, so
/// they run together; each field says one thing. Markers pair up over the whole passage
/// in one pass, so a bold run holding a sentence mark ("**大模型加速落地。**") does not
/// turn the markers after it around.
fn bold_labels(text: &str) -> Vec<usize> {
    let marks: Vec<usize> = text.match_indices("**").map(|(i, _)| i).collect();
    marks
        .chunks_exact(2)
        .filter(|pair| {
            let label = &text[pair[0] + 2..pair[1]];
            text[pair[1] + 2..].starts_with(['：', ':'])
                && (1..=MAX_BOLD_LABEL_CHARS).contains(&label.chars().count())
                && label.trim() == label
                && !label.contains(['：', ':'])
        })
        .map(|pair| pair[0])
        .collect()
}

/// Byte offset of `piece`, a slice of `text`, within it.
fn offset_in(text: &str, piece: &str) -> usize {
    piece.as_ptr() as usize - text.as_ptr() as usize
}

/// Longest bold run read as a field label (`bold_labels`): the labels of our reports
/// run 2–5 characters ("需求", "客户问题1"); a bold run longer than 12 is an emphasised
/// phrase, not a label.
const MAX_BOLD_LABEL_CHARS: usize = 12;

/// Whether a piece is a labelled value ("大模型推出时间：2021年4月", "颁布主体：成都市经信局等6部门"):
/// a label of at least two characters, a colon, then a value of at least two. Short and
/// without a sentence mark like a heading, but it states a fact, as the items of a
/// list often do.
fn is_field(piece: &str) -> bool {
    piece.split_once(['：', ':']).is_some_and(|(label, value)| {
        label.trim().chars().count() >= 2 && value.trim().chars().count() >= 2
    })
}

/// Glyphs that only ever open a list item (not '-', '*' or '·', which also join words
/// and names: GPT-3, 约翰·麦卡锡).
const ITEM_MARKS: &[char] = &['•', '◆', '●', '▪', '➢', '★', '■', '◼', '▌'];

/// Whether a piece is a heading or caption rather than a sentence: short and without a
/// sentence mark at its end ("中国AI大模型代表厂商及最新大模型"). Headings name a topic, so
/// they sit close in meaning to any question about it while answering nothing.
pub fn is_heading(piece: &str) -> bool {
    let ends_a_sentence = piece
        .trim_end_matches(|c: char| is_closer(c) || c.is_whitespace())
        .ends_with(|c: char| is_sentence_end(c) || c == '…');
    !ends_a_sentence && piece.chars().count() < MAX_HEADING_CHARS
}

/// Pieces without a closing sentence mark shorter than this are headings ([`is_heading`]):
/// report headings and table captions run 8–20 characters, while a sentence cut at a
/// passage's end is usually longer.
pub const MAX_HEADING_CHARS: usize = 24;

/// Whether a sentence is a publisher's advertisement or contact line (QR codes,
/// official accounts, "free download"), which Chinese industry reports print on their
/// covers and last pages; it answers no question.
pub fn is_furniture(sentence: &str) -> bool {
    FURNITURE_MARKERS.iter().any(|m| sentence.contains(m))
}

/// Whether a sentence shown in an answer opens with something that is not an answer: a
/// publisher or advertising line ([`is_furniture`]), a heading ([`is_heading`]), the
/// title of the section it stands in (`section`, as the chunker recorded it), or a
/// heading that line wrapping joined to the sentence after it ([`leading_heading`]).
pub fn opens_with_furniture(sentence: &str, section: &str) -> bool {
    let sentence = sentence.trim();
    let section = section.trim();
    is_furniture(sentence)
        || is_table_of_contents(sentence)
        || is_heading(sentence)
        || (section.chars().count() >= 2
            && sentence
                .strip_prefix(section)
                .is_some_and(|rest| rest.starts_with(BULLETS)))
        || leading_heading(sentence).is_some()
}

/// Marks that open a list item or separate the labels of a diagram.
const BULLETS: &[char] = &[
    '•', '◆', '●', '-', '*', '·', '▪', '➢', '★', '■', '◼', '▌', ' ',
];

/// Marks that do not occur in a heading: a piece holding one is a clause of a sentence.
const CLAUSE_MARKS: &[char] = &[
    '，', '。', '；', '：', ',', ';', ':', '！', '？', '、', '（', '(',
];

/// The length in bytes of a heading that opens `sentence` and was joined to it when the
/// passage's lines were joined ("金融行业痛点及解决方案 金融行业普遍存在…", "智能助手 -大语言
/// 模型…", "发展阶段•富士通推出…"): a piece shorter than [`MAX_HEADING_CHARS`] with Han
/// characters and no clause mark, then a space or bullet, then at least
/// [`MIN_SENTENCE_CHARS`] more. Chinese prose has no spaces between its words, so a
/// space after a short Chinese piece is where a heading line ended. `None` when the
/// sentence opens on prose.
pub fn leading_heading(sentence: &str) -> Option<usize> {
    if let Some(at) = running_header(sentence) {
        return Some(at);
    }
    let (at, separator) = sentence.char_indices().find(|&(i, c)| {
        BULLETS.contains(&c)
            && c != '-'
            && c != '*'
            && (c != '·' || spaced(sentence, i))
            && (c != ' ' || !inside_latin_phrase(sentence, i))
    })?;
    let head = &sentence[..at];
    let chars = head.chars().count();
    let rest = sentence[at + separator.len_utf8()..].trim_start_matches(BULLETS);
    let heading_like = (2..MAX_HEADING_CHARS).contains(&chars)
        && head.chars().any(is_han)
        && !head.contains(CLAUSE_MARKS)
        && rest.chars().count() >= MIN_SENTENCE_CHARS;
    heading_like.then(|| sentence.len() - rest.len())
}

/// Whether the space at byte `at` of `text` stands between two Latin letters or digits
/// ("文心大模型4.0 Turbo", ".45 Auto"): a space inside a name or figure, where no heading
/// line ended.
fn inside_latin_phrase(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at..].chars().nth(1);
    before.is_some_and(|c| c.is_ascii_alphanumeric())
        && after.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Whether the character at byte `at` of `text` has a space on either side: a "·" joins
/// the parts of a transliterated name (约翰·麦卡锡) with none, and separates a heading
/// from its text with one.
fn spaced(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at..].chars().nth(1);
    before.is_some_and(char::is_whitespace) || after.is_some_and(char::is_whitespace)
}

/// The length in bytes of a publisher's running header that opens `sentence`: its name in
/// letter-spaced capitals, words joined by "·" ("THE · FIRST · NEW · VOICE"), which the
/// PDF extraction glues to the first line of the page's text. At least
/// [`MIN_RUNNING_HEADER_WORDS`] capitalised Latin words with a "·" between each two;
/// `None` otherwise.
fn running_header(sentence: &str) -> Option<usize> {
    let mut words = 0;
    let mut end = 0;
    let mut rest = sentence;
    loop {
        let word_len = rest
            .find(|c: char| !c.is_ascii_uppercase())
            .unwrap_or(rest.len());
        if word_len == 0 {
            break;
        }
        words += 1;
        end = sentence.len() - rest.len() + word_len;
        let after = rest[word_len..].trim_start_matches(' ');
        match after.strip_prefix('·') {
            Some(next) => rest = next.trim_start_matches(' '),
            None => break,
        }
    }
    (words >= MIN_RUNNING_HEADER_WORDS).then(|| {
        let tail = &sentence[end..];
        end + (tail.len() - tail.trim_start_matches(' ').len())
    })
}

/// Capitalised words a running header has at least (`running_header`): two, so that
/// one acronym before a "·" ("AI · 大模型") is not taken for one.
const MIN_RUNNING_HEADER_WORDS: usize = 2;

/// `sentence` without the headings that open it ([`leading_heading`]; a section title
/// and a subsection title can both be there) and the bullets after them.
pub fn without_leading_headings(sentence: &str) -> &str {
    let mut rest = sentence;
    for _ in 0..MAX_LEADING_HEADINGS {
        match leading_heading(rest) {
            Some(at) => rest = rest[at..].trim_start_matches(BULLETS),
            None => break,
        }
    }
    rest
}

/// Headings stripped from the opening of one sentence at most: a chapter, a section and
/// a diagram label were the most seen stacked in the reports.
pub const MAX_LEADING_HEADINGS: usize = 3;

/// Whether a table of contents line: "目录", or a run of leader dots before a page number.
pub fn is_table_of_contents(sentence: &str) -> bool {
    sentence.contains("目录")
        || sentence.contains("……………")
        || sentence.contains("......")
        || sentence.contains("·····")
}

/// Words that mark a publisher's advertisement or contact line ([`is_furniture`]).
pub const FURNITURE_MARKERS: &[&str] = &[
    "扫码",
    "扫描",
    "二维码",
    "公众号",
    "微信号",
    "订阅号",
    "视频号",
    "小程序码",
    "长按识别",
    "免费下载",
    "欢迎关注",
    "关注我们",
    "版权所有",
    "免责声明",
    "联系我们",
    "www.",
    "http",
];

/// Whether a cleaned sentence reads as prose rather than a table row, a run of headings
/// or page furniture: at least [`MIN_PROSE_HAN_SHARE`] of its words are Han characters,
/// and it is not a string of short space-separated pieces. A Latin word or a number
/// counts as one word, as a reader takes it in ("OpenAI推出了GPT-3模型，参数规模达到了1750
/// 亿" is prose; counted by characters, its names and figures made it 39% Han).
pub fn is_prose(sentence: &str) -> bool {
    let chars = sentence.chars().count().max(1);
    let mut han = 0usize;
    let mut words = 0usize;
    let mut in_latin_word = false;
    for c in sentence.chars() {
        let latin =
            c.is_ascii_alphanumeric() || (in_latin_word && matches!(c, '-' | '.' | '_' | '%'));
        if latin {
            if !in_latin_word {
                words += 1;
            }
        } else if !c.is_whitespace() {
            words += 1;
            han += usize::from(is_han(c));
        }
        in_latin_word = latin;
    }
    let pieces = sentence.split_whitespace().count();
    han as f32 >= MIN_PROSE_HAN_SHARE * words.max(1) as f32
        && (pieces <= 1 || pieces * MIN_CHARS_PER_PIECE <= chars)
}

/// Share of Han characters among a sentence's words ([`is_prose`]) below which it is a
/// table row, a code or contact line, or an English heading, not a sentence to answer
/// with: report prose is 70–90% Han; the table rows and watermark lines in the dev
/// answers were under 40% (counted by characters, when this value was set).
pub const MIN_PROSE_HAN_SHARE: f32 = 0.4;

/// Prose has long runs between spaces; tables of contents and heading runs ("架构优化
/// 模型压缩 RAG ➢ AI基础设施层") are many short pieces. A sentence whose pieces average
/// fewer characters than this is not prose; a sentence of one piece is judged by
/// [`MIN_SENTENCE_CHARS`] alone.
pub const MIN_CHARS_PER_PIECE: usize = 8;

/// Version of the rules above, part of the index settings: sentence vectors are stored
/// in this order, so changing a rule must rebuild the index. v4: running headers in spaced
/// capitals (`running_header`) are stripped like headings. v5: list items run together
/// are sentences of their own (`list_items`); a "·" inside a name (约翰·麦卡锡) ends no
/// heading; names and figures count as one word each in [`is_prose`]. v6: a space
/// inside a Latin name or figure ends no heading. v7: sentences of 6 and 7 characters
/// count ([`MIN_SENTENCE_CHARS`]). v8: a sentence mark inside brackets or quotes ends no
/// sentence (`bracketed_sentences`). v9: a bold field label ("**客户问题2**：") opens a
/// sentence (`bold_labels`). v10: only after another label of its piece, its markers
/// paired over the whole passage.
pub const SENTENCE_RULES_VERSION: &str = "readable-sentences-v10";

#[cfg(test)]
mod tests {

    #[test]
    fn a_running_header_in_spaced_capitals_is_not_an_answer_opening() {
        let s = "THE · FIRST · NEW · VOICE研究范畴及目的 2018年，OpenAI发布第一个生成式预训练模型GPT-1。";
        assert!(opens_with_furniture(s, ""));
        assert_eq!(
            without_leading_headings(s),
            "2018年，OpenAI发布第一个生成式预训练模型GPT-1。"
        );
        // One acronym and a bullet is prose, not a header.
        assert_eq!(running_header("AI · 大模型在金融行业的应用"), None);
        assert_eq!(running_header("GPT-3模型的参数规模达到了1750亿"), None);
        // A space inside a Latin name is no heading's end.
        assert_eq!(
            leading_heading(
                "兼具高效性与低成本优势百度文心大模型4.0 Turbo训练速度相比上代产品提升数倍"
            ),
            None
        );
        assert!(
            leading_heading("金融行业痛点及解决方案 金融行业普遍存在营销获客难等痛点").is_some()
        );
    }
    use super::*;

    #[test]
    fn a_short_complete_sentence_is_readable_and_a_fragment_is_not() {
        // "体长约4公分。" answers "唐鱼的体长约为多少？" in CMRC: seven characters, one piece.
        let s = readable_sentences("本种为小型鱼类。体长约4公分。一、概述");
        assert_eq!(s, ["本种为小型鱼类。", "体长约4公分。"]);
        // Many short space-separated pieces are still no prose.
        assert!(!is_prose("架构优化 模型压缩 RAG 推理"));
    }

    #[test]
    fn list_items_run_together_are_sentences_of_their_own() {
        let s = readable_sentences(
            "- **2018年**: OpenAI和Google分别发布了GPT-1与BERT，标志着预训练大模型成为主流- **2020年**: \
             OpenAI推出了GPT-3模型，参数规模达到了1750亿，在零样本学习任务上实现了提升",
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[1].contains("GPT-3模型，参数规模达到了1750亿"), "{s:?}");
        assert!(!s[0].contains("2020年"), "{s:?}");
        // A labelled value is a sentence, though short and without a mark.
        let s =
            readable_sentences("华为盘古大模型 •大模型推出时间：2021年4月• AI开发平台：ModelArts");
        assert_eq!(
            s,
            vec!["大模型推出时间：2021年4月", "AI开发平台：ModelArts"]
        );
        // A case's bold fields run together are one sentence each.
        let s = readable_sentences(
            "**客户问题1**：线上多个渠道咨询接待，效率不高**客户问题2**：线上流量越来越昂贵，如何提升售前留资率，成为首要需求**解决方法**：",
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[1].contains("线上流量越来越昂贵"), "{s:?}");
        assert!(!s[0].contains("客户问题2"), "{s:?}");
        // A bold sentence before them does not turn the markers around.
        let s = readable_sentences(
            "**核心观点：大模型加速落地。** **客户问题1**：线上多个渠道咨询接待，效率不高**客户问题2**：线上流量越来越昂贵，如何提升售前留资率",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[2].starts_with("客户问题2"), "{s:?}");
        // A bold term inside a sentence leaves the sentence whole.
        let s =
            readable_sentences("截至2023年底，平台**累计用户**：超过1亿人，覆盖全国三十多个省份。");
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(s[0].starts_with("截至2023年底"), "{s:?}");
        // Hyphens and middle dots inside words do not cut.
        let s = readable_sentences("美国学者约翰·麦卡锡提出GPT-3与2023-2024年的路线。");
        assert_eq!(s, vec!["美国学者约翰·麦卡锡提出GPT-3与2023-2024年的路线。"]);
        let s = readable_sentences(
            "政务大模型的用例包括两类：•智能问答，全天候回答公众的办事咨询。•公文写作，辅助工作人员起草材料。",
        );
        assert_eq!(
            s,
            // The lead-in is short and ends on no sentence mark: a heading.
            vec![
                "智能问答，全天候回答公众的办事咨询。",
                "公文写作，辅助工作人员起草材料。"
            ]
        );
    }

    #[test]
    fn sentences_split_at_chinese_marks_and_drop_fragments_and_bullets() {
        let s = readable_sentences(
            "• 金融行业是大模型落地最快的领域之一。短句。医疗大模型辅助医生书写病历！",
        );
        assert_eq!(
            s,
            vec![
                "金融行业是大模型落地最快的领域之一。",
                "医疗大模型辅助医生书写病历！"
            ]
        );
    }

    #[test]
    fn conversion_residue_is_cleaned_and_non_prose_dropped() {
        assert_eq!(
            clean_for_reading("i>智能创作</li> <li>**营销获客难**：成本高 ## 标题"),
            "智能创作 营销获客难：成本高 标题"
        );
        assert_eq!(
            clean_for_reading("微信号Sherry\\_199909"),
            "微信号Sherry_199909"
        );
        assert_eq!(clean_for_reading("a < b 且 c>d"), "a < b 且 c>d");
        assert!(is_prose(
            "金融行业普遍存在营销获客难、风险管理效率低等痛点。"
        ));
        assert!(!is_prose(
            "架构优化 模型压缩 RAG AI基础设施层 数据层 算法层"
        ));
        assert!(!is_prose("THE · FIRST · NEW · VOICE研究范畴及目的"));
        // Names and figures are words, not letters.
        assert!(is_prose(
            "2020年: OpenAI推出了GPT-3模型，参数规模达到了1750亿，在"
        ));
        assert!(!is_prose("Copyright 2024 LeadLeo Research Institute 头豹"));
        // Cleaned fragments of tables disappear from the sentence list.
        let s = readable_sentences(
            "Agent Studio Agents Workflow Proxy LLM Gateway。银行利用大模型加强风险控制能力。",
        );
        assert_eq!(s, vec!["银行利用大模型加强风险控制能力。"]);
    }

    #[test]
    fn headings_and_publisher_lines_are_not_sentences() {
        assert!(is_heading("中国AI大模型代表厂商及最新大模型"));
        assert!(is_heading("美洽全渠道AI客服解决方案"));
        assert!(!is_heading("金融行业是大模型落地最快的领域之一。"));
        assert!(!is_heading("他说“大模型正在改变金融。”"));
        // A long piece without a mark is a sentence cut at a passage's end, not a heading.
        assert!(!is_heading(
            "银行利用大模型加强风险控制能力并在信贷审批和反欺诈中取得了显著的效果"
        ));
        assert!(is_furniture("微信扫码加入星球，10000+行业报告免费下载"));
        assert!(!is_furniture("银行利用大模型加强风险控制能力。"));
        let s = readable_sentences(
            "中国AI大模型代表厂商及最新大模型\n欢迎扫码关注我们的公众号获取更多报告。百丽时尚拥有超过9000家直营门店。",
        );
        assert_eq!(s, vec!["百丽时尚拥有超过9000家直营门店。"]);
    }

    #[test]
    fn headings_joined_to_a_sentence_are_taken_off_its_opening() {
        let s = readable_sentences(
            "金融行业痛点及解决方案 金融行业普遍存在以下痛点：营销获客难。\
             智能助手 -大语言模型提升了智能助手的理解能力。发展阶段•富士通推出第一台语音识别PC。",
        );
        assert_eq!(
            s,
            vec![
                "金融行业普遍存在以下痛点：营销获客难。",
                "大语言模型提升了智能助手的理解能力。",
                "富士通推出第一台语音识别PC。"
            ]
        );
        // Prose and Latin names keep their spaces.
        assert_eq!(leading_heading("银行利用大模型，加强风险 控制能力。"), None);
        assert_eq!(leading_heading("DeepSeek V3 参数规模达到6710亿。"), None);
        assert!(opens_with_furniture(
            "需求方议价能力更强 当前需求方企业议价能力更强。",
            ""
        ));
        assert!(opens_with_furniture(
            "智能营销 2019年以来市场规模持续扩大。",
            "智能营销"
        ));
        assert!(!opens_with_furniture(
            "智能营销的主要目的是提高营销效率。",
            "智能营销"
        ));
        assert!(opens_with_furniture("欢迎关注我们获取更多行业报告。", ""));
        assert!(is_table_of_contents("第一章 行业概述……………………3"));
    }

    #[test]
    fn a_sentence_mark_inside_brackets_or_quotes_ends_no_sentence() {
        let sentences = readable_sentences(
            "伊维卡·奥利奇（，；），克罗地亚足球运动员，司职前锋。曾起草告示称「金钱鼠尾，乃新朝之雅政；峨冠博带，实亡国之陋规」。",
        );
        assert_eq!(
            sentences,
            vec![
                "伊维卡·奥利奇（，；），克罗地亚足球运动员，司职前锋。",
                "曾起草告示称「金钱鼠尾，乃新朝之雅政；峨冠博带，实亡国之陋规」。",
            ]
        );
        // A full stop before a closing quote ends its sentence.
        assert_eq!(
            readable_sentences("他说：“今天的会议很好。”明天开始下雨了。").len(),
            2
        );
        // Outside brackets a semicolon still ends one.
        assert_eq!(
            readable_sentences("其疆域北连大城府；南界暖武里府及曼谷。").len(),
            2
        );
        // A bracket that never closes joins no more than MAX_BRACKETED_CHARS.
        let broken = format!("（{}", "这是一个没有结束括号的很长的句子；".repeat(40));
        let longest = readable_sentences(&broken)
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap();
        assert!(longest <= MAX_BRACKETED_CHARS + 20, "{longest}");
    }
}
