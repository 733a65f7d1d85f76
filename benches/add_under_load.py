#!/usr/bin/env python3
"""Searches while a report is added through the API (issue #21).

Starts `wenda serve` on a copy of the collection (corpus and index) with an admin
token, keeps CLIENTS threads searching (hybrid, query cache off, 40 rotating
questions) and, after a short warm-up, adds a report through POST /api/documents.
Prints, for the searches that ran during the add, their count, the replies by status
and code, and latency percentiles, beside the same figures before the add. Also
counts the server's log lines by level. Run from the repository root after
`cargo build --release`; bounded in time, loopback only.

    python3 benches/add_under_load.py [--clients 8] [--report corpus/some.txt]
"""
import argparse, collections, json, os, shutil, socket, subprocess, sys, tempfile
import threading, time, urllib.error, urllib.parse, urllib.request

TOPICS = ["金融", "医疗", "政务", "制造", "教育", "零售", "能源", "交通"]
ASKS = ["大模型在{}行业的应用", "{}行业落地大模型的难点", "{}领域的大模型案例",
        "{}大模型的市场规模", "{}行业如何选择大模型"]
QUESTIONS = [a.format(t) for t in TOPICS for a in ASKS]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--report", default="corpus/leadleo-2023-llm-application-report.txt",
                    help="text whose lines, reversed, make the added report (so it is no duplicate)")
    ap.add_argument("--binary", default="target/release/wenda")
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="wenda-add-load-")
    try:
        shutil.copytree("corpus", f"{work}/corpus")
        if os.path.isdir("index"):
            shutil.copytree("index", f"{work}/index", symlinks=True)
        port = free_port()
        log = open(f"{work}/serve.log", "w")
        env = dict(os.environ, WENDA_ADMIN_TOKEN="bench-token")
        server = subprocess.Popen(
            [args.binary, "--corpus", f"{work}/corpus", "--index", f"{work}/index",
             "serve", "--port", str(port), "--query-cache", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 900
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5).read(); break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"server did not start; see {work}/serve.log")
                time.sleep(1)

        phase = {"name": "before"}
        results = collections.defaultdict(list)  # phase -> [(status, code, ms)]
        stop = threading.Event()

        def client(i):
            n = i
            while not stop.is_set():
                q = urllib.parse.quote(QUESTIONS[n % len(QUESTIONS)]); n += 1
                started = time.monotonic(); name = phase["name"]
                try:
                    with urllib.request.urlopen(f"{base}/api/search?mode=hybrid&k=10&q={q}", timeout=60) as r:
                        r.read(); status, code = r.status, "ok"
                except urllib.error.HTTPError as e:
                    status = e.code
                    try: code = json.loads(e.read()).get("code", "?")
                    except Exception: code = "?"
                except OSError as e:
                    status, code = 0, type(e).__name__
                results[name].append((status, code, (time.monotonic() - started) * 1000))

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        for t in threads: t.start()
        time.sleep(10)
        phase["name"] = "during add"
        text = open(args.report, encoding="utf-8").read().splitlines()
        body_text = "\n".join(reversed(text)) + "\n"
        boundary = "wenda-bench-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"load-test-report.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\n{body_text}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n负载测试报告\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"year\"\r\n\r\n2024\r\n"
                f"--{boundary}--\r\n").encode("utf-8")
        req = urllib.request.Request(base + "/api/documents", data=body, method="POST", headers={
            "Authorization": "Bearer bench-token",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        add_started = time.monotonic()
        with urllib.request.urlopen(req, timeout=60) as r:
            job = json.loads(r.read())
        while True:
            with urllib.request.urlopen(f"{base}/api/jobs/{job['id']}", timeout=30) as r:
                status = json.loads(r.read())
            if status.get("state") in ("succeeded", "failed"):
                break
            if time.monotonic() - add_started > args.max_seconds:
                break
            time.sleep(0.5)
        add_seconds = time.monotonic() - add_started
        phase["name"] = "after"
        time.sleep(5)
        stop.set()
        for t in threads: t.join(timeout=70)
        server.terminate(); server.wait(timeout=30); log.close()

        print(f"add job: {status.get('state')} in {add_seconds:.1f} s ({args.clients} clients searching){'' if status.get('state') == 'succeeded' else ': ' + json.dumps(status, ensure_ascii=False)}")
        for name in ("before", "during add", "after"):
            rows = results[name]
            if not rows: continue
            by = collections.Counter((s, c) for s, c, _ in rows)
            ms = sorted(m for _, _, m in rows)
            pct = lambda p: ms[min(len(ms) - 1, int(p * (len(ms) - 1)))]
            print(f"{name:>10}: {len(rows)} searches, p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {ms[-1]:.0f} ms; "
                  + ", ".join(f"{s} {c}: {n}" for (s, c), n in sorted(by.items())))
        levels = collections.Counter()
        for line in open(f"{work}/serve.log", encoding="utf-8", errors="replace"):
            for level in ("ERROR", "WARN", "INFO"):
                if f" {level} " in line: levels[level] += 1
        print("server log lines:", dict(levels))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
