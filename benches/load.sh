#!/usr/bin/env bash
# Load benchmark of GET /api/search (hybrid) on this machine with wrk: one
# client, then 16 concurrent clients, against the same server process.
# Prints wrk's requests/s and latency percentiles; any "Non-2xx" line is an error.
#
# A query running alone spreads its matrix products over all cores; queries that
# overlap run one thread each. `RAYON_NUM_THREADS=1 bash benches/load.sh` keeps
# every query on one core, which shows the scaling from 1 to 16 clients without
# the single client's own parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
./target/release/wenda -q serve --port "$port" &
pid=$!
trap 'kill $pid' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 1; done
# 大模型在金融风控中的应用
url="http://127.0.0.1:$port/api/search?q=%E5%A4%A7%E6%A8%A1%E5%9E%8B%E5%9C%A8%E9%87%91%E8%9E%8D%E9%A3%8E%E6%8E%A7%E4%B8%AD%E7%9A%84%E5%BA%94%E7%94%A8&mode=hybrid&k=10"
duration=${DURATION:-20s}
echo "== 1 client"
wrk -t1 -c1 -d"$duration" --latency "$url"
echo "== 16 clients"
wrk -t2 -c16 -d"$duration" --latency "$url"
