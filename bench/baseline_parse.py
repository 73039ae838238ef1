"""The Python baseline for `logpipe parse`, written the way the seed's users
write it: one `re` regex per format, `strptime`, a dict, `json.dumps`.

Reads lines on stdin, writes one ECS-shaped JSON document per line on stdout
(the same fields logpipe writes), counts rejects. Used by bench/run.py only.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime

SEED = re.compile(r'^(\S+) \S+ (\S+) \[([A-Z][a-z]{2} \d{2} \d{4}, \d{2}:\d{2}:\d{2})\] '
                  r'"(\S+) (\S+) HTTP/(\d\.\d)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"')
COMBINED = re.compile(r'^(\S+) \S+ (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
                      r'"(\S+) (\S+) HTTP/(\d\.\d)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"')


def document(m: re.Match, fmt: str) -> dict:
    ip, user, ts, method, target, version, status, size, referrer, agent = m.groups()
    if fmt == "seed":
        t = datetime.strptime(ts, "%b %d %Y, %H:%M:%S").replace(tzinfo=UTC)
    else:
        t = datetime.strptime(ts, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    path, _, query = target.partition("?")
    doc: dict = {"@timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "source": {"ip": ip},
                 "http": {"request": {"method": method}, "version": version,
                          "response": {"status_code": int(status)}},
                 "url": {"original": target, "path": path}}
    if user != "-":
        doc["user"] = {"name": user}
    if size != "-":
        doc["http"]["response"]["body"] = {"bytes": int(size)}
    if query:
        doc["url"]["query"] = query
    if referrer != "-":
        doc["http"]["request"]["referrer"] = referrer
    if agent != "-":
        doc["user_agent"] = {"original": agent}
    return doc


def main() -> None:
    fmt = sys.argv[1] if len(sys.argv) > 1 else "seed"
    pattern = SEED if fmt == "seed" else COMBINED
    out = sys.stdout
    n = rejected = 0
    for line in sys.stdin:
        n += 1
        m = pattern.match(line)
        if not m:
            rejected += 1
            continue
        out.write(json.dumps(document(m, fmt)) + "\n")
    print(f"baseline_parse: {n} lines, {n - rejected} documents, {rejected} rejected", file=sys.stderr)


if __name__ == "__main__":
    main()
