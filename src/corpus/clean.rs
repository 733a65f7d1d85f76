//! Text for people: the reports were converted from PDF and keep some markdown and HTML
//! residue (`**营销…`, `####`, `<li>…</li>`). What is shown (answers, snippets, section
//! names) is cleaned by [`clean_for_reading`]; passages and citations keep the exact
//! text of the file, so the cleaning is a view, never a rewrite.

/// Text for people: markdown emphasis and heading marks, HTML tags (also cut ones at the
/// edges) and backslash escapes left by the PDF-to-text conversion removed, spaces
/// collapsed. Only what is shown changes; citations keep their exact spans.
pub fn clean_for_reading(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // A tag cut at the start of the text ("i>…", "/li>…"): only names of real tags, so
    // that "x>5" keeps its start.
    if let Some(end) = rest.find('>')
        && TAG_NAMES.contains(&rest[..end].trim_start_matches('/'))
    {
        rest = &rest[end + 1..];
    }
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match after.find('>') {
            Some(close)
                if after[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
                    && after[1..close].chars().all(|c| {
                        c.is_ascii_alphanumeric()
                            || matches!(
                                c,
                                '/' | ' '
                                    | '='
                                    | '"'
                                    | '\''
                                    | '-'
                                    | ':'
                                    | ';'
                                    | '.'
                                    | '#'
                                    | '%'
                                    | '_'
                            )
                    }) =>
            {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('<');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    let out = out
        .replace("**", "")
        .replace("\\_", "_")
        .replace("\\*", "*");
    let out = out.trim_start_matches(['#', ' ']);
    let mut collapsed = String::with_capacity(out.len());
    for word in out.split_whitespace() {
        let word = word.trim_start_matches('#');
        if word.is_empty() {
            continue;
        }
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

/// HTML tag names seen cut in half at the start of a passage of our reports.
const TAG_NAMES: &[&str] = &[
    "b", "i", "p", "li", "ul", "ol", "br", "em", "div", "span", "strong", "td", "tr", "th", "table",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_are_not_taken_for_tags() {
        assert_eq!(clean_for_reading("x<10 and y>5"), "x<10 and y>5");
        assert_eq!(clean_for_reading("x>5 时"), "x>5 时");
        assert_eq!(clean_for_reading("/li>列表<b>重点</b>"), "列表 重点");
    }

    #[test]
    fn tags_with_style_attributes_are_removed() {
        assert_eq!(
            clean_for_reading("微调服务 <ul style=\"list-style-type: none\"> 适用于党政"),
            "微调服务 适用于党政"
        );
    }
}
