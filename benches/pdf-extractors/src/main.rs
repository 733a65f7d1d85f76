//! `pdf-extractors ENGINE FILE.pdf`: prints the text the engine extracts (pdf-extract,
//! lopdf or pdf_oxide), for benches/pdf_extractors.py to score against pdftotext.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (engine, path) = match args.as_slice() {
        [_, engine, path] => (engine.as_str(), path.as_str()),
        _ => {
            eprintln!("usage: pdf-extractors pdf-extract|lopdf|pdf_oxide FILE.pdf");
            std::process::exit(2);
        }
    };
    let text = match engine {
        "pdf-extract" => pdf_extract::extract_text(path).map_err(|e| e.to_string()),
        "lopdf" => lopdf::Document::load(path)
            .map_err(|e| e.to_string())
            .and_then(|doc| {
                let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
                doc.extract_text(&pages).map_err(|e| e.to_string())
            }),
        "pdf_oxide" => pdf_oxide::PdfDocument::open(path)
            .map_err(|e| e.to_string())
            .and_then(|doc| {
                let n = doc.page_count().map_err(|e| e.to_string())?;
                let mut out = String::new();
                for i in 0..n {
                    out.push_str(&doc.extract_text(i).map_err(|e| e.to_string())?);
                    out.push('\n');
                }
                Ok(out)
            }),
        other => Err(format!("unknown engine {other}")),
    };
    match text {
        Ok(t) => print!("{t}"),
        Err(e) => {
            eprintln!("{engine}: {e}");
            std::process::exit(1);
        }
    }
}
