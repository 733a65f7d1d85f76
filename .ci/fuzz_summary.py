"""Prints how many requests the schema fuzzer sent to each operation and the
statuses they got, from the HAR file schemathesis wrote (`--report har`)."""

import collections
import json
import re
import sys
import urllib.parse


def operation(method: str, url: str) -> str:
    if method not in ("GET", "POST"):
        return "other methods (any path)"
    path = urllib.parse.urlsplit(url).path
    path = re.sub(r"^/api/documents/.+", "/api/documents/{source}", path)
    return f"{method} {path}"


def main(har_path: str) -> None:
    with open(har_path, encoding="utf-8") as f:
        entries = json.load(f)["log"]["entries"]
    counts = collections.defaultdict(collections.Counter)
    for entry in entries:
        counts[operation(entry["request"]["method"], entry["request"]["url"])][
            entry["response"]["status"]
        ] += 1
    total = collections.Counter()
    print(f"schema fuzzer: {len(entries)} requests")
    for name in sorted(counts):
        statuses = counts[name]
        total.update(statuses)
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        print(f"  {name:<32} {sum(statuses.values()):>6}  ({shown})")
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(total.items()))
    print(f"  {'all':<32} {sum(total.values()):>6}  ({shown})")


if __name__ == "__main__":
    main(sys.argv[1])
