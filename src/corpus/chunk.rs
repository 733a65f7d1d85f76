//! Splitting one report into retrieval passages that remember their exact place.
//!
//! Written by hand because it is the core of our product: the reports are text
//! extracted from PDFs, with line wraps in the middle of sentences (sometimes
//! with blank lines between the halves), running page headers, page numbers and
//! U+FFFD where digits were lost. We keep the original code point offsets of
//! every character we keep, so each passage maps back to `[char_start, char_end)`
//! of the original file.

use std::collections::HashMap;

/// Passages are closed once they reach this many characters (of cleaned text).
/// 300 is the middle of the 150–400 range the retrieval literature and our
/// dev set favour for BM25 over Chinese reports (a Python baseline used 300).
pub const PASSAGE_TARGET_CHARS: usize = 300;

/// A passage is closed before it would grow past this many characters of sentence text
/// (the spaces joining Latin sentences are not counted, so a passage may exceed it by a
/// few characters); a sentence that alone reaches it is cut there, at a fixed length, not
/// at punctuation. Upper end of the 150–400 range (issue #2).
pub const PASSAGE_MAX_CHARS: usize = 400;

/// A passage shorter than this is not closed at a section heading; it runs on
/// into the next section instead, so tiny sections do not become tiny passages.
pub(super) const SECTION_MERGE_BELOW_CHARS: usize = 80;

/// The last sentence of a passage is repeated at the start of the next one
/// (the "modest overlap") when it is at most this long, so a fact stated
/// across a passage boundary is still found whole in one passage.
pub const OVERLAP_MAX_CHARS: usize = 120;

/// A short line that occurs at least this often in one file is page furniture
/// (running header or footer); seen 4–14 times in our reports.
pub(super) const FURNITURE_MIN_REPEATS: usize = 3;

/// Lines longer than this are never treated as repeated page furniture.
pub(super) const FURNITURE_MAX_CHARS: usize = 30;

/// A blank-surrounded line is a heading only when it is at most this long:
/// wrapped body lines in our reports are 30–35 characters wide.
pub(super) const HEADING_MAX_CHARS: usize = 24;

/// Lines with an explicit heading mark (`#`, `第…章`, `一、`, `1.2`) may be this long.
pub(super) const MARKED_HEADING_MAX_CHARS: usize = 40;

/// A span of one passage inside its file, before the catalog adds a title.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Cleaned text: line wraps joined, U+FFFD and page furniture left out.
    pub text: String,
    /// Nearest heading before (or at) the start of the passage; empty if none.
    pub section: String,
    /// 1-based line of the first character.
    pub line_start: usize,
    /// 1-based line of the last character.
    pub line_end: usize,
    /// 0-based code point offset of the first character.
    pub char_start: usize,
    /// 0-based code point offset one past the last character.
    pub char_end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LineKind {
    Blank,
    Furniture,
    /// Repeated running header that names the chapter: sets the section, adds no text.
    RunningHeading,
    Heading,
    Body,
}

struct Line {
    start: usize,
    end: usize,
    kind: LineKind,
}

/// One sentence (or fixed-length piece of an over-long sentence) with its place.
#[derive(Debug, Clone)]
struct Sentence {
    text: String,
    len: usize,
    char_start: usize,
    char_end: usize,
    line_start: usize,
    line_end: usize,
    section: String,
    /// True when a heading came right before this sentence.
    opens_section: bool,
    /// True when this sentence is a heading line itself.
    is_heading: bool,
}

/// True for CJK unified ideographs (Han characters), including the extensions.
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

fn is_wide(c: char) -> bool {
    is_han(c) || matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF | 0x2018..=0x201F | 0x2026)
}

/// True for the marks that end a sentence (Chinese and ASCII): the one rule both the
/// chunker and the answer's sentence selection use.
pub(super) fn is_sentence_end(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '!' | '?' | ';')
}

/// Splits text after each sentence end (closing quotes and brackets stay with their
/// sentence); the pieces concatenate back to `text`.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_sentence_end(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, next)) = chars.peek() {
                if !is_closer(next) {
                    break;
                }
                end = j + next.len_utf8();
                chars.next();
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

pub(super) fn is_closer(c: char) -> bool {
    matches!(
        c,
        '”' | '’' | '」' | '』' | '）' | ')' | '】' | '》' | '"' | '\''
    )
}

/// Characters left out of what is analysed: the replacement character (lost
/// digits) and control characters other than whitespace.
fn is_dropped(c: char) -> bool {
    c == '\u{FFFD}' || (c.is_control() && !c.is_whitespace()) || c == '\u{200B}' || c == '\u{FEFF}'
}

fn trimmed(chars: &[char]) -> String {
    chars
        .iter()
        .collect::<String>()
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}')
        .to_string()
}

/// Heading text without markdown marks, U+FFFD and the broken numbering it leaves.
fn heading_text(raw: &str) -> String {
    let t = raw.trim_start_matches('#').trim();
    let t: String = t.chars().filter(|c| !is_dropped(*c)).collect();
    let t = t.trim_start_matches(['.', '、', ' ']);
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_page_number(t: &str) -> bool {
    let core: String = t
        .chars()
        .filter(|c| !matches!(c, '-' | '—' | '–' | ' ' | '第' | '页' | '/' | '|'))
        .collect();
    !core.is_empty()
        && core.chars().count() <= 4
        && core.chars().all(|c| c.is_ascii_digit() || c == '\u{FFFD}')
}

fn has_heading_mark(t: &str) -> bool {
    if t.starts_with('#') {
        return true;
    }
    let mut it = t.chars();
    let first = it.next().unwrap_or(' ');
    if t.starts_with('第') && (t.contains('章') || t.contains('节') || t.contains("部分")) {
        return true;
    }
    if t.starts_with("章节") {
        return true;
    }
    // 一、  二、 …
    if "一二三四五六七八九十".contains(first) {
        let rest: String = t
            .chars()
            .skip_while(|c| "一二三四五六七八九十".contains(*c))
            .collect();
        if rest.starts_with('、') {
            return true;
        }
    }
    // （一） (1)
    if (t.starts_with('（') || t.starts_with('('))
        && t.chars().nth(2).is_some_and(|c| c == '）' || c == ')')
    {
        return true;
    }
    // 1. / 1.2 / 2.2.1 followed by text
    if first.is_ascii_digit() {
        let num: String = t
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let rest = &t[num.len()..];
        let rest_first = rest.trim_start().chars().next();
        return num.len() <= 6 && rest_first.is_some_and(|c| is_han(c) || c.is_ascii_uppercase());
    }
    false
}

fn looks_like_heading(t: &str, blank_around: bool) -> bool {
    let n = t.chars().count();
    // Numbering such as `一、` may use a list comma; the rest of a heading may not.
    let body =
        t.trim_start_matches(|c: char| c == '#' || c == ' ' || "一二三四五六七八九十".contains(c));
    let body = body.strip_prefix('、').unwrap_or(body);
    if n == 0
        || body
            .chars()
            .any(|c| matches!(c, '。' | '！' | '？' | '；' | '，' | ',' | '、'))
    {
        return false;
    }
    if t.ends_with(['：', ':']) || t.starts_with(['•', '◆', '-', '*', '·', '▪', '●', '○', '►', '√'])
    {
        return false;
    }
    let letters = t
        .chars()
        .filter(|c| is_han(*c) || c.is_alphabetic())
        .count();
    if letters < 2 {
        return false;
    }
    if has_heading_mark(t) {
        return n <= MARKED_HEADING_MAX_CHARS;
    }
    blank_around && n <= HEADING_MAX_CHARS
}

/// Whether a line is a figure standing alone, as report infographics print their key
/// results under a short label ("售前获线留资率提升" / "**58%**", "问答系统准确率" / "88%+"):
/// a number with a percent sign or a unit (a plus may follow), and nothing else. The
/// label above it is then the figure's subject, not a heading: read as one,
/// "售前获线留资率提升58%" states the result, while as a heading the label would open a new
/// passage and leave the figure cut off from the case it reports. A bare number ("08",
/// "2024.02.01") is a section number or a date, and a count with only a plus ("10000+")
/// is how advertising blocks boast ("行业报告免费下载" / "100000+"), not a figure.
fn is_figure(line: &str) -> bool {
    let t: String = line
        .chars()
        .filter(|c| !matches!(c, '*' | ' ' | '\t'))
        .collect();
    let n = t.chars().count();
    let number_chars = |c: char| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '~' | '～');
    let body = t.trim_end_matches(|c: char| !number_chars(c));
    let unit = &t[body.len()..];
    t.starts_with(|c: char| c.is_ascii_digit())
        && n <= MAX_FIGURE_CHARS
        && body.chars().all(number_chars)
        && unit
            .chars()
            .any(|c| matches!(c, '%' | '％') || STANDALONE_FIGURE_UNITS.contains(c))
        && unit
            .chars()
            .all(|c| matches!(c, '%' | '％' | '+' | '＋') || STANDALONE_FIGURE_UNITS.contains(c))
}

/// Longest line, in characters once `*` and spaces are dropped, read as a standalone
/// figure ([`is_figure`]): the callouts of our reports run 3–6 ("400%", "1-3小时"); 12
/// leaves room for amounts such as "1,000,000家" while a line of prose is longer.
const MAX_FIGURE_CHARS: usize = 12;

/// Characters a standalone figure's unit is made of (counts, money, time, multiples).
/// Unlike the figures an answer prefers (`FIGURE_UNITS` in `answer/compose.rs`), no 年, 月 or 日:
/// a line holding only a date is a date, not a result.
const STANDALONE_FIGURE_UNITS: &str = "倍万亿千百元个家人次项天时小分钟秒款台";

fn classify_lines(chars: &[char]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, c) in chars.iter().enumerate() {
        if *c == '\n' {
            lines.push(Line {
                start,
                end: i,
                kind: LineKind::Body,
            });
            start = i + 1;
        }
    }
    if start < chars.len() {
        lines.push(Line {
            start,
            end: chars.len(),
            kind: LineKind::Body,
        });
    }
    let texts: Vec<String> = lines
        .iter()
        .map(|l| trimmed(&chars[l.start..l.end]))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &texts {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let blank: Vec<bool> = texts
        .iter()
        .map(|t| t.chars().all(|c| c.is_whitespace() || is_dropped(c)))
        .collect();
    for (i, line) in lines.iter_mut().enumerate() {
        let t = texts[i].as_str();
        let n = t.chars().count();
        line.kind = if blank[i] {
            LineKind::Blank
        } else if is_page_number(t) {
            LineKind::Furniture
        } else if counts[t] >= FURNITURE_MIN_REPEATS
            && n <= FURNITURE_MAX_CHARS
            && !t.chars().any(is_sentence_end)
            && !t.ends_with(['：', ':'])
        {
            if looks_like_heading(t, true) {
                LineKind::RunningHeading
            } else {
                LineKind::Furniture
            }
        } else {
            let blank_before = i == 0 || blank[i - 1];
            let blank_after = i + 1 >= blank.len() || blank[i + 1];
            let blank_around = blank_before && blank_after;
            // Only an unmarked line is taken for a figure's label: "## 应用成效" stays a
            // heading whatever follows it.
            let labels_a_figure = || {
                blank_around
                    && !has_heading_mark(t)
                    && (i + 1..texts.len())
                        .find(|&j| !blank[j])
                        .is_some_and(|j| is_figure(&texts[j]))
            };
            // A figure is never a heading ("1-3小时" has two letters). The figure checks
            // run only for a line that looks like one.
            if looks_like_heading(t, blank_around) && !is_figure(t) && !labels_a_figure() {
                LineKind::Heading
            } else {
                LineKind::Body
            }
        };
    }
    lines
}

/// Builds sentences from body lines: wraps are joined, terminators split.
struct SentenceBuilder {
    sentences: Vec<Sentence>,
    text: String,
    len: usize,
    char_start: usize,
    char_end: usize,
    line_start: usize,
    line_end: usize,
    pending_break: bool,
    section: String,
    opens_section: bool,
    heading: bool,
    last_char: Option<char>,
}

impl SentenceBuilder {
    fn new() -> Self {
        SentenceBuilder {
            sentences: Vec::new(),
            text: String::new(),
            len: 0,
            char_start: 0,
            char_end: 0,
            line_start: 0,
            line_end: 0,
            pending_break: false,
            section: String::new(),
            opens_section: false,
            heading: false,
            last_char: None,
        }
    }

    fn push(&mut self, c: char, pos: usize, line_no: usize) {
        if c.is_whitespace() || c == '\u{3000}' {
            if self.len > 0 && self.last_char != Some(' ') {
                self.pending_break = true;
            }
            return;
        }
        if self.len == 0 {
            self.char_start = pos;
            self.line_start = line_no;
        } else if self.pending_break {
            // Join a wrap inside Chinese text without a space; keep one space
            // between Latin words and numbers.
            let prev = self.last_char.unwrap_or(' ');
            if !(is_wide(prev) || is_wide(c)) {
                self.text.push(' ');
                self.len += 1;
            }
        }
        self.pending_break = false;
        self.text.push(c);
        self.len += 1;
        self.last_char = Some(c);
        self.char_end = pos + 1;
        self.line_end = line_no;
    }

    fn space(&mut self) {
        if self.len > 0 {
            self.pending_break = true;
        }
    }

    fn close(&mut self) {
        if self.len > 0 {
            self.sentences.push(Sentence {
                text: std::mem::take(&mut self.text),
                len: self.len,
                char_start: self.char_start,
                char_end: self.char_end,
                line_start: self.line_start,
                line_end: self.line_end,
                section: self.section.clone(),
                opens_section: self.opens_section,
                is_heading: self.heading,
            });
            self.opens_section = false;
        }
        self.len = 0;
        self.heading = false;
        self.pending_break = false;
        self.last_char = None;
    }
}

fn sentences(chars: &[char], lines: &[Line]) -> Vec<Sentence> {
    let mut b = SentenceBuilder::new();
    for (idx, line) in lines.iter().enumerate() {
        let line_no = idx + 1;
        match line.kind {
            LineKind::Blank | LineKind::Furniture => continue,
            LineKind::Heading | LineKind::RunningHeading => {
                let title = heading_text(&chars[line.start..line.end].iter().collect::<String>());
                if line.kind == LineKind::RunningHeading && title == b.section {
                    continue;
                }
                b.close();
                b.section = title;
                b.opens_section = true;
                if line.kind == LineKind::RunningHeading {
                    continue;
                }
                // A real heading is also text of its section: it often names
                // the very thing a question asks about.
                let first = (line.start..line.end)
                    .find(|&p| {
                        !(chars[p] == '#' || chars[p].is_whitespace() || is_dropped(chars[p]))
                    })
                    .unwrap_or(line.end);
                for (pos, &c) in chars.iter().enumerate().take(line.end).skip(first) {
                    if !is_dropped(c) {
                        b.push(c, pos, line_no);
                    }
                }
                b.heading = true;
                b.close();
                // The heading sentence carries the flag; the next sentence does not.
                continue;
            }
            LineKind::Body => {}
        }
        let mut pos = line.start;
        while pos < line.end {
            let c = chars[pos];
            if is_dropped(c) {
                pos += 1;
                continue;
            }
            b.push(c, pos, line_no);
            pos += 1;
            if is_sentence_end(c) {
                while pos < line.end && is_closer(chars[pos]) {
                    b.push(chars[pos], pos, line_no);
                    pos += 1;
                }
                b.close();
            } else if b.len >= PASSAGE_MAX_CHARS {
                b.close();
            }
        }
        b.space();
    }
    b.close();
    b.sentences
}

/// Packs sentences into passages of about [`PASSAGE_TARGET_CHARS`].
fn pack(sentences: &[Sentence]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current: Vec<&Sentence> = Vec::new();
    let mut current_len = 0usize;
    let emit = |current: &[&Sentence], chunks: &mut Vec<Chunk>| {
        let (Some(first), Some(last)) = (current.first(), current.last()) else {
            return;
        };
        let mut text = String::new();
        for (i, s) in current.iter().enumerate() {
            if i > 0 {
                let prev = text.chars().last().unwrap_or(' ');
                let next = s.text.chars().next().unwrap_or(' ');
                if !(is_wide(prev) || is_wide(next)) || current[i - 1].is_heading {
                    text.push(' ');
                }
            }
            text.push_str(&s.text);
        }
        chunks.push(Chunk {
            text,
            section: first.section.clone(),
            line_start: first.line_start,
            line_end: last.line_end,
            char_start: first.char_start,
            char_end: last.char_end,
        });
    };
    for s in sentences {
        // A sentence carried over as overlap does not belong to a new section.
        if s.opens_section
            && current.len() == 1
            && chunks
                .last()
                .is_some_and(|c: &Chunk| current[0].char_start < c.char_end)
        {
            current.clear();
            current_len = 0;
        }
        let at_heading = s.opens_section && current_len >= SECTION_MERGE_BELOW_CHARS;
        let too_long = current_len > 0 && current_len + s.len > PASSAGE_MAX_CHARS;
        if at_heading || too_long {
            emit(&current, &mut chunks);
            let carry = if !at_heading {
                current
                    .last()
                    .filter(|l| l.len <= OVERLAP_MAX_CHARS && current.len() > 1)
                    .copied()
            } else {
                None
            };
            current.clear();
            current_len = 0;
            if let Some(l) = carry.filter(|l| l.len + s.len <= PASSAGE_MAX_CHARS) {
                current.push(l);
                current_len = l.len;
            }
        }
        current.push(s);
        current_len += s.len;
        if current_len >= PASSAGE_TARGET_CHARS {
            emit(&current, &mut chunks);
            let carry = current
                .last()
                .filter(|l| l.len <= OVERLAP_MAX_CHARS && current.len() > 1)
                .copied();
            current.clear();
            current_len = 0;
            if let Some(l) = carry {
                current.push(l);
                current_len = l.len;
            }
        }
    }
    // A trailing carry-over alone repeats text already emitted.
    if current.len() > 1
        || chunks.is_empty()
        || current
            .first()
            .is_some_and(|s| chunks.last().is_none_or(|c| s.char_start >= c.char_end))
    {
        emit(&current, &mut chunks);
    }
    chunks
}

/// Splits the full text of one report into passages with exact spans.
pub fn chunk_text(raw: &str) -> Vec<Chunk> {
    let chars: Vec<char> = raw.chars().collect();
    let lines = classify_lines(&chars);
    let sentences = sentences(&chars, &lines);
    pack(&sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(raw: &str, c: &Chunk) -> String {
        raw.chars()
            .skip(c.char_start)
            .take(c.char_end - c.char_start)
            .collect()
    }

    #[test]
    fn joins_wraps_inside_chinese_and_keeps_spaces_between_latin_words() {
        let raw = "大模型是指通过在海量数据上依托强大算力资源进行训练后能完\n\n成大量不同下游任务的模型。\nGPT-4 and\nMaaS 模式很常见。\n";
        let chunks = chunk_text(raw);
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].text,
            "大模型是指通过在海量数据上依托强大算力资源进行训练后能完成大量不同下游任务的模型。GPT-4 and MaaS模式很常见。"
        );
        assert_eq!(chunks[0].line_start, 1);
        assert_eq!(chunks[0].line_end, 5);
        assert_eq!(chunks[0].char_start, 0);
        assert_eq!(span(raw, &chunks[0]).chars().last(), Some('。'));
    }

    #[test]
    fn drops_replacement_chars_page_numbers_and_running_headers() {
        let mut raw = String::new();
        for i in 0..4 {
            raw.push_str("北京市人工智能报告\n");
            raw.push_str(&format!(
                "第{i}段：����年，大模型在政务场景落地，效果良好。\n"
            ));
            raw.push_str("- 12 -\n");
        }
        let chunks = chunk_text(&raw);
        let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(!all.contains('\u{FFFD}'));
        assert!(!all.contains("北京市人工智能报告"), "{all}");
        assert!(!all.contains("12 -"), "{all}");
        assert!(all.contains("年，大模型在政务场景落地"));
        assert_eq!(chunks[0].section, "北京市人工智能报告");
    }

    #[test]
    fn a_label_over_a_standalone_figure_is_read_with_it_not_as_a_heading() {
        // The case is long enough (over SECTION_MERGE_BELOW_CHARS) that a heading after
        // it would open a passage of its own.
        let case = "美世教育先后采用全渠道AI客服解决方案以及最新发布的大模型获客机器人，解决了多渠道客户咨询接待统一处理、集中分配管理与数据分析问题，同时接入获客机器人，夜间独立接待，安全释放人工坐席。";
        for (label, figure) in [
            ("售前获线留资率提升", "**58%**"),
            ("平均响应时间缩短至", "1-3小时"),
        ] {
            let raw = format!(
                "## 解决方法\n\n{case}\n\n{label}\n\n{figure}\n\n## 政务领域\n\n大模型在政务服务中落地，效果良好。\n"
            );
            let chunks = chunk_text(&raw);
            let with_case = chunks.iter().find(|c| c.text.contains("美世教育")).unwrap();
            let stated = format!("安全释放人工坐席。{label}{}", figure.replace('*', ""));
            assert!(
                with_case.text.replace('*', "").contains(&stated),
                "{chunks:?}"
            );
            assert_eq!(with_case.section, "解决方法");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.section == "解决方法" || c.section == "政务领域"),
                "{chunks:?}"
            );
        }
        // A marked heading stays one, figure or not.
        let raw = format!("## 解决方法\n\n{case}\n\n## 应用成效\n\n**58%**\n\n的客户表示满意。\n");
        let chunks = chunk_text(&raw);
        assert!(chunks.iter().any(|c| c.section == "应用成效"), "{chunks:?}");
        assert!(chunks.iter().all(|c| !c.text.contains('#')), "{chunks:?}");
        // A short line over a date or a section number is still a heading.
        let raw = "政策梳理\n\n2024.02.01\n\n大模型在政务服务中落地，效果良好。\n";
        assert_eq!(chunk_text(raw)[0].section, "政策梳理");
        for figure in ["**58%**", "90%+", "1-3小时", "3倍", "1,000家"] {
            assert!(is_figure(figure), "{figure}");
        }
        for other in [
            "08",
            "2024.02.01",
            "2024年",
            "58%的企业已落地",
            "政务",
            "10000+",
        ] {
            assert!(!is_figure(other), "{other}");
        }
    }

    #[test]
    fn headings_start_sections_and_sizes_stay_in_range() {
        let sentence = "人工智能大模型在金融行业的应用正在加速落地，银行和保险机构纷纷开展试点。";
        let mut raw = String::from("# 一、金融行业\n\n");
        for _ in 0..20 {
            raw.push_str(sentence);
            raw.push('\n');
        }
        raw.push_str("\n## 二、医疗行业\n\n");
        for _ in 0..3 {
            raw.push_str("医疗大模型辅助医生完成病历书写与影像分析工作。\n");
        }
        let chunks = chunk_text(&raw);
        assert!(chunks.len() >= 3);
        for c in &chunks {
            assert!(c.text.chars().count() <= PASSAGE_MAX_CHARS, "{}", c.text);
        }
        assert_eq!(chunks[0].section, "一、金融行业");
        let last = chunks.last().unwrap();
        assert_eq!(last.section, "二、医疗行业");
        assert!(last.text.starts_with("二、医疗行业"), "{chunks:#?}");
        // Overlap: consecutive passages of the first section share a sentence.
        assert!(chunks[1].char_start < chunks[0].char_end);
    }

    #[test]
    fn an_endless_sentence_is_cut_at_the_maximum() {
        let raw: String = "数据".repeat(700);
        let chunks = chunk_text(&raw);
        assert!(chunks.len() >= 3);
        assert!(
            chunks
                .iter()
                .all(|c| c.text.chars().count() <= PASSAGE_MAX_CHARS)
        );
        assert_eq!(chunks.last().unwrap().char_end, 1400);
    }

    #[test]
    fn sentences_split_after_end_marks_and_keep_closing_quotes() {
        let text = "他说“好。”然后走了！Then he left; ok? 尾巴";
        let pieces = split_sentences(text);
        assert_eq!(
            pieces,
            vec!["他说“好。”", "然后走了！", "Then he left;", " ok?", " 尾巴"]
        );
        assert_eq!(pieces.concat(), text);
        assert!(split_sentences("").is_empty());
    }

    #[test]
    fn empty_text_gives_no_passages() {
        assert!(chunk_text("").is_empty());
        assert!(chunk_text("\n\n  \n").is_empty());
    }
}
