//! Human-readable output of search results and the catalog on a terminal.

use wenda::corpus::Report;
use wenda::retrieve::SearchResponse;

/// Whether stdout gets colour: a terminal, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn stdout_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints the catalog (`wenda list`): one report a line with its passage count.
pub fn catalog(counts: &[(&Report, usize)], version: &str) {
    let width = counts.iter().map(|(r, _)| r.file.len()).max().unwrap_or(0);
    for (r, n) in counts {
        let publisher = if r.publisher.is_empty() {
            String::new()
        } else {
            format!(" — {}", r.publisher)
        };
        println!(
            "{:<width$}  {}  {:>4} passages  {}{publisher}",
            r.file, r.year, n, r.title
        );
    }
    println!(
        "{} reports, {} passages; collection version {version}",
        counts.len(),
        counts.iter().map(|(_, n)| n).sum::<usize>()
    );
}

/// Turns a `<b>`-marked HTML snippet into terminal text: bold red matches on
/// a colour terminal, 【…】 otherwise.
pub fn snippet_for_terminal(html: &str, color: bool) -> String {
    let (open, close) = if color {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("【", "】")
    };
    html.replace("<b>", open)
        .replace("</b>", close)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Prints ranked passages, one block each.
pub fn hits(response: &SearchResponse, color: bool) {
    if response.results.is_empty() {
        println!(
            "no passage matches {:?} (mode {})",
            response.query, response.mode
        );
        return;
    }
    for hit in &response.results {
        let c = &hit.citation;
        let section = if c.section.is_empty() {
            String::new()
        } else {
            format!(" § {}", c.section)
        };
        println!(
            "{:>2}. [{:.3}] {} — {}:{}-{}{}",
            hit.rank, hit.score, c.title, c.source, c.line_start, c.line_end, section
        );
        println!("    {}", snippet_for_terminal(&hit.snippet, color));
    }
    println!(
        "({} results, mode {}, {:.1} ms)",
        response.results.len(),
        response.mode,
        response.took_ms
    );
}
