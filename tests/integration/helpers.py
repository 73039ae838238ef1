"""Small helpers the integration tests share: running logpipe, reading Kafka."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

# The generator's first timestamp in every test that produces generated lines.
START = "2026-01-21T22:23:40Z"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def summary(self) -> dict:
        """The JSON summary line logpipe consume prints on stdout."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run(logpipe: str, *args: str, timeout: float = 300, stdin: bytes | None = None) -> Run:
    p = subprocess.run([logpipe, *args], check=False, input=stdin, capture_output=True, timeout=timeout)
    return Run(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def cpu_seconds(p: subprocess.Popen) -> float:
    """CPU time (user + system, all threads) a running process has used so far."""
    import os
    from pathlib import Path

    fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb(p: subprocess.Popen) -> int:
    """Samples a running process's peak resident set (VmHWM) until it exits."""
    import time

    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            break
        time.sleep(0.2)
    return peak


def high_watermarks(kafka: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": kafka, "group.id": "logpipe-test-inspect"})
    try:
        md = c.list_topics(topic, timeout=30)
        parts = md.topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
    finally:
        c.close()


def read_topic(kafka: str, topic: str, expect: int, timeout: float = 60) -> list:
    """Reads a topic from the beginning until `expect` messages (or timeout)."""
    import time

    c = Consumer({"bootstrap.servers": kafka, "group.id": f"inspect-{topic}-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  # what a dead-letter reader must use: aborted transactions stay invisible
                  "isolation.level": "read_committed"})
    c.subscribe([topic])
    msgs = []
    deadline = time.time() + timeout
    try:
        while len(msgs) < expect and time.time() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                msgs.append(m)
        # a little longer, to catch any extra (duplicate) message
        end = time.time() + 2
        while time.time() < end:
            m = c.poll(0.5)
            if m is not None and not m.error():
                msgs.append(m)
    finally:
        c.close()
    return msgs


def committed(kafka: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def wait_group_empty(kafka: str, group: str, timeout: float = 60) -> None:
    """Waits until a consumer group has no members. A SIGKILLed member keeps
    its partitions until its session times out; a bounded run (--until-idle)
    started before then is assigned only the others and, having read them,
    rightly stops: the dead member's share is for the run after."""
    import time

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka})
    deadline = time.time() + timeout
    while True:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=30)
        if not desc.members:
            return
        if time.time() > deadline:
            raise AssertionError(f"group {group} still has {len(desc.members)} member(s) after {timeout} s")
        time.sleep(0.5)


def good_lines(logpipe_bin: str, count: int, seed: int, ratio: str, first: int | None = None) -> int:
    """How many of `logpipe generate`'s lines (same count, seed, ratio; of the
    first `first` of them) parse."""
    gen = subprocess.run([logpipe_bin, "generate", "--count", str(count), "--seed", str(seed), "--start", START,
                          "--malformed-ratio", ratio], capture_output=True, check=True).stdout
    if first is not None:
        gen = b"".join(gen.splitlines(keepends=True)[:first])
    return subprocess.run([logpipe_bin, "parse"], input=gen, capture_output=True, check=True).stdout.count(b"\n")


def assert_dead_lettered_once(kafka: str, topic: str, rejected: int) -> None:
    """Every rejected message in <topic>.dlq exactly once (read_committed)."""
    dlq = read_topic(kafka, f"{topic}.dlq", rejected)
    coords = [(dict(m.headers())["logpipe.partition"], dict(m.headers())["logpipe.offset"]) for m in dlq]
    assert len(set(coords)) == rejected, "a rejected message is missing from the dead-letter topic"
    assert len(coords) == len(set(coords)), "a rejected message was dead-lettered twice"
