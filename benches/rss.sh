#!/usr/bin/env bash
# Resident memory of `wenda serve` after 1,000 searches (hybrid, 40 distinct questions, query
# cache off so each one runs the model), with the f32 kernels, with the kernels chosen at
# load (--kernel auto) and with int8 everywhere (--kernel int8), in one run; prints each and
# its ratio to f32 (issue #19: auto ≤ 0.6×).
# QUERIES (default 1000) sets the number of searches; INDEX (default index) the index folder.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
queries=${QUERIES:-1000}
index=${INDEX:-index}
rss_after() {
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ./target/release/wenda -q --index "$index" serve --port "$port" --query-cache 0 "$@" >/dev/null &
    local pid=$!
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 1; done
    python3 - "$port" "$queries" <<'PY'
import sys, urllib.parse, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
topics = ["金融", "医疗", "政务", "制造", "教育", "零售", "能源", "交通"]
asks = ["大模型在{}行业的应用", "{}行业落地大模型的难点", "{}领域的大模型案例",
        "{}大模型的市场规模", "{}行业如何选择大模型"]
qs = [a.format(t) for t in topics for a in asks]
for i in range(n):
    q = urllib.parse.quote(qs[i % len(qs)])
    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?mode=hybrid&k=10&q={q}").read()
PY
    awk '/^VmRSS/ {print $2}' "/proc/$pid/status"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
f32=$(rss_after --kernel f32)
auto=$(rss_after --kernel auto)
int8=$(rss_after --kernel int8)
python3 -c "import sys; a, f, i = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); print(f'serve RSS after {sys.argv[4]} searches: auto {a / 1024:.0f} MB, f32 {f / 1024:.0f} MB, ratio {a / f:.2f} x; int8 {i / 1024:.0f} MB, ratio {i / f:.2f} x')" "$auto" "$f32" "$int8" "$queries"
