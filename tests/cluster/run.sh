#!/usr/bin/env bash
# Cluster tests (issue #22): the same retrieval through a real two-node OpenSearch cluster
# on 127.0.0.1. Downloads the engine once into a cache folder (Maven, tests/cluster/pom.xml),
# starts two nodes as one cluster, loads the reports with 2 shards and 1 replica, then:
#   1. `wenda eval` on the dev set through the cluster and embedded: R@5 and MRR@10 of
#      bm25, dense and hybrid within 0.01 of each other;
#   2. `wenda bench --backend opensearch`: search p50/p95 of both stores in one run;
#   3. a served search while one node is killed (replicas answer), both killed (503 with
#      a JSON error) and back (answers again without restarting wenda);
#   4. `wenda remove` / `wenda add` update the cluster incrementally.
# Both nodes are stopped on any exit (trap). Needs Java 17+ and Maven; run from anywhere:
#   bash tests/cluster/run.sh            (WENDA_CLUSTER_CACHE: where the engine is kept)
set -euo pipefail
source "$(dirname "$0")/engine.sh"
cd "$cluster_root"
root=$cluster_root
run=$root/target/cluster-run
wenda=$root/target/release/wenda
evalset=${WENDA_EVAL_SET:-$root/../shared/eval/dev.jsonl}

# 1. The engine, once (and wenda, when .ci/run has not built it yet).
engine_fetch
[ -x "$wenda" ] || cargo build --release

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http1=$(free_port); http2=$(free_port); tcp1=$(free_port); tcp2=$(free_port); serve_port=$(free_port)
url1=http://127.0.0.1:$http1
url2=http://127.0.0.1:$http2
export WENDA_BACKEND=embedded
engine=(--backend opensearch --engine-url "$url1,$url2")
index=(--index "$root/target/cluster-index")   # kept between runs: its vector cache spares re-embedding

rm -rf "$run"
mkdir -p "$run"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    for f in "$run"/n*/pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
    return 0
}
trap cleanup EXIT

start_node() { engine_start "$1" "$2" "$3" "$run/$1" "\"127.0.0.1:$tcp1\", \"127.0.0.1:$tcp2\"" '"n1", "n2"'; }
wait_cluster() {
    engine_wait "$url1" "$1" "$2" || { tail -20 "$run"/n*/out.log; return 1; }
}

started=$(date +%s.%N)
start_node n1 "$http1" "$tcp1"
start_node n2 "$http2" "$tcp2"
wait_cluster 2 green
echo "two-node cluster up in $(python3 -c "import time; print(round(time.time() - $started, 1))") s: $(curl -s "$url1/_cat/nodes?h=name,version,node.roles" | tr '\n' ' ')"

# 2. Load: the local index (passages, vectors, sentence vectors) and the cluster index.
"$wenda" -q "${index[@]}" "${engine[@]}" index --shards 2 --replicas 1
curl -s "$url1/_cat/shards/wenda*?h=index,shard,prirep,state,docs,store,node&bytes=kb" | sort
curl -s "$url1/_cat/indices/wenda*?v&h=index,docs.count,pri.store.size,store.size&bytes=kb"

# 3. Eval: the same questions through both stores (the set lies beside the checkout, as
#    for the dev-set tests of `cargo test`, which are ignored without it).
if [ ! -f "$evalset" ]; then
    echo "SKIPPED the eval comparison: no question set at $evalset (set WENDA_EVAL_SET)"
else
"$wenda" -q "${index[@]}" eval --set "$evalset" --json --trec-run "$run/embedded.txt" >"$run/eval-embedded.json"
"$wenda" -q "${index[@]}" "${engine[@]}" eval --set "$evalset" --json --trec-run "$run/cluster.txt" >"$run/eval-cluster.json"
for mode in bm25 dense hybrid; do
    echo "$mode: $(diff <(awk '$4 <= 10 {print $1, $3, $4}' "$run/embedded.$mode.txt") <(awk '$4 <= 10 {print $1, $3, $4}' "$run/cluster.$mode.txt") | grep -c '^<' || true) of the top-10 rows differ between the stores"
done
python3 - "$run/eval-embedded.json" "$run/eval-cluster.json" <<'PY'
import json, sys
embedded, cluster = (json.load(open(p)) for p in sys.argv[1:3])
def table(report):
    return {m["mode"]: (m["overall"]["recall_at_5"], m["overall"]["mrr_at_10"]) for m in report["modes"]}
e, c = table(embedded), table(cluster)
print("| mode | embedded R@5 | cluster R@5 | embedded MRR@10 | cluster MRR@10 |")
print("|---|---|---|---|---|")
bad = []
for mode in ("bm25", "dense", "hybrid"):
    if mode not in e or mode not in c:
        bad.append(f"{mode} missing")
        continue
    print(f"| {mode} | {e[mode][0]:.3f} | {c[mode][0]:.3f} | {e[mode][1]:.3f} | {c[mode][1]:.3f} |")
    for i, name in ((0, "R@5"), (1, "MRR@10")):
        if abs(e[mode][i] - c[mode][i]) > 0.01:
            bad.append(f"{mode} {name}: embedded {e[mode][i]:.3f}, cluster {c[mode][i]:.3f}")
if bad:
    sys.exit("the cluster's figures differ from the embedded store's by more than 0.01: " + "; ".join(bad))
print("eval: the cluster is within 0.01 of the embedded store in every mode")
PY
fi

# 4. Bench: search latency of both stores in one run.
"$wenda" -q "${index[@]}" "${engine[@]}" bench

# 5. Failures, through the server: one node killed, both killed, both back.
"$wenda" -q "${index[@]}" "${engine[@]}" serve --port "$serve_port" >"$run/serve.log" 2>&1 &
server=$!
python3 - "$serve_port" "$server" "$run" "$url1" "$url2" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.parse, urllib.request, urllib.error
port, server, run, url1, url2 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
base = f"http://127.0.0.1:{port}"
def get(path, timeout=30):
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
deadline = time.monotonic() + 600
while True:
    try:
        if get("/healthz", 5)[0] == 200:
            break
    except OSError:
        pass
    try:
        os.kill(server, 0)
    except OSError:
        sys.exit(f"wenda serve exited before it was ready; see {run}/serve.log")
    if time.monotonic() > deadline:
        sys.exit("wenda serve was not ready in 10 minutes")
    time.sleep(1)
questions = ["百丽时尚有多少家直营门店？", "政务大模型由哪些企业建设？", "What is MaaS?", "智能客服小申"]
def search(q, mode):
    return get("/api/search?" + urllib.parse.urlencode({"query": q, "mode": mode, "k": 5}))
baseline = {}
for q in questions:
    for mode in ("bm25", "dense", "hybrid"):
        status, body = search(q, mode)
        assert status == 200, (q, mode, status, body)
        baseline[(q, mode)] = [h["id"] for h in body["results"]]
rows = []
def stop(node):
    pid = int(open(f"{run}/{node}/pid").read())
    os.kill(pid, signal.SIGKILL)
def answered(label):
    ok = same = 0
    codes = {}
    for q in questions:
        for mode in ("bm25", "dense", "hybrid"):
            status, body = search(q, mode)
            reply = str(status)
            if status == 200:
                ok += 1
                same += [h["id"] for h in body["results"]] == baseline[(q, mode)]
            else:
                reply += " " + str((body or {}).get("code") if isinstance(body, dict) else None)
            codes[reply] = codes.get(reply, 0) + 1
    rows.append((label, ok, same, codes))
    return ok, same, codes
n = len(questions) * 3
ok, same, _ = answered("two nodes")
assert ok == n and same == n, rows
stop("n1")
ok, same, _ = answered("n1 killed (replicas on n2)")
assert ok == n, f"searches failed with one node down: {rows}"
assert same == n, f"rankings changed with one node down: {rows}"
stop("n2")
ok, _, codes = answered("both killed")
assert ok == 0 and set(codes) == {"503 engine_unavailable"}, rows
with open(f"{run}/failure.json", "w") as f:
    json.dump(rows, f, ensure_ascii=False)
PY
# Both nodes back (same data folders); wenda keeps serving without a restart.
start_node n1 "$http1" "$tcp1"
start_node n2 "$http2" "$tcp2"
wait_cluster 2 green
python3 - "$serve_port" "$run" <<'PY'
import json, sys, urllib.parse, urllib.request
port, run = int(sys.argv[1]), sys.argv[2]
rows = json.load(open(f"{run}/failure.json"))
ok = 0
for q in ["百丽时尚有多少家直营门店？", "政务大模型由哪些企业建设？", "What is MaaS?", "智能客服小申"]:
    for mode in ("bm25", "dense", "hybrid"):
        url = f"http://127.0.0.1:{port}/api/search?" + urllib.parse.urlencode({"query": q, "mode": mode, "k": 5})
        with urllib.request.urlopen(url, timeout=30) as r:
            ok += r.status == 200
rows.append(["both back (wenda not restarted)", ok, None, {"200": ok}])
print("| cluster state | searches answered (of 12) | same top 5 as before | statuses |")
print("|---|---|---|---|")
for label, answered, same, codes in rows:
    print(f"| {label} | {answered} | {'' if same is None else same} | {codes} |")
assert ok == 12, rows
PY
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
server=""

# 6. Incremental: removing a report deletes its passages from the cluster; adding it back
#    writes them again (vectors from the local vector cache).
count() { curl -s "$url1/wenda/_count" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'; }
corpus=$run/corpus
cp -r corpus "$corpus"
"$wenda" -q "${index[@]}" --corpus "$corpus" "${engine[@]}" index --shards 2 --replicas 1 >/dev/null
before=$(count)
victim=$("$wenda" -q "${index[@]}" --corpus "$corpus" list --json | python3 -c 'import json, sys; d = json.load(sys.stdin); r = d["reports"] if isinstance(d, dict) else d; print(sorted(r, key=lambda x: x["passages"])[0]["source"])')
cp "$corpus/$victim" "$run/$victim"
"$wenda" -q "${index[@]}" --corpus "$corpus" "${engine[@]}" remove "$victim"
after_remove=$(count)
"$wenda" -q "${index[@]}" --corpus "$corpus" "${engine[@]}" add "$run/$victim" --title "re-added" --publisher "test" --year 2024
after_add=$(count)
echo "incremental: $before passages, $after_remove after removing $victim, $after_add after adding it back"
[ "$after_remove" -lt "$before" ] && [ "$after_add" -eq "$before" ]
echo "cluster tests passed"
