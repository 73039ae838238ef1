"""logpipe's benchmark: each stage measured against its baselines side by side,
in the same run, on the same machine, so the ratios mean something even on a
noisy shared 2-core VM. `make bench` (quick) or `make bench BENCH_MODE=full`.

Stages (docs/performance.md explains each choice):
  parse     logpipe parse vs. the PCRE2-JIT generic regex parser (bench/pcre2_parse.c)
            vs. the seed-style Python parser (bench/baseline_parse.py), lines/s on one
            core, seed and combined formats; plus callgrind instructions per line; and
            logpipe alone on what a public server logs (vhost_combined, generate --realistic)
  produce   logpipe produce vs. kcat -P vs. Python confluent-kafka (flush per message,
            the seed's way, and batched), messages/s into the local Kafka
  consume   logpipe consume vs. the seed-style Python consumer vs. the ceiling (pre-built
            gzip NDJSON bulk bodies sent by parallel curl clients, no Kafka, no parsing):
            documents/s, CPU-seconds per million, peak RSS
  latency   produce at a steady rate while logpipe consume runs: produce-to-searchable
            p50/p99/max, with the cluster's refresh interval and with --refresh-ms 500
  scaling   1, 2, 4 logpipe consume processes in one group on a 4-partition topic
  cluster   1, 2, 4, 6 processes in one group on a 6-partition topic (replication 3) of the
            three-broker cluster, into the three-node Elasticsearch (3 shards, 1 replica):
            `make bench-cluster` (stack/stack.sh cluster); not in the default stages

Writes bench/results/<date>-<mode>.json and .png and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import fluent_bit
import requests

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
KAFKA = os.environ.get("LOGPIPE_KAFKA", "127.0.0.1:9092")
ES = os.environ.get("LOGPIPE_ES", "http://127.0.0.1:9200")
CLUSTER_KAFKA = "127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093"  # stack/cluster.sh's ports
CLUSTER_ES = "http://127.0.0.1:19201"
PY = sys.executable

SIZES = {  # quick: a smoke run for CI; full: the sizes
    "quick": {"parse": 200_000, "python_parse": 100_000, "produce": 200_000, "python_seed_produce": 5_000,
              "consume": 100_000, "python_consume": 50_000, "latency_s": 8, "scaling": 100_000, "repeat": 1},
    "full": {"parse": 2_000_000, "python_parse": 500_000, "produce": 1_000_000, "python_seed_produce": 20_000,
             "consume": 1_000_000, "python_consume": 200_000, "latency_s": 30, "scaling": 1_000_000, "repeat": 5},
}


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def run_timed(cmd: list[str], stdin: Path | None = None) -> tuple[float, float]:
    """Wall and CPU-seconds (user + system) of one run, stdout discarded."""
    with open(stdin or os.devnull, "rb") as i, open(os.devnull, "wb") as o:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=i, stdout=o, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise subprocess.CalledProcessError(os.waitstatus_to_exitcode(status), cmd)
    return wall, usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], stdin: Path | None = None, repeat: int = 1) -> float:
    """Best wall time of `repeat` runs, stdout discarded."""
    return min(run_timed(cmd, stdin)[0] for _ in range(repeat))


def resources(cmd: list[str], **kw) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs cmd under /usr/bin/time: wall, CPU-seconds (user+sys, children included), peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as f:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", f.name, *cmd],
                           capture_output=True, check=True, **kw)
        wall, user, system, rss_kb = f.read().split()[-4:]
    return p, {"wall_s": float(wall), "cpu_s": float(user) + float(system), "peak_rss_mb": int(rss_kb) / 1024}


def logpipe(args) -> str:
    return str(Path(args.logpipe).resolve())


def generate(args, fmt: str, count: int, path: Path, *extra: str) -> Path:
    if not path.exists():
        with open(path, "wb") as f:
            subprocess.run([logpipe(args), "generate", "--count", str(count), "--seed", "7", "--format", fmt,
                            "--start", "2026-01-21T00:00:00Z", *extra], stdout=f, check=True)
    return path


# ---- parse ---------------------------------------------------------------------------

def bench_parse(args, work: Path, n: dict) -> dict:
    out = {}
    for fmt in ("seed", "combined"):
        lines = generate(args, fmt, n["parse"], work / f"{fmt}-{n['parse']}.log")
        py_lines = generate(args, fmt, n["python_parse"], work / f"{fmt}-{n['python_parse']}.log")
        # Alternated, best of each: a second of this VM's noise (±25% between
        # minutes) then falls on both sides of the ratio, not on one.
        lp_runs, pc_walls = [], []
        for _ in range(n["repeat"]):
            lp_runs.append(run_timed(["taskset", "-c", "0", logpipe(args), "parse", "--format", fmt], lines))
            pc_walls.append(run_timed(["taskset", "-c", "0", args.pcre2, fmt], lines)[0])
        lp = n["parse"] / min(wall for wall, _ in lp_runs)
        pc = n["parse"] / min(pc_walls)
        py = n["python_parse"] / timed(["taskset", "-c", "0", PY, str(BENCH / "baseline_parse.py"), fmt], py_lines, 1)
        fb = fluent_bit.parse(lines, n["parse"], n["repeat"]) if fmt == "seed" else None
        if fb:
            lp_cpu = min(cpu for _, cpu in lp_runs) / n["parse"] * 1e6
            fb = {"fluent_bit": fb, "vs_fluent_bit": lp / fb["lines_per_s"],
                  "logpipe_cpu_s_per_million": lp_cpu, "cpu_vs_fluent_bit": lp_cpu / fb["cpu_s_per_million"]}
        out[fmt] = {"logpipe_lines_per_s": lp, "pcre2_lines_per_s": pc, "python_lines_per_s": py,
                    "vs_python": lp / py, "vs_pcre2": lp / pc, **(fb or {}),
                    "instructions_per_line": {"logpipe": callgrind_per_line(args, [logpipe(args), "parse",
                                                                                   "--format", fmt], fmt, work),
                                              "pcre2": callgrind_per_line(args, [args.pcre2, fmt], fmt, work)}}
    # What a public server logs: vhost_combined with the lines of requests that never
    # completed (generate --realistic, 1.35% of lines). logpipe only: the PCRE2 and
    # Python baselines' patterns reject those lines, so their speed would mean nothing.
    real = ("vhost_combined", "--realistic")
    lines = generate(args, real[0], n["parse"], work / f"realistic-{n['parse']}.log", *real[1:])
    out["realistic"] = {"logpipe_lines_per_s": n["parse"] / timed(["taskset", "-c", "0", logpipe(args), "parse"],
                                                                   lines, n["repeat"]),
                        "instructions_per_line": {"logpipe": callgrind_per_line(args, [logpipe(args), "parse"],
                                                                                "realistic", work, *real)}}
    return out


def callgrind_per_line(args, cmd: list[str], fmt: str, work: Path, *gen: str) -> float:
    """Instructions per line from callgrind: the difference between 40,000 and 20,000
    lines, so start-up cost cancels out. Counts, not seconds: stable on a noisy machine.
    gen: the generator's format and options when they differ from fmt."""
    counts = []
    for k in (20_000, 40_000):
        src = generate(args, gen[0] if gen else fmt, k, work / f"{fmt}-{k}.log", *gen[1:])
        with open(src, "rb") as i:
            p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                               stdin=i, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        counts.append(int(re.search(rb"Collected : (\d+)", p.stderr).group(1)))
    return (counts[1] - counts[0]) / 20_000


# ---- produce -------------------------------------------------------------------------

def new_topic(partitions: int = 3, kafka: str = KAFKA, replication: int = 1) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka})  # must outlive the future
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication)])[name].result(
        timeout=30)
    return name


def bench_produce(args, work: Path, n: dict) -> dict:
    lines = generate(args, "seed", n["produce"], work / f"seed-{n['produce']}.log")
    out = {}
    t = timed([logpipe(args), "produce", "-b", KAFKA, "-t", new_topic(), "--input", str(lines)])
    out["logpipe_msgs_per_s"] = n["produce"] / t
    t = timed(["kcat", "-P", "-b", KAFKA, "-t", new_topic(), "-z", "zstd", "-X", "linger.ms=20",
               "-X", "enable.idempotence=true", "-l", str(lines)])
    out["kcat_msgs_per_s"] = n["produce"] / t
    for mode, count in (("seed", n["python_seed_produce"]), ("batched", n["produce"])):
        p = sh([PY, str(BENCH / "python_produce.py"), KAFKA, new_topic(), str(lines), mode, str(count)])
        out[f"python_{mode}_msgs_per_s"] = json.loads(p.stdout)["msgs_per_s"]
    out["vs_python_seed"] = out["logpipe_msgs_per_s"] / out["python_seed_msgs_per_s"]
    out["vs_python_batched"] = out["logpipe_msgs_per_s"] / out["python_batched_msgs_per_s"]
    out["vs_kcat"] = out["logpipe_msgs_per_s"] / out["kcat_msgs_per_s"]
    return out


# ---- consume -------------------------------------------------------------------------

def fill_topic(args, count: int, partitions: int = 3, kafka: str = KAFKA, replication: int = 1) -> str:
    topic = new_topic(partitions, kafka, replication)
    sh([logpipe(args), "produce", "-b", kafka, "-t", topic, "--count", str(count), "--seed", "7",
        "--start", "2026-01-21T00:00:00Z"])
    return topic


def copy_template(from_index: str, to_index: str) -> None:
    """Gives another contender's index logpipe's exact mapping and settings."""
    templates = requests.get(f"{ES}/_index_template", timeout=30).json()["index_templates"]
    tpl = next(t for t in templates if from_index in t["index_template"]["index_patterns"])["index_template"]
    body = {"index_patterns": [to_index], "priority": tpl.get("priority", 200), "template": tpl["template"]}
    requests.put(f"{ES}/_index_template/bench-{to_index}", json=body, timeout=30).raise_for_status()


def es_count(index: str, es: str = ES) -> int:
    requests.post(f"{es}/{index}/_refresh", timeout=120)
    return int(requests.get(f"{es}/{index}/_count", timeout=60).json()["count"])


def ceiling(args, work: Path, docs_from: Path, count: int, index: str, clients: int = 4) -> dict:
    """Pre-built gzip NDJSON bulk bodies of 2,500 documents (logpipe's default batch),
    sent by `clients` curl loops. The documents are the ones logpipe indexes: the
    parsed line plus its kafka.topic/partition/offset, under an _id of the same
    topic-partition-offset form (three partitions, filled in runs of 1,000 as the
    producer's sticky partitioner does), so both index the same work."""
    folder = work / f"ceiling-v2-{count}"
    if not folder.exists():
        folder.mkdir()
        with open(docs_from, "rb") as src:
            docs = sh([logpipe(args), "parse"], stdin=src).stdout.splitlines()
        offsets = [0, 0, 0]
        lines = []
        for i, d in enumerate(docs):
            p = (i // 1000) % 3
            o, offsets[p] = offsets[p], offsets[p] + 1
            lines.append(b'{"index":{"_id":"bench-%d-%d"}}\n%s,"kafka":{"topic":"bench","partition":%d,'
                         b'"offset":%d}}\n' % (p, o, d[:-1], p, o))
        for i in range(0, len(lines), 2500):
            (folder / f"{i:09d}.ndjson.gz").write_bytes(gzip.compress(b"".join(lines[i:i + 2500]), 1))
    bodies = sorted(map(str, folder.glob("*.gz")))
    # the index named in the URL applies to actions that name none
    cmd = ["bash", str(BENCH / "ceiling.sh"), f"{ES}/{index}/_bulk", str(clients), *bodies]
    _, res = resources(cmd)
    return res


def bench_consume(args, work: Path, n: dict) -> dict:
    run = uuid.uuid4().hex[:6]
    out: dict = {}
    topic = fill_topic(args, n["consume"])
    idx = f"bench-logpipe-{run}"
    # logpipe's defaults: what a user gets (docs/performance.md)
    p, res = resources([logpipe(args), "consume", "-b", KAFKA, "-t", topic, "-g", f"g-{idx}", "-e", ES,
                        "-i", idx, "--until-idle", "2"])
    summary = json.loads(p.stdout.decode().strip().splitlines()[-1])
    busy = res["wall_s"] - 2  # the idle wait at the end is not work
    out["logpipe"] = {**res, "docs": summary["indexed"], "docs_per_s": summary["indexed"] / busy,
                      "cpu_s_per_million": res["cpu_s"] / summary["indexed"] * 1e6}
    assert es_count(idx) == n["consume"], "logpipe did not index everything"

    pidx = f"bench-python-{run}"
    copy_template(idx, pidx)
    ptopic = fill_topic(args, n["python_consume"])
    p, res = resources([PY, str(BENCH / "python_consume.py"), KAFKA, ptopic, f"g-{pidx}", ES, pidx,
                        str(n["python_consume"])], cwd=BENCH)
    r = json.loads(p.stdout)
    out["python"] = {**res, "docs": r["documents"], "docs_per_s": r["docs_per_s"],
                     "cpu_s_per_million": res["cpu_s"] / r["documents"] * 1e6}

    cidx = f"bench-ceiling-{run}"
    copy_template(idx, cidx)
    lines = generate(args, "seed", n["consume"], work / f"seed-{n['consume']}.log")
    res = ceiling(args, work, lines, n["consume"], cidx)
    docs = es_count(cidx)
    out["ceiling"] = {**res, "docs": docs, "docs_per_s": docs / res["wall_s"],
                      "cpu_s_per_million": res["cpu_s"] / docs * 1e6}
    fb = fluent_bit.consume(KAFKA, ES, topic, n["consume"])  # the topic logpipe read, in a group of its own
    if fb:
        out["fluent_bit"] = fb
        out["cpu_vs_fluent_bit"] = out["logpipe"]["cpu_s_per_million"] / fb["cpu_s_per_million"]
        out["vs_fluent_bit"] = out["logpipe"]["docs_per_s"] / fb["docs_per_s"]
    out["logpipe_pct_of_ceiling"] = 100 * out["logpipe"]["docs_per_s"] / out["ceiling"]["docs_per_s"]
    out["vs_python"] = out["logpipe"]["docs_per_s"] / out["python"]["docs_per_s"]
    out["cpu_vs_python"] = out["logpipe"]["cpu_s_per_million"] / out["python"]["cpu_s_per_million"]
    for i in (idx, pidx, cidx):
        requests.delete(f"{ES}/{i}", timeout=60)
    return out


# ---- latency and scaling -----------------------------------------------------------

LATENCY_REFRESH_MS = 500


def bench_latency(args, n: dict) -> dict:
    """With the cluster's refresh interval (1 s), then with the index's set
    to LATENCY_REFRESH_MS by consume --refresh-ms: a document is searchable
    only after the refresh that follows its indexing, so the interval is
    most of the latency (docs/performance.md)."""
    out = latency_run(args, n)
    out[f"refresh_ms_{LATENCY_REFRESH_MS}"] = latency_run(args, n, ["--refresh-ms", str(LATENCY_REFRESH_MS)])
    return out


def latency_run(args, n: dict, consume_args: list[str] | None = None, rate: int = 5000) -> dict:
    topic, run = new_topic(), uuid.uuid4().hex[:6]
    idx = f"bench-latency-{run}"
    seconds = n["latency_s"]
    consumer = subprocess.Popen([logpipe(args), "consume", "-b", KAFKA, "-t", topic, "-g", f"g-{idx}", "-e", ES,
                                 "-i", idx, "--flush-ms", "200", "--max-seconds", str(seconds + 30),
                                 *(consume_args or [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # joined the group
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                r = requests.get(f"{ES}/{idx}/_count", timeout=5)
                if r.ok:
                    samples.append((time.perf_counter(), int(r.json()["count"])))
            except requests.RequestException:
                pass
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    total = rate * seconds
    t0 = time.perf_counter()
    sh([logpipe(args), "produce", "-b", KAFKA, "-t", topic, "--count", str(total), "--rate", str(rate),
        "--linger-ms", "5"])
    deadline = time.time() + 30
    while time.time() < deadline and (not samples or samples[-1][1] < total):
        time.sleep(0.2)
    stop.set()
    poller.join()
    consumer.terminate()
    # its rusage: the CPU a steady rate costs, where batches are partial
    _, status, usage = os.wait4(consumer.pid, 0)
    consumer.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu_s = usage.ru_utime + usage.ru_stime
    requests.delete(f"{ES}/{idx}", timeout=60)
    # message k was sent at t0 + k/rate; it is searchable at the first sample counting > k
    lat = []
    si = 0
    for k in range(0, total, max(1, total // 2000)):
        while si < len(samples) and samples[si][1] <= k:
            si += 1
        if si == len(samples):
            break
        lat.append(samples[si][0] - (t0 + k / rate))
    lat.sort()
    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    return {"rate": rate, "seconds": seconds, "p50_s": q(0.50), "p99_s": q(0.99), "max_s": lat[-1],
            "samples": len(lat), "cpu_s_per_m": round(cpu_s / total * 1e6, 2)}


def bench_scaling(args, work: Path, n: dict) -> dict:
    return scaling(args, work, n["scaling"], KAFKA, ES, partitions=4, members=(1, 2, 4))


def bench_cluster(args, work: Path, n: dict) -> dict:
    """The same on the three-broker, three-node cluster: each index made
    beforehand with 3 primaries and 1 replica, so every node indexes (the
    cluster's default of 1 primary would put all the work on one node)."""
    return scaling(args, work, n["scaling"], CLUSTER_KAFKA, CLUSTER_ES, partitions=6, members=(1, 2, 4, 6),
                   replication=3, index_settings={"number_of_shards": 3, "number_of_replicas": 1})


def scaling(args, work: Path, count: int, kafka: str, es: str, partitions: int, members: tuple[int, ...],
            replication: int = 1, index_settings: dict | None = None) -> dict:
    """Each member's log (-v: its assignments and revocations) is kept in
    .cache/bench/scaling-<k>-<i>.log, and a run that did not index the whole
    topic stops the benchmark rather than report a throughput for part of it."""
    out = {}
    topic = fill_topic(args, count, partitions, kafka, replication)
    for k in members:
        idx = f"bench-scale{k}-{uuid.uuid4().hex[:6]}"
        if index_settings:
            requests.put(f"{es}/{idx}", json={"settings": index_settings}, timeout=120).raise_for_status()
        logs = [work / f"scaling-{k}-{i}.log" for i in range(k)]
        t0 = time.perf_counter()
        procs = [subprocess.Popen([logpipe(args), "consume", "-b", kafka, "-t", topic, "-g", f"g-{idx}", "-e", es,
                                   "-i", idx, "--until-idle", "3", "-v"], stdout=subprocess.DEVNULL,
                                  stderr=log.open("w")) for log in logs]
        codes = [p.wait() for p in procs]
        secs = time.perf_counter() - t0 - 3
        # a member that died leaves its partitions idle for session.timeout.ms: not a throughput
        assert codes == [0] * k, f"{k} consumer(s) exited {codes}: read {logs}"
        docs = es_count(idx, es)
        assert docs == count, f"{k} consumer(s) indexed {docs} of {count}: read {logs}"
        out[str(k)] = {"docs": docs, "docs_per_s": docs / secs}
        requests.delete(f"{es}/{idx}", timeout=60)
    return out


# ---- report --------------------------------------------------------------------------

def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                     platform.processor())
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def table(r: dict) -> str:
    rows = []
    for fmt, p in r.get("parse", {}).items():
        if "pcre2_lines_per_s" not in p:  # the realistic mix: logpipe alone
            rows.append(f"parse {fmt:<8} logpipe {p['logpipe_lines_per_s']:>12,.0f} lines/s | "
                        f"{p['instructions_per_line']['logpipe']:,.0f} instr/line")
            continue
        rows.append(f"parse {fmt:<8} logpipe {p['logpipe_lines_per_s']:>12,.0f} lines/s | "
                    f"{p['vs_python']:5.1f}x Python ({p['python_lines_per_s']:,.0f}) | "
                    f"{p['vs_pcre2']:4.2f}x PCRE2-JIT ({p['pcre2_lines_per_s']:,.0f}) | "
                    f"{p['instructions_per_line']['logpipe']:,.0f} vs {p['instructions_per_line']['pcre2']:,.0f} "
                    f"instr/line")
    if "parse" in r:
        p = r["parse"]["seed"]
        rows.append(f"parse seed     Fluent Bit {p['fluent_bit']['lines_per_s']:>9,.0f} lines/s | logpipe "
                    f"{p['vs_fluent_bit']:4.2f}x the lines/s at {p['cpu_vs_fluent_bit']:4.2f}x the CPU/M "
                    f"({p['logpipe_cpu_s_per_million']:.2f}s vs {p['fluent_bit']['cpu_s_per_million']:.2f}s)"
                    if "fluent_bit" in p else f"parse seed     Fluent Bit {fluent_bit.SKIPPED}")
    if "produce" in r:
        p = r["produce"]
        rows.append(f"produce        logpipe {p['logpipe_msgs_per_s']:>12,.0f} msgs/s  | "
                    f"{p['vs_python_seed']:7.0f}x Python flush-each ({p['python_seed_msgs_per_s']:,.0f}) | "
                    f"{p['vs_python_batched']:4.1f}x Python batched ({p['python_batched_msgs_per_s']:,.0f}) | "
                    f"{p['vs_kcat']:4.2f}x kcat ({p['kcat_msgs_per_s']:,.0f})")
    if "consume" in r:
        c = r["consume"]
        rows.append(f"consume        logpipe {c['logpipe']['docs_per_s']:>12,.0f} docs/s  | "
                    f"{c['logpipe_pct_of_ceiling']:5.1f}% of ceiling ({c['ceiling']['docs_per_s']:,.0f}) | "
                    f"{c['vs_python']:4.1f}x Python ({c['python']['docs_per_s']:,.0f}) | CPU/M "
                    f"{c['logpipe']['cpu_s_per_million']:.1f}s vs {c['python']['cpu_s_per_million']:.1f}s | "
                    f"RSS {c['logpipe']['peak_rss_mb']:.0f} vs {c['python']['peak_rss_mb']:.0f} MB")
    if "consume" in r:
        c = r["consume"]
        rows.append(f"consume        Fluent Bit {c['fluent_bit']['docs_per_s']:>9,.0f} docs/s  | logpipe "
                    f"{c['vs_fluent_bit']:4.2f}x the docs/s at {c['cpu_vs_fluent_bit']:4.2f}x the CPU/M "
                    f"({c['logpipe']['cpu_s_per_million']:.1f}s vs {c['fluent_bit']['cpu_s_per_million']:.1f}s) | "
                    f"RSS {c['logpipe']['peak_rss_mb']:.0f} vs {c['fluent_bit']['peak_rss_mb']:.0f} MB"
                    if "fluent_bit" in c else f"consume        Fluent Bit {fluent_bit.SKIPPED}")
    if "latency" in r:
        la = r["latency"]
        for label, run in (("refresh 1 s", la), (f"--refresh-ms {LATENCY_REFRESH_MS}",
                                                 la.get(f"refresh_ms_{LATENCY_REFRESH_MS}"))):
            if run:
                rows.append(f"latency        {run['rate']} msg/s for {run['seconds']} s, {label}: p50 "
                            f"{run['p50_s']:.2f} s, p99 {run['p99_s']:.2f} s, max {run['max_s']:.2f} s, "
                            f"{run['cpu_s_per_m']:.1f} CPU-s/M")
    for stage in ("scaling", "cluster"):
        if stage in r:
            rows.append(f"{stage:<15}" + ", ".join(f"{k} consumer(s) {v['docs_per_s']:,.0f} docs/s"
                                                   for k, v in r[stage].items()))
    return "\n".join(rows)


def chart(r: dict, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if "parse" in r:
        p = r["parse"]["seed"]
        panels.append(("parse (seed), lines/s", {"logpipe": p["logpipe_lines_per_s"], "PCRE2-JIT": p["pcre2_lines_per_s"],
                                                  "Python re": p["python_lines_per_s"]}))
    if "produce" in r:
        p = r["produce"]
        panels.append(("produce, msgs/s", {"logpipe": p["logpipe_msgs_per_s"], "kcat": p["kcat_msgs_per_s"],
                                           "Python batched": p["python_batched_msgs_per_s"],
                                           "Python flush-each": p["python_seed_msgs_per_s"]}))
    if "consume" in r:
        c = r["consume"]
        panels.append(("consume + index, docs/s", {"ceiling": c["ceiling"]["docs_per_s"],
                                                   "logpipe": c["logpipe"]["docs_per_s"],
                                                   "Python": c["python"]["docs_per_s"]}))
    for stage, title in (("scaling", "scaling, 4 partitions"), ("cluster", "cluster, 6 partitions, 3+3 nodes")):
        if stage in r:
            panels.append((f"{title}, docs/s (linear)",
                           {f"{k} consumer{'s' if k != '1' else ''}": v["docs_per_s"] for k, v in r[stage].items()}))
    if not panels:  # latency alone: a table row, no throughput to chart
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (title, values) in zip(axes if len(panels) > 1 else [axes], panels, strict=True):
        ax.bar(list(values), list(values.values()), color=["#2a6f97" if k == "logpipe" or "consumer" in k else "#a9a9a9" for k in values])
        ax.set_yscale("linear" if "(linear)" in title else "log")  # contenders span 100x; members do not
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"logpipe benchmark ({r['mode']}, {r['machine']['cores']} cores, {r['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=list(SIZES), default="quick")
    ap.add_argument("--stages", default="parse,produce,consume,latency,scaling")
    ap.add_argument("--logpipe", default=str(ROOT / "build" / "logpipe"))
    ap.add_argument("--pcre2", default=str(ROOT / "build" / "bench_pcre2_parse"))
    ap.add_argument("--out", default=str(BENCH / "results"))
    args = ap.parse_args()
    n = SIZES[args.mode]
    work = ROOT / ".cache" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    for tool in ("taskset", "valgrind", "kcat", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing: run stack/deps.sh")
    result: dict = {"mode": args.mode, "date": dt.date.today().isoformat(), "machine": machine(),
                    "command": f"make bench{'-cluster' if args.stages == 'cluster' else ''} BENCH_MODE={args.mode}"}
    stages = {"parse": bench_parse, "produce": bench_produce, "consume": bench_consume,
              "latency": lambda a, w, s: bench_latency(a, s), "scaling": bench_scaling,
              "cluster": bench_cluster}
    for name in args.stages.split(","):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        result[name] = stages[name](args, work, n)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{result['date']}-{args.mode}{'-cluster' if args.stages == 'cluster' else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    charted = chart(result, stem.with_suffix(".png"))
    print(table(result))
    print(f"bench: wrote {stem}.json" + (f" and {stem}.png" if charted else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
