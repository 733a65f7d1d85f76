#!/usr/bin/env bash
# The PDF extractor comparison behind src/corpus/extract.rs: makes Chinese PDFs four ways
# (tests/fixtures/pdf/make_pdf.py), builds the pure-Rust harness and scores every
# extractor with benches/pdf_extractors.py. Needs poppler-utils, fonts-wqy-microhei,
# chromium, pip's fpdf2 and reportlab, and ../shared/bench for the long report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
make=tests/fixtures/pdf/make_pdf.py
long=../shared/bench/cmrc2018-dev/corpus.jsonl
python3 -W ignore $make --out "$out/fpdf.pdf"
python3 -W ignore $make --style columns --out "$out/columns.pdf"
python3 -W ignore $make --style reportlab --out "$out/reportlab.pdf"
python3 -W ignore $make --style cid --out "$out/cid.pdf"
python3 -W ignore $make --style html --out "$out/report.html"
chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
    --print-to-pdf="$out/chromium.pdf" "$out/report.html" 2>/dev/null
python3 -W ignore $make --from-jsonl $long --out "$out/long.pdf"
python3 -W ignore $make --style columns --from-jsonl $long --out "$out/long-columns.pdf"
cargo build --release --quiet
(cd benches/pdf-extractors && cargo build --release --quiet)
python3 benches/pdf_extractors.py \
    "fixture: fpdf2, CID TrueType Identity-H subset=$out/fpdf.pdf" \
    "the same in two columns=$out/columns.pdf" \
    "reportlab, simple TrueType subsets=$out/reportlab.pdf" \
    "reportlab, STSong-Light CID font, not embedded=$out/cid.pdf" \
    "Chromium print to PDF, Type 3 fonts=$out/chromium.pdf" \
    "50-page report (fpdf2)=$out/long.pdf:$long" \
    "the same in two columns (28 pages)=$out/long-columns.pdf:$long"
rm -rf "$out"
