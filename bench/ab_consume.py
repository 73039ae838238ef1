"""ab_consume.py: CPU per event of two logpipe binaries, measured side by side.

    .venv/bin/python bench/ab_consume.py BEFORE AFTER [--messages 300000] [--rounds 3]

One topic is filled once; each round consumes all of it with BEFORE then AFTER
(alternating which goes first), each in its own consumer group and index,
so both read the same messages from the same Kafka into the same
Elasticsearch. CPU-seconds come from the child's rusage (user + system), not
wall time: on a shared 2-core VM wall time measures the neighbours. Prints
one line per run and the medians; a run that did not index every message
stops the script. Used for each change of docs/performance.md ("Hot-path
changes measured").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
import uuid

import requests

KAFKA = os.environ.get("LOGPIPE_KAFKA", "127.0.0.1:9092")
ES = os.environ.get("LOGPIPE_ES", "http://127.0.0.1:9200")


def fill(binary: str, count: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"ab-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    subprocess.run([binary, "produce", "-b", KAFKA, "-t", topic, "--count", str(count), "--seed", "7",
                    "--start", "2026-01-21T00:00:00Z"], check=True, capture_output=True)
    return topic


def consume(binary: str, topic: str, count: int, extra: list[str]) -> dict:
    idx = f"ab-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "consume", "-b", KAFKA, "-t", topic, "-g", f"g-{idx}", "-e", ES, "-i", idx,
                          "--until-idle", "2", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()  # reaps it: RUSAGE_CHILDREN grows by exactly its usage
    wall = time.perf_counter() - t0 - 2  # the idle wait at the end is not work
    summary = json.loads(out.decode().strip().splitlines()[-1]) if out else {}
    if p.returncode != 0 or summary.get("indexed") != count:
        raise SystemExit(f"{binary} exited {p.returncode}, indexed {summary.get('indexed')} of {count}: "
                         f"{err.decode()[-500:]}")
    requests.post(f"{ES}/{idx}*/_refresh", timeout=120)
    docs = int(requests.get(f"{ES}/{idx}*/_count", timeout=60).json()["count"])
    requests.delete(f"{ES}/{idx}*", timeout=60)
    if docs != count:
        raise SystemExit(f"{binary}: {docs} documents in Elasticsearch, {count} expected")
    return {"wall_s": wall}


def run(binary: str, topic: str, count: int, extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = consume(binary, topic, count, extra)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**r, "cpu_s": cpu, "cpu_s_per_million": cpu / count * 1e6, "peak_rss_mb": after.ru_maxrss / 1024,
            "docs_per_s": count / r["wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--extra", default="", help="options for both consumes, space-separated")
    a = ap.parse_args()
    extra = a.extra.split()
    topic = fill(a.before, a.messages)
    res: dict[str, list[dict]] = {"before": [], "after": []}
    for i in range(a.rounds):
        order = [("before", a.before), ("after", a.after)]
        for name, binary in order if i % 2 == 0 else order[::-1]:
            r = run(binary, topic, a.messages, extra)
            res[name].append(r)
            print(f"round {i + 1} {name:<6} cpu {r['cpu_s']:6.2f} s = {r['cpu_s_per_million']:5.2f} s/M  "
                  f"wall {r['wall_s']:6.2f} s  {r['docs_per_s']:8,.0f} docs/s", flush=True)
    for name, rs in res.items():
        print(f"median {name:<6} {statistics.median(r['cpu_s_per_million'] for r in rs):5.2f} CPU-s/M  "
              f"{statistics.median(r['docs_per_s'] for r in rs):8,.0f} docs/s")
    print("(peak RSS: RUSAGE_CHILDREN keeps the largest child's; measure it per binary with /usr/bin/time)")


if __name__ == "__main__":
    main()
