#!/usr/bin/env bash
# Adding a ~50-page report to the five-report collection, timed against embedding that
# report's passages alone (issue #13: at most 1.5 ×). The report is laid out by
# tests/fixtures/pdf/make_pdf.py from ../shared/bench/cmrc2018-dev passages (text no
# report of the corpus has); `wenda bench --add` works on a copy of corpus/ and index/.
# Needs fpdf2 (pip), fonts-wqy-microhei and poppler-utils (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 -W ignore tests/fixtures/pdf/make_pdf.py \
    --from-jsonl ../shared/bench/cmrc2018-dev/corpus.jsonl --out "$out/long-report.pdf"
pdfinfo "$out/long-report.pdf" | grep Pages
cargo build --release --quiet
./target/release/wenda -q bench --add "$out/long-report.pdf" --rounds "${ROUNDS:-3}" "$@"
