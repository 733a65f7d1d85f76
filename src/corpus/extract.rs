//! Report files in: a PDF, `.txt` or `.md` file becomes the text stored in the corpus.
//!
//! The format is decided by the content, never by the name alone: a PDF starts with
//! `%PDF-`, a text file is valid UTF-8 without binary control characters; a name's
//! extension, when there is one, must agree with the content ([`detect`]).
//!
//! ## Which PDF extractor
//!
//! PDFs are read by poppler's `pdftotext` (Debian `poppler-utils`), in its default
//! reading-order mode, chosen by measurement (`bash benches/pdf_extractors.sh`, output in
//! `benches/pdf-extractors/results.txt`): seven Chinese PDFs made four ways
//! (`tests/fixtures/pdf/make_pdf.py`: fpdf2's CID TrueType Identity-H subsets in one and
//! two columns, 3 and 50 pages; reportlab's simple TrueType subsets; reportlab's
//! non-embedded STSong-Light CID font; Chromium's print to PDF with Type 3 fonts), scored
//! on the report's sentences found in the text (whitespace, running headers and page
//! numbers aside) and on characters that are not in the report at all:
//!
//! | extractor           | sentences found, worst PDF | mojibake, worst PDF | 50 pages |
//! |---------------------|----------------------------|---------------------|----------|
//! | pdftotext (default) | 100 % on all seven         | 0 ‰                 | 0.14 s   |
//! | pdftotext -raw      | 100 % on all seven         | 0 ‰                 | 0.10 s   |
//! | pdftotext -layout   | 0 % (two columns side by side on one line) | 0 ‰ | 0.14 s   |
//! | pdf-extract 0.12.1  | 0 % (Chromium: Kangxi radicals for ideographs, ⼀ for 一); panics on the non-embedded CID font | 100 ‰ | 0.73 s |
//! | lopdf 0.47          | 0 % (Chromium: Type 3 glyph codes)                 | 811 ‰ | 0.08 s |
//! | pdf_oxide 0.3.78    | 60 % (reportlab's simple subsets)                  | 0 ‰   | 0.05 s |
//!
//! Only pdftotext recovered every sentence of every PDF without a foreign character; its
//! default mode and `-raw` tie, and the default (reading order) is poppler's own choice
//! for text flow. On the fixture the extracted text passes through our chunker with
//! every sentence whole in one passage. An external program costs a dependency, so its
//! absence is a clear error ([`ErrorCode::ExtractorUnavailable`]) and `.txt`/`.md`
//! files work without it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};

/// The kinds of file a report can be added from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A PDF, read with `pdftotext`.
    Pdf,
    /// Plain text or Markdown in UTF-8, stored as it is.
    Text,
}

/// The bytes every PDF starts with (ISO 32000-1, 7.5.2).
const PDF_MAGIC: &[u8] = b"%PDF-";

/// How far into a file the PDF header may lie: readers such as Acrobat accept up to
/// 1,024 bytes of junk before it (ISO 32000-1, Annex H.3, note 13).
const PDF_MAGIC_WITHIN: usize = 1024;

/// Fewest letters, digits or Chinese characters a report's text must have: a 3-page
/// fixture has about 900, a PDF made of scanned page images has none.
pub const MIN_TEXT_CHARS: usize = 100;

/// Largest share of unusable characters (U+FFFD, private-use glyphs, control characters)
/// among a text's non-space characters: PDFs whose fonts lack a Unicode map come out
/// with most characters unusable, while the five reports have none and the extractor
/// comparison found 0 ‰ for pdftotext on every PDF; 2 % leaves room for a few lost
/// symbols.
pub const MAX_UNUSABLE_SHARE: f64 = 0.02;

/// How long `pdftotext` may run on one file: a 50-page report takes 0.15 s, so a
/// minute is far beyond any real report and stops a pathological file.
pub const PDFTOTEXT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to turn PDFs into text.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The `pdftotext` program (a name looked up on `PATH`, or a path).
    pub pdftotext: PathBuf,
    /// See [`PDFTOTEXT_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            pdftotext: PathBuf::from("pdftotext"),
            timeout: PDFTOTEXT_TIMEOUT,
        }
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::invalid(code, message)
}

/// Checks a file name given with an upload (only its extension is used; the stored
/// name never comes from it): refused with [`ErrorCode::BadFileName`] when it has
/// folders, control characters, is `.`/`..` or longer than 255 bytes.
pub fn check_file_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(refuse(
            ErrorCode::BadFileName,
            format!(
                "the file name {:?} is not a plain file name (no folders, no control characters, at most 255 bytes)",
                name.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// The format a file name's extension promises: `.pdf`, `.txt` or `.md` (any case).
fn declared_format(name: &str) -> Result<Format> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => Ok(Format::Pdf),
        "txt" | "md" => Ok(Format::Text),
        _ => Err(refuse(
            ErrorCode::UnsupportedFormat,
            format!(
                "{name:?} is not a .pdf, .txt or .md file; those are the formats a report can be added from"
            ),
        )),
    }
}

/// The format of `bytes`, from their content; `name` (the file's name, if known) must
/// have a matching extension.
pub fn detect(bytes: &[u8], name: Option<&str>) -> Result<Format> {
    let declared = match name {
        Some(n) => {
            check_file_name(n)?;
            Some(declared_format(n)?)
        }
        None => None,
    };
    let head = &bytes[..bytes.len().min(PDF_MAGIC_WITHIN)];
    let found = if head.windows(PDF_MAGIC.len()).any(|w| w == PDF_MAGIC) {
        Format::Pdf
    } else if std::str::from_utf8(bytes).is_ok() && !has_binary_controls(bytes) {
        Format::Text
    } else {
        return Err(refuse(
            ErrorCode::UnsupportedFormat,
            "the file is neither a PDF nor UTF-8 text; add reports as .pdf, .txt or .md files",
        ));
    };
    match declared {
        Some(d) if d != found => Err(refuse(
            ErrorCode::UnsupportedFormat,
            format!(
                "the file is named {:?} but its content is {}",
                name.unwrap_or_default(),
                match found {
                    Format::Pdf => "a PDF",
                    Format::Text => "text, not a PDF",
                }
            ),
        )),
        _ => Ok(found),
    }
}

/// NUL and the C0 controls other than tab, line feed, form feed and carriage return
/// (which text files have) mark a binary file even when its bytes happen to be UTF-8.
fn has_binary_controls(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

/// The text of a report file: a PDF through `pdftotext`, text as it is; then
/// [`normalize`]d and checked ([`check_text`]).
pub fn extract_text(bytes: &[u8], format: Format, options: &ExtractOptions) -> Result<String> {
    let raw = match format {
        Format::Text => String::from_utf8(bytes.to_vec())
            .map_err(|_| refuse(ErrorCode::UnsupportedFormat, "the text is not valid UTF-8"))?,
        Format::Pdf => pdftotext(bytes, options)?,
    };
    let text = normalize(&raw);
    check_text(&text)?;
    Ok(text)
}

/// Line ends made `\n`, a byte-order mark dropped, pages (form feeds) made line breaks,
/// trailing spaces of lines dropped, and one final newline: the stored file then looks
/// like the five reports, and line numbers in citations count the same.
pub fn normalize(raw: &str) -> String {
    let text = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let text = text.replace("\r\n", "\n").replace(['\r', '\u{c}'], "\n");
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.trim_end().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Refuses a text that has too little to search ([`MIN_TEXT_CHARS`]) or too many
/// unusable characters ([`MAX_UNUSABLE_SHARE`]), with [`ErrorCode::NoText`].
pub fn check_text(text: &str) -> Result<()> {
    let mut words = 0usize;
    let mut visible = 0usize;
    let mut unusable = 0usize;
    for c in text.chars() {
        if c.is_whitespace() {
            continue;
        }
        visible += 1;
        if c.is_alphanumeric() {
            words += 1;
        }
        if c == '\u{fffd}' || c.is_control() || matches!(c as u32, 0xE000..=0xF8FF) {
            unusable += 1;
        }
    }
    if words < MIN_TEXT_CHARS {
        return Err(refuse(
            ErrorCode::NoText,
            format!(
                "the file has {words} letters or characters of text, fewer than {MIN_TEXT_CHARS}: a scanned PDF needs OCR first"
            ),
        ));
    }
    if unusable as f64 > MAX_UNUSABLE_SHARE * visible as f64 {
        return Err(refuse(
            ErrorCode::NoText,
            format!(
                "{unusable} of {visible} characters of the extracted text are unusable (the PDF's fonts map no Unicode): it would be garbled in answers"
            ),
        ));
    }
    Ok(())
}

/// The error for a `pdftotext` that cannot be started because it is not there.
fn missing_pdftotext(program: &std::path::Path) -> Error {
    Error::Unavailable {
        code: ErrorCode::ExtractorUnavailable,
        message: format!(
            "PDFs are read with poppler's pdftotext, and {} was not found: install it (Debian/Ubuntu: apt-get install poppler-utils; macOS: brew install poppler) or name it with --pdftotext; .txt and .md files need nothing",
            program.display()
        ),
    }
}

/// Checks that `pdftotext` can be started (`pdftotext -v`), so that a PDF is refused at
/// once, before any upload is queued or model loaded, when it cannot be read here.
pub fn check_pdftotext(options: &ExtractOptions) -> Result<()> {
    let program = &options.pdftotext;
    match Command::new(program)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing_pdftotext(program)),
        Err(e) => Err(Error::io(program, e)),
    }
}

/// Runs `pdftotext -enc UTF-8 FILE -` on the PDF (written to a temporary file).
fn pdftotext(bytes: &[u8], options: &ExtractOptions) -> Result<String> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let input = dir.path().join("report.pdf");
    std::fs::write(&input, bytes).map_err(|e| Error::io(&input, e))?;
    let program = &options.pdftotext;
    let mut child = Command::new(program)
        .args(["-q", "-enc", "UTF-8"])
        .arg(&input)
        .arg("-")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing_pdftotext(program)
            } else {
                Error::io(program, e)
            }
        })?;
    // Read both pipes on their own threads so a full pipe never blocks the program.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| Error::io(program, e))? {
            Some(status) => break status,
            None if started.elapsed() > options.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(refuse(
                    ErrorCode::NoText,
                    format!(
                        "pdftotext did not finish within {} s: the PDF is too large or malformed",
                        options.timeout.as_secs()
                    ),
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = out
        .join()
        .unwrap_or_else(|_| Ok(Vec::new()))
        .map_err(|e| Error::io(program, e))?;
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let why = String::from_utf8_lossy(&stderr);
        return Err(refuse(
            ErrorCode::NoText,
            format!(
                "the PDF could not be read (damaged or encrypted?): pdftotext says {}",
                why.trim().lines().next().unwrap_or("nothing")
            ),
        ));
    }
    String::from_utf8(stdout).map_err(|_| {
        refuse(
            ErrorCode::NoText,
            "pdftotext returned text that is not UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<impl std::fmt::Debug>) -> ErrorCode {
        match r {
            Err(Error::InvalidRequest { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_format_comes_from_the_content_and_the_name_must_agree() {
        let pdf = b"%PDF-1.7\n...binary\x00\x01";
        let text = "报告正文".as_bytes();
        assert_eq!(detect(pdf, Some("a.PDF")).unwrap(), Format::Pdf);
        assert_eq!(detect(pdf, None).unwrap(), Format::Pdf);
        assert_eq!(detect(text, Some("a.md")).unwrap(), Format::Text);
        assert_eq!(detect(text, None).unwrap(), Format::Text);
        // Disguised files.
        assert_eq!(
            code(detect(text, Some("a.pdf"))),
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            code(detect(pdf, Some("a.txt"))),
            ErrorCode::UnsupportedFormat
        );
        let zip = b"PK\x03\x04\x14\x00\x00\x00";
        assert_eq!(
            code(detect(zip, Some("a.txt"))),
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            code(detect(b"\xff\xfe\x00a", None)),
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            code(detect(b"MZ\x00\x00ascii", None)),
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            code(detect(text, Some("a.docx"))),
            ErrorCode::UnsupportedFormat
        );
        assert_eq!(
            code(detect(text, Some("README"))),
            ErrorCode::UnsupportedFormat
        );
    }

    #[test]
    fn hostile_file_names_are_refused() {
        for name in [
            "../../etc/passwd.txt",
            "..\\boot.ini.txt",
            "/abs.pdf",
            "a\0.txt",
            "a\n.txt",
            "..",
            "",
        ] {
            assert_eq!(
                code(detect(b"text", Some(name))),
                ErrorCode::BadFileName,
                "{name:?}"
            );
        }
        assert_eq!(
            code(check_file_name(&"a".repeat(300))),
            ErrorCode::BadFileName
        );
        assert!(check_file_name("2025 年报告 (final).pdf").is_ok());
    }

    #[test]
    fn text_is_normalized_and_must_have_enough_clean_characters() {
        assert_eq!(
            normalize("\u{feff}甲  \r\n乙\r丙\u{c}丁\n\n\n"),
            "甲\n乙\n丙\n丁\n"
        );
        let long = "大模型".repeat(40);
        assert!(check_text(&long).is_ok());
        assert_eq!(code(check_text("太短了")), ErrorCode::NoText);
        assert_eq!(code(check_text("\n\n   \n")), ErrorCode::NoText);
        let garbled = format!("{long}{}", "\u{e001}".repeat(10));
        assert_eq!(code(check_text(&garbled)), ErrorCode::NoText);
    }

    #[test]
    fn a_missing_pdftotext_is_a_clear_error_and_text_needs_none() {
        let options = ExtractOptions {
            pdftotext: PathBuf::from("/nonexistent/pdftotext"),
            ..ExtractOptions::default()
        };
        assert!(check_pdftotext(&options).is_err());
        let err = extract_text(b"%PDF-1.4\n", Format::Pdf, &options).unwrap_err();
        match &err {
            Error::Unavailable { code, message } => {
                assert_eq!(*code, ErrorCode::ExtractorUnavailable);
                assert!(message.contains("poppler-utils"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = "大模型的应用。".repeat(30);
        assert_eq!(
            extract_text(text.as_bytes(), Format::Text, &options).unwrap(),
            format!("{text}\n")
        );
    }
}
