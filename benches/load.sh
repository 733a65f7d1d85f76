#!/usr/bin/env bash
# Load benchmark of GET /api/search (hybrid) on this machine with wrk: one client,
# then 16 concurrent clients, against a server that batches concurrent queries
# (the default) and, in the same script, one that embeds each query alone
# (--no-query-batching), so the ratio between them comes from one run; then the same with
# the encoder's f32 kernels (--kernel f32) against the kernels chosen at load (--kernel auto,
# the default), printing the ratio of their requests/s and of their resident memory (RSS)
# after the runs.
# Clients cycle through 40 different questions and the query cache is off
# (--query-cache 0), so every request runs the model. Prints wrk's requests/s and
# latency percentiles; any "Non-2xx" line is an error.
#
# DURATION (default 15s) sets each wrk run's length.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
duration=${DURATION:-15s}
script=$(mktemp --suffix=.lua)
cat >"$script" <<'LUA'
-- 40 distinct questions, percent-encoded, taken in turn by each connection.
local questions = {}
local topics = {"金融", "医疗", "政务", "制造", "教育", "零售", "能源", "交通"}
local asks = {"大模型在%s行业的应用", "%s行业落地大模型的难点", "%s领域的大模型案例",
              "%s大模型的市场规模", "%s行业如何选择大模型"}
for _, t in ipairs(topics) do
  for _, a in ipairs(asks) do
    local q = string.format(a, t)
    q = q:gsub("[^%w]", function(c) return string.format("%%%02X", string.byte(c)) end)
    table.insert(questions, q)
  end
end
local n = 0
request = function()
  n = n + 1
  local q = questions[(n % #questions) + 1]
  return wrk.format("GET", "/api/search?mode=hybrid&k=10&q=" .. q)
end
LUA

out=$(mktemp -d)
trap 'rm -f "$script"; rm -rf "$out"' EXIT

run_server() {
    local label=$1; local tag=$2; shift 2
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ./target/release/wenda -q serve --port "$port" --query-cache 0 "$@" &
    local pid=$!
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 1; done
    echo "=== $label: 1 client"
    wrk -t1 -c1 -d"$duration" --latency -s "$script" "http://127.0.0.1:$port"
    echo "=== $label: 16 clients"
    wrk -t2 -c16 -d"$duration" --latency -s "$script" "http://127.0.0.1:$port" | tee "$out/$tag.wrk"
    awk '/^VmRSS/ {print $2}' "/proc/$pid/status" > "$out/$tag.rss"
    echo "RSS after the runs: $(( $(cat "$out/$tag.rss") / 1024 )) MB"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

run_server "batched queries, kernels chosen at load (--kernel auto)" selected --kernel auto
run_server "one query at a time (--no-query-batching, --kernel auto)" unbatched --kernel auto --no-query-batching
run_server "batched queries, f32 kernels (--kernel f32)" f32 --kernel f32
rps() { awk '/^Requests\/sec/ {print $2}' "$out/$1.wrk"; }
python3 - "$(rps selected)" "$(rps f32)" "$(cat "$out/selected.rss")" "$(cat "$out/f32.rss")" <<'PY'
import sys
sel, f32, rss_sel, rss_f32 = map(float, sys.argv[1:])
print(f"selected kernels / f32, 16 clients: {sel / f32:.2f} x requests/s ({sel:.1f} vs {f32:.1f})")
print(f"selected kernels / f32, RSS after the runs: {rss_sel / rss_f32:.2f} x ({rss_sel / 1024:.0f} vs {rss_f32 / 1024:.0f} MB)")
PY
