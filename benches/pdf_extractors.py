#!/usr/bin/env python3
"""Compares PDF text extractors on Chinese PDFs: poppler's pdftotext (three modes) and
the pure-Rust crates pdf-extract, lopdf and pdf_oxide (benches/pdf-extractors).

For each PDF it scores what each extractor returns:
  - sentences: share of the report's sentences found in the text with all whitespace,
    running headers and page numbers removed (the words were recovered, in order);
  - chunked: share found exactly inside one passage of wenda's chunker (line wraps
    joined, page furniture dropped), i.e. what search and citations will see;
  - mojibake: characters that are not in the report at all (U+FFFD, private-use
    glyphs, radicals standing in for ideographs, wrong code points), per 1,000;
  - seconds: wall time of the extraction.

    bash benches/pdf_extractors.sh   # makes the PDFs, builds the harness, runs this
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "pdf"))
import make_pdf  # noqa: E402

HARNESS = os.path.join(ROOT, "benches", "pdf-extractors", "target", "release", "pdf-extractors")
WENDA = os.path.join(ROOT, "target", "release", "wenda")

EXTRACTORS = {
    "pdftotext": lambda pdf: ["pdftotext", "-enc", "UTF-8", pdf, "-"],
    "pdftotext -layout": lambda pdf: ["pdftotext", "-enc", "UTF-8", "-layout", pdf, "-"],
    "pdftotext -raw": lambda pdf: ["pdftotext", "-enc", "UTF-8", "-raw", pdf, "-"],
    "pdf-extract": lambda pdf: [HARNESS, "pdf-extract", pdf],
    "lopdf": lambda pdf: [HARNESS, "lopdf", pdf],
    "pdf_oxide": lambda pdf: [HARNESS, "pdf_oxide", pdf],
}


def squash(s):
    return re.sub(r"\s+", "", s)


def without_furniture(text):
    """The text less the running header and page numbers, which interrupt sentences
    that run across a page (the chunker drops them the same way)."""
    return "\n".join(l for l in text.splitlines()
                     if l.strip() != make_pdf.HEADER and not re.fullmatch(r"\s*第\s*\d+\s*页\s*", l))


def sentences_of(sections):
    out = []
    for _, paragraphs in sections:
        for p in paragraphs:
            if isinstance(p, str):
                out += [s for s in re.findall(r"[^。！？；]*[。！？；]", p) if len(s) >= 8]
    return out


def chunk(text):
    """wenda's passages of `text` (its real chunker, through a BM25-only index)."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus")
        os.mkdir(corpus)
        with open(os.path.join(corpus, "r.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(corpus, "catalog.toml"), "w", encoding="utf-8") as f:
            f.write('[[report]]\nfile = "r.txt"\ntitle = "r"\npublisher = "p"\nyear = 2025\n')
        index = os.path.join(tmp, "index")
        subprocess.run([WENDA, "-q", "--corpus", corpus, "--index", index, "index",
                        "--lexical-only"], check=True, capture_output=True)
        data = [d for d in os.listdir(index) if d.startswith("data-")][0]
        with open(os.path.join(index, data, "passages.jsonl"), encoding="utf-8") as f:
            return [json.loads(l)["text"] for l in f]


def score(name, pdf, sections, allowed):
    sentences = sentences_of(sections)
    rows = []
    for ex, cmd in EXTRACTORS.items():
        t = time.perf_counter()
        r = subprocess.run(cmd(pdf), capture_output=True)
        seconds = time.perf_counter() - t
        if r.returncode != 0:
            err = [l for l in r.stderr.decode("utf-8", "replace").splitlines()
                   if l.strip() and not l.startswith("note:")]
            rows.append((ex, None, None, None, seconds, " ".join(err)[:90]))
            continue
        text = r.stdout.decode("utf-8", "replace").replace("\f", "\n")
        flat = squash(without_furniture(text))
        found = sum(squash(s) in flat for s in sentences)
        passages = chunk(text) if text.strip() else []
        chunked = sum(any(s in p for p in passages) for s in sentences)
        chars = [c for c in text if not c.isspace()]
        bad = [c for c in chars if c not in allowed]
        per_mille = 1000 * len(bad) / max(1, len(chars))
        sample = "".join(sorted(set(bad)))[:12]
        rows.append((ex, found / len(sentences), chunked / len(sentences), per_mille, seconds,
                     f"{len(chars)} chars; foreign: {sample!r}" if bad else f"{len(chars)} chars"))
    print(f"\n{name} ({len(sentences)} sentences)")
    print(f"{'extractor':<18} {'sentences':>9} {'chunked':>8} {'mojibake‰':>10} {'seconds':>8}  notes")
    for ex, found, chunked, moj, seconds, note in rows:
        if found is None:
            print(f"{ex:<18} {'-':>9} {'-':>8} {'-':>10} {seconds:8.3f}  error: {note}")
        else:
            print(f"{ex:<18} {found:9.2f} {chunked:8.2f} {moj:10.1f} {seconds:8.3f}  {note}")


def main():
    pdfs = sys.argv[1:]
    if not pdfs:
        sys.exit("usage: pdf_extractors.py NAME=FILE.pdf[:JSONL] ...")
    for spec in pdfs:
        name, path = spec.split("=", 1)
        sections = make_pdf.SECTIONS
        if ":" in path:
            path, jsonl = path.split(":", 1)
            sections = make_pdf.load_jsonl_sections(jsonl, 34000)
        allowed = set(make_pdf.TITLE + make_pdf.PUBLISHER + make_pdf.HEADER + "第页0123456789.")
        for head, paragraphs in sections:
            allowed |= set(head)
            for p in paragraphs:
                allowed |= set(p if isinstance(p, str) else "".join("".join(r) for r in p))
        allowed |= set("基准测试长报告（维基百科段落）")
        score(name, path, sections, allowed)


if __name__ == "__main__":
    main()
