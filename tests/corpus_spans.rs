//! Every passage of the real corpus maps back to exactly where it came from.

use std::path::Path;

use wenda::corpus::{Corpus, PASSAGE_MAX_CHARS};

fn corpus() -> Corpus {
    Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")).expect("corpus loads")
}

fn visible(c: char) -> bool {
    !(c.is_whitespace() || c == '\u{3000}' || c == '\u{FFFD}')
}

#[test]
fn every_passage_span_holds_its_text_in_order() {
    let corpus = corpus();
    assert!(
        corpus.passages().len() > 300,
        "only {} passages",
        corpus.passages().len()
    );
    for report in &corpus.catalog.reports {
        let raw = corpus.original_text(&report.file).unwrap();
        let chars: Vec<char> = raw.chars().collect();
        // 1-based line number of each code point.
        let mut line_of = Vec::with_capacity(chars.len());
        let mut line = 1;
        for c in &chars {
            line_of.push(line);
            if *c == '\n' {
                line += 1;
            }
        }
        for p in corpus
            .passages()
            .iter()
            .filter(|p| p.citation.source == report.file)
        {
            let c = &p.citation;
            assert!(
                c.char_start < c.char_end && c.char_end <= chars.len(),
                "{}: bad span",
                p.id
            );
            let span = &chars[c.char_start..c.char_end];
            let text: Vec<char> = p
                .text
                .chars()
                .filter(|c| visible(*c) && *c != '#')
                .collect();
            assert_eq!(
                Some(&span[0]),
                p.text.chars().next().as_ref(),
                "{}: first char",
                p.id
            );
            assert_eq!(
                span.last(),
                p.text.chars().last().as_ref(),
                "{}: last char",
                p.id
            );
            // The passage text is the span's visible characters, line by line:
            // each line of the span is either kept whole or left out whole
            // (page furniture), never cut or reordered.
            let mut cursor = 0;
            for line in span.split(|c| *c == '\n') {
                let kept: Vec<char> = line
                    .iter()
                    .copied()
                    .filter(|c| visible(*c) && *c != '#')
                    .collect();
                let tail: Vec<char> = text[cursor..]
                    .iter()
                    .copied()
                    .filter(|c| *c != '#')
                    .collect();
                if !kept.is_empty() && tail.starts_with(&kept) {
                    cursor += kept.len();
                }
            }
            assert_eq!(
                cursor,
                text.len(),
                "{}: text is not the span's lines in order",
                p.id
            );
            assert_eq!(c.line_start, line_of[c.char_start], "{}: line_start", p.id);
            assert_eq!(c.line_end, line_of[c.char_end - 1], "{}: line_end", p.id);
            assert!(
                p.text.chars().count() <= PASSAGE_MAX_CHARS,
                "{}: too long",
                p.id
            );
            assert!(!p.text.contains('\u{FFFD}'), "{}: U+FFFD kept", p.id);
            assert_eq!(c.title, report.title);
        }
    }
}

#[test]
fn passages_cover_the_reports_and_ids_are_unique() {
    let corpus = corpus();
    let mut ids = std::collections::HashSet::new();
    for p in corpus.passages() {
        assert!(ids.insert(p.id.clone()), "duplicate id {}", p.id);
    }
    for report in &corpus.catalog.reports {
        let raw = corpus.original_text(&report.file).unwrap();
        let total: usize = raw.chars().filter(|c| visible(*c)).count();
        let mut covered = vec![false; raw.chars().count()];
        for p in corpus
            .passages()
            .iter()
            .filter(|p| p.citation.source == report.file)
        {
            for flag in &mut covered[p.citation.char_start..p.citation.char_end] {
                *flag = true;
            }
        }
        let kept = raw
            .chars()
            .zip(&covered)
            .filter(|(c, f)| **f && visible(*c))
            .count();
        assert!(
            kept * 100 >= total * 95,
            "{}: passages cover only {kept} of {total} visible chars",
            report.file
        );
    }
}

#[test]
fn lengths_sit_in_the_intended_range() {
    let corpus = corpus();
    let lens: Vec<usize> = corpus
        .passages()
        .iter()
        .map(|p| p.text.chars().count())
        .collect();
    let mut sorted = lens.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    assert!(
        (150..=400).contains(&median),
        "median passage length {median}"
    );
}
