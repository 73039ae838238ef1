"""fluent_bit.py: Fluent Bit as an optional baseline of bench/run.py.

`FLUENT_BIT=/path/to/fluent-bit make bench` runs the parse stage (the seed
format through Fluent Bit's regex parser, bench/fluent-bit/parse.conf) and the
consume stage (the same Kafka topic into Elasticsearch, consume.conf, under
an index template of the same field types, template.json) through it, beside
logpipe. Without the variable every function here returns None and the table
says the rows were skipped. Fluent Bit itself is never part of this repository:
docs/performance.md says how the compared build was obtained.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import requests

CONF = Path(__file__).resolve().parent / "fluent-bit"
SKIPPED = "skipped (set FLUENT_BIT=/path/to/fluent-bit to run Fluent Bit beside logpipe)"


def binary() -> str | None:
    path = os.environ.get("FLUENT_BIT")
    if path and not os.access(path, os.X_OK):
        raise SystemExit(f"FLUENT_BIT={path}: not an executable file")
    return path or None


def version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def env(**values: str) -> dict[str, str]:
    return {**os.environ, "FLB_BENCH_DIR": str(CONF), **{f"FLB_{k.upper()}": v for k, v in values.items()}}


def _parse_run(path: str, lines: Path) -> tuple[float, float]:
    """Wall and CPU-seconds of one Fluent Bit run over `lines`, pinned to core 0.
    Its stdin input needs a pipe (epoll refuses a regular file), so `cat` feeds
    it from core 1; Fluent Bit exits when the pipe closes."""
    with open(lines, "rb") as i:
        feeder = subprocess.Popen(["taskset", "-c", "1", "cat"], stdin=i, stdout=subprocess.PIPE)
        t0 = time.perf_counter()
        fb = subprocess.Popen(["taskset", "-c", "0", path, "-q", "-c", str(CONF / "parse.conf")],
                              stdin=feeder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        assert feeder.stdout is not None
        feeder.stdout.close()
        _, status, usage = os.wait4(fb.pid, 0)
        wall = time.perf_counter() - t0
        fb.returncode = os.waitstatus_to_exitcode(status)
        feeder.wait()
    if fb.returncode != 0:
        raise SystemExit(f"fluent-bit -c parse.conf exited {fb.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def parse(lines: Path, count: int, repeat: int) -> dict | None:
    """Lines/s and CPU-seconds per million lines of Fluent Bit's regex parser,
    best of `repeat` runs, each less a run on empty input: Fluent Bit spends
    about a second starting and draining before it exits, which is not parsing
    and would flatter logpipe."""
    path = binary()
    if not path:
        return None
    idle_wall, idle_cpu = min(_parse_run(path, Path(os.devnull)) for _ in range(repeat))
    wall, cpu = min(_parse_run(path, lines) for _ in range(repeat))
    return {"version": version(path), "lines_per_s": count / (wall - idle_wall),
            "cpu_s_per_million": (cpu - idle_cpu) / count * 1e6}


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU-seconds (user + system) and peak RSS (MB) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return cpu, hwm / 1024


def consume(kafka: str, es: str, topic: str, count: int, timeout_s: float = 900) -> dict | None:
    """Fluent Bit reads the whole topic into a fresh index: documents/s up to
    the moment the index counts them all, CPU-seconds and peak RSS then."""
    path = binary()
    if not path:
        return None
    idx = f"bench-fluentbit-{uuid.uuid4().hex[:6]}"
    tpl = json.loads((CONF / "template.json").read_text())
    tpl["index_patterns"] = [idx]
    requests.put(f"{es}/_index_template/bench-{idx}", json=tpl, timeout=30).raise_for_status()
    u = urlparse(es)
    p = subprocess.Popen([path, "-c", str(CONF / "consume.conf")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE,
                         env=env(brokers=kafka, topic=topic, group=f"g-{idx}", es_host=u.hostname or "127.0.0.1",
                                 es_port=str(u.port or 9200), index=idx))
    t0 = time.perf_counter()
    docs = 0
    try:
        while time.perf_counter() - t0 < timeout_s and p.poll() is None:
            time.sleep(0.5)
            requests.post(f"{es}/{idx}/_refresh", timeout=120)
            r = requests.get(f"{es}/{idx}/_count", timeout=60)
            docs = int(r.json().get("count", 0)) if r.ok else 0
            if docs >= count:
                break
        wall = time.perf_counter() - t0
        if p.poll() is not None:
            raise SystemExit(f"fluent-bit exited {p.returncode}: {p.stderr.read().decode()[-800:]}")
        cpu, rss = cpu_and_rss(p.pid)
    finally:
        p.terminate()
        p.wait(timeout=60)
        requests.delete(f"{es}/{idx}", timeout=60)
        requests.delete(f"{es}/_index_template/bench-{idx}", timeout=30)
    if docs != count:
        raise SystemExit(f"fluent-bit indexed {docs} of {count} documents in {timeout_s:.0f} s")
    return {"version": version(path), "docs": docs, "wall_s": wall, "docs_per_s": docs / wall, "cpu_s": cpu,
            "cpu_s_per_million": cpu / docs * 1e6, "peak_rss_mb": rss}
