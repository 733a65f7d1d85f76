#!/usr/bin/env bash
# A local OpenSearch cluster for `wenda --backend opensearch` (README: "Past one machine"):
#   bash tests/cluster/start.sh          NODES nodes (default 1), HTTP on 9200, 9201, …
#   bash tests/cluster/start.sh stop     stops them
# Data stays in target/cluster-local between starts. Needs Java 17+ and Maven.
set -euo pipefail
source "$(dirname "$0")/engine.sh"
nodes=${NODES:-1}
base=$cluster_root/target/cluster-local

if [ "${1:-}" = stop ]; then
    for f in "$base"/n*/pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null && echo "stopped $(basename "$(dirname "$f")")"
        rm -f "$f"
    done
    exit 0
fi

engine_fetch
seeds=$(for i in $(seq 1 "$nodes"); do printf '"127.0.0.1:%d",' $((9299 + i)); done)
managers=$(for i in $(seq 1 "$nodes"); do printf '"n%d",' "$i"; done)
for i in $(seq 1 "$nodes"); do
    engine_start "n$i" $((9199 + i)) $((9299 + i)) "$base/n$i" "${seeds%,}" "${managers%,}"
done
engine_wait http://127.0.0.1:9200 "$nodes" yellow
echo "OpenSearch $cluster_version: $nodes node(s), http://127.0.0.1:9200$(for i in $(seq 2 "$nodes"); do printf ',http://127.0.0.1:%d' $((9199 + i)); done) (logs in $base/n*/out.log; stop with: bash tests/cluster/start.sh stop)"
