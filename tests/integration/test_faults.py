"""Fault tests: the consumer loses nothing and duplicates nothing when the
world misbehaves. Every test runs against the real Kafka and Elasticsearch,
is bounded in time, and ends with the same check: every accepted message is
in Elasticsearch exactly once (count and committed offsets), every rejected
one is in the dead-letter topic exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

import requests
from confluent_kafka import Producer
from conftest import ROOT, create_topic, es_count
from faultproxy import FaultProxy, Faults
from helpers import (
    START,
    assert_dead_lettered_once,
    committed,
    cpu_seconds,
    good_lines,
    high_watermarks,
    peak_rss_kb,
    read_topic,
    run,
    wait_group_empty,
)

STACK = ["bash", str(ROOT / "stack" / "stack.sh")]
# A killed member must leave the group quickly for the next one to get its partitions.
FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]


def produce(logpipe_bin, kafka, topic, count, seed=1, ratio="0"):
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", str(count), "--seed", str(seed),
            "--start", START, "--malformed-ratio", ratio, timeout=300)
    assert r.code == 0, r.stderr


class HealthWatch:
    """Polls a --metrics-listen /healthz twice a second, keeping each answer."""

    def __init__(self, url: str) -> None:
        self.url, self.answers, self.done = url, [], threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def poll(self) -> None:
        while not self.done.wait(0.5):
            try:
                r = requests.get(self.url, timeout=5)
                self.answers.append((r.status_code, r.text.strip()))
            except requests.RequestException:
                pass

    def stop(self) -> list[tuple[int, str]]:
        self.done.set()
        self.thread.join(10)
        return self.answers


def start_consumer(logpipe_bin, kafka, es, topic, group, index, *extra) -> subprocess.Popen:
    return subprocess.Popen([logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es,
                             "-i", index, *FAST_GROUP, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        logpipe_lines = "".join(x for x in err.splitlines(keepends=True) if x.startswith("logpipe"))
        raise AssertionError(f"logpipe did not finish in {timeout} s; its log:\n{logpipe_lines[-6000:]}\n"
                             f"last lines:\n{err[-3000:]}") from None
    return p.returncode, out, err


def consume_to_end(logpipe_bin, kafka, es, topic, group, index, *extra):
    r = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
            "--until-idle", "4", *FAST_GROUP, *extra, timeout=600)
    assert r.code == 0, r.stderr
    return r


def assert_exact(kafka, es, topic, group, index, expected_docs):
    assert es_count(es, index) == expected_docs
    marks = high_watermarks(kafka, topic)
    done = committed(kafka, group, topic, len(marks))
    assert {p: o for p, o in done.items() if marks[p]} == {p: o for p, o in marks.items() if o}


def wait_for_count(es, index, at_least, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if es_count(es, index) >= at_least:
                return
        except requests.RequestException:
            pass  # Elasticsearch restarting: keep waiting
        time.sleep(0.5)
    raise AssertionError(f"{index} never reached {at_least} documents")


def test_kill_9_at_five_random_moments(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 200_000, seed=21, ratio="0.01")
    group, index = f"g-{unique}", unique
    rng = random.Random(unique)
    for _ in range(5):
        p = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "30")
        time.sleep(rng.uniform(1.0, 6.0))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    wait_group_empty(kafka, group)
    r = consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    good = good_lines(logpipe_bin, 200_000, 21, "0.01")
    assert_exact(kafka, es, topic, group, index, good)
    # Every rejected message is in the dead-letter topic exactly once for a
    # read_committed reader: the dead letters of a killed run's open
    # transaction were aborted, and written again by the run that committed.
    assert_dead_lettered_once(kafka, topic, 200_000 - good)
    assert r.summary()["exit_code"] == 0


def log_lines(p: subprocess.Popen) -> tuple[list[str], threading.Thread]:
    """Collects a running consumer's log line by line, as logpipe writes them."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stderr.readline, "")), daemon=True)
    reader.start()
    return lines, reader


def wait_for_line(lines: list[str], text: str, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = next((x for x in lines if text in x), None)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"logpipe never logged {text!r}; its log:\n{''.join(lines)[-3000:]}")


def take_over_transactional_id(kafka: str, lines: list[str]) -> None:
    """Fences a consumer's dead-letter producer (its -v log names its
    transactional.id) the way a coordinator does that aborted its
    transaction: another producer takes the same id."""
    txn_id = wait_for_line(lines, "transactional.id").split()[-1]
    Producer({"bootstrap.servers": kafka, "transactional.id": txn_id}).init_transactions(30)


def test_a_fenced_dead_letter_producer_is_replaced_and_nothing_is_lost(logpipe_bin, kafka, es, topic, unique):
    # A broker that was away long enough aborts the open transaction and
    # fences its producer for good; another producer taking the same
    # transactional.id does exactly that, on demand.
    produce(logpipe_bin, kafka, topic, 200_000, seed=26, ratio="0.01")
    group, index = f"g-{unique}", unique
    p = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "5", "-v",
                       "--batch-docs", "1000")
    lines, reader = log_lines(p)
    try:
        wait_for_count(es, index, 10_000)
        take_over_transactional_id(kafka, lines)
        code = p.wait(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    reader.join(timeout=10)
    err = "".join(lines)
    assert code == 0, err
    assert "a new dead-letter producer took over" in err
    good = good_lines(logpipe_bin, 200_000, 26, "0.01")
    assert_exact(kafka, es, topic, group, index, good)
    assert_dead_lettered_once(kafka, topic, 200_000 - good)


def test_elasticsearch_down_30s_backs_off_commits_nothing_unindexed_and_resumes(
        logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 100_000, seed=22)
    group, index = f"g-{unique}", unique
    p = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "5",
                       "--batch-docs", "1000")
    try:
        wait_for_count(es, index, 5_000)
        subprocess.run([*STACK, "stop", "es"], check=True, timeout=120)
        time.sleep(30)
        # While Elasticsearch is down, nothing beyond what it acknowledged is committed.
        marks = high_watermarks(kafka, topic)
        committed_during = sum(max(o, 0) for o in committed(kafka, group, topic, len(marks)).values())
        subprocess.run([*STACK, "up"], check=True, timeout=300)
        assert committed_during <= es_count(es, index)
        code, out, err = finish(p, timeout=300)
    finally:
        subprocess.run([*STACK, "up"], check=True, timeout=300)
        if p.poll() is None:
            p.kill()
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    # Backoff, not a tight loop: 30 s of outage costs a few dozen retries at most.
    assert 0 < summary["retries"] < 60, summary
    assert_exact(kafka, es, topic, group, index, 100_000)


def test_partial_429_and_503_are_retried_to_exactness(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 30_000, seed=23)
    faults = Faults(item_429_every=3, item_429_requests=6, fail_503_requests=2)
    with FaultProxy(es, faults) as proxy:
        r = consume_to_end(logpipe_bin, kafka, proxy.url, topic, f"g-{unique}", unique,
                           "--batch-docs", "2000")
    s = r.summary()
    assert faults.rewritten_items > 0
    assert s["retries"] >= faults.rewritten_items // 2 + 2, (s, faults.rewritten_items)
    assert s["indexed"] == 30_000 and s["refused"] == 0
    assert_exact(kafka, es, topic, f"g-{unique}", unique, 30_000)


def test_broker_restart_during_produce_and_consume(logpipe_bin, kafka, es, topic, unique):
    try:
        prod = subprocess.Popen([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "150000",
                                 "--rate", "30000", "--seed", "24", "--start", START, "--malformed-ratio", "0.05"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        subprocess.run([*STACK, "stop", "kafka"], check=True, timeout=120)
        time.sleep(3)
        subprocess.run([*STACK, "up"], check=True, timeout=300)
        _, perr = prod.communicate(timeout=300)
        assert prod.returncode == 0, perr
        # Idempotence: exactly the generated lines, none twice.
        assert sum(high_watermarks(kafka, topic).values()) == 150_000

        group, index = f"g-{unique}", unique
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "15", "-v",  # -v: the recovery steps in the log
                           "--metrics-listen", f"127.0.0.1:{port}", "--unhealthy-after", "5")
        wait_for_count(es, index, 10_000)
        health = HealthWatch(f"http://127.0.0.1:{port}/healthz")
        subprocess.run([*STACK, "stop", "kafka"], check=True, timeout=120)
        # Dead-letter transactions are in flight (5% malformed lines). When a
        # restart is slow the assignment is lost (session.timeout.ms 6 s) and
        # the abort times out: that replaces the dead-letter producer instead
        # of ending the run (it ended it with exit 4). Longer outages meet
        # librdkafka#5456 (docs/guarantees.md: exit 5), so this one stays short.
        time.sleep(3)
        subprocess.run([*STACK, "up"], check=True, timeout=300)
        answers = health.stop()
        code, _, err = finish(p)
        # /healthz said why while the broker was away (Kafka down ~20 s, --unhealthy-after 5):
        # from librdkafka's statistics, or from a transaction commit waiting on it
        assert any(status == 503 and "Kafka unreachable" in text for status, text in answers), \
            [a for i, a in enumerate(answers) if i == 0 or a[0] != answers[i - 1][0]]  # each change of status
        assert code == 0, err
    finally:
        subprocess.run([*STACK, "up"], check=True, timeout=300)
    # The consumer may have stopped idle while the broker was away; a rerun finishes.
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    good = good_lines(logpipe_bin, 150_000, 24, "0.05")
    assert_exact(kafka, es, topic, group, index, good)
    assert_dead_lettered_once(kafka, topic, 150_000 - good)


def finish_members(a: subprocess.Popen, b: subprocess.Popen, timeout: float = 300) -> None:
    """Waits for a second member b, then the first member a: both must exit
    0, and a must really have been through a rebalance."""
    bcode, _, berr = finish(b)
    acode, _, aerr = finish(a, timeout=timeout)
    assert bcode == 0, berr
    assert acode == 0, aerr
    assert "revoking" in aerr


def test_rebalance_when_a_member_joins_and_leaves(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 150_000, seed=25)
    group, index = f"g-{unique}", unique
    a = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "10", "-v",
                       "--batch-docs", "1000")
    wait_for_count(es, index, 5_000)
    b = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "30", "-v",
                       "--batch-docs", "1000")
    time.sleep(8)
    b.send_signal(signal.SIGTERM)
    finish_members(a, b)
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert_exact(kafka, es, topic, group, index, 150_000)


def wait_for_bulks(faults: Faults, count: int, timeout: float = 60) -> None:
    """Waits until the fault proxy has received `count` bulk requests."""
    deadline = time.time() + timeout
    while faults.bulk_requests < count and time.time() < deadline:
        time.sleep(0.2)
    assert faults.bulk_requests >= count, "the consumer never sent its bulks"


def first_bulk_after(faults: Faults, producer: Producer, topic: str, line: bytes, count: int,
                     every_s: float) -> float:
    """Sends count messages every_s apart; returns how long after the first
    the next bulk request reached the proxy (the trickle goes on meanwhile)."""
    sent, t0, waited = faults.bulk_requests, time.perf_counter(), None
    for i in range(count):
        producer.produce(topic, line)
        producer.flush(10)
        if i == 0:
            t0 = time.perf_counter()
        next_at = time.perf_counter() + every_s
        while time.perf_counter() < next_at:
            if waited is None and faults.bulk_requests > sent:
                waited = time.perf_counter() - t0
            time.sleep(0.01)
    while waited is None and time.perf_counter() - t0 < 15:
        if faults.bulk_requests > sent:
            waited = time.perf_counter() - t0
        time.sleep(0.01)
    assert waited is not None, "no bulk came"
    return waited


def test_a_partial_batch_waits_a_quarter_of_flush_ms_when_no_bulk_is_in_flight(
        logpipe_bin, kafka, es, topic, unique):
    # --flush-ms is how long a partial batch waits for more while a bulk is in
    # flight; with none in flight Elasticsearch is idle and the batch goes
    # after a quarter of it (a trickle's latency), not at once (a bulk per
    # message) nor after the whole of it. Twice: one message, and a trickle
    # of 20 a second (whose every poll returns a message, so the loop's
    # clock must be read after a poll that waited, not every 64 messages).
    group, index = f"g-{unique}", unique
    line = b'1.2.3.4 - - [Jan 21 2026, 22:23:40] "GET /trickle HTTP/1.1" 200 1 "-" "-"'
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": 0})
    faults = Faults()
    with FaultProxy(es, faults) as proxy:
        p = start_consumer(logpipe_bin, kafka, proxy.url, topic, group, index, "--flush-ms", "4000",
                           "--until-idle", "30")
        producer.produce(topic, line)
        producer.flush(10)
        wait_for_bulks(faults, 1)  # joined the group and sent the first
        time.sleep(1.5)  # that bulk answered: nothing in flight
        one = first_bulk_after(faults, producer, topic, line, 1, 0)
        time.sleep(1.5)
        trickle = first_bulk_after(faults, producer, topic, line, 60, 0.05)
        p.send_signal(signal.SIGTERM)
        code, _, err = finish(p)
    assert code == 0, err
    # ~1.0 s measured; 4.0 s before the quarter, and the trickle's ~2 s
    # when the clock was read only every 64 messages
    assert 0.7 <= one <= 1.7, f"one message's bulk went after {one:.2f} s (want ~1 s of --flush-ms 4000)"
    assert 0.7 <= trickle <= 1.7, f"a trickle's first bulk went after {trickle:.2f} s (want ~1 s)"
    assert_exact(kafka, es, topic, group, index, 62)


def test_a_rebalance_while_the_partitions_are_paused_does_not_leave_them_paused(
        logpipe_bin, kafka, es, topic, unique):
    # librdkafka keeps a partition's pause across a revocation and a new
    # assignment. Elasticsearch answering in 8 s makes every slot busy and
    # the consumer pause its partitions; a second member joins meanwhile, so
    # the first one's partitions are revoked while paused and come back.
    produce(logpipe_bin, kafka, topic, 30_000, seed=28)
    group, index = f"g-{unique}", unique
    faults = Faults(delay_s=8)
    with FaultProxy(es, faults) as proxy:
        a = start_consumer(logpipe_bin, kafka, proxy.url, topic, group, index, "--until-idle", "6", "-v",
                           "--batch-docs", "500")
        wait_for_bulks(faults, 2)
        time.sleep(2.5)  # both slots busy, the next batch full for more than a second: paused
        b = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "30", "-v",
                           "--batch-docs", "500")
        faults.delay_s = 0  # bulks sent from now on (the revocation's drain) answer at once
        time.sleep(12)
        b.send_signal(signal.SIGTERM)
        finish_members(a, b, timeout=120)
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert_exact(kafka, es, topic, group, index, 30_000)


def test_poison_messages_go_to_the_dlq_and_good_ones_around_them_are_indexed(
        logpipe_bin, kafka, es, kafka_admin, unique):
    topic = f"poison-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    index = unique
    # The index disagrees with the template on url.query: documents with a
    # query string are refused by Elasticsearch (a real mapping conflict).
    requests.put(f"{es}/{index}", json={"mappings": {"properties": {"url": {"properties": {
        "query": {"type": "long"}}}}}}, timeout=30).raise_for_status()
    good = "1.2.3.4 - - [Jan 21 2026, 22:23:40] \"GET /ok HTTP/1.1\" 200 1 \"-\" \"-\""
    refused = "1.2.3.4 - - [Jan 21 2026, 22:23:41] \"GET /q?x=abc HTTP/1.1\" 200 1 \"-\" \"-\""
    poison = [b"\xff\xfe\xfd not utf-8 \xc0\xaf", b"nul\x00bytes\x00", b"", b"Z" * (5 << 20), refused.encode()]
    producer = Producer({"bootstrap.servers": kafka, "message.max.bytes": 10 << 20})
    sent = []
    for bad in poison:
        for value in (good.encode(), bad):
            producer.produce(topic, value)
            sent.append(value)
    producer.produce(topic, good.encode())
    assert producer.flush(30) == 0
    r = consume_to_end(logpipe_bin, kafka, es, topic, f"g-{unique}", index, "--no-template")
    s = r.summary()
    assert (s["consumed"], s["indexed"], s["rejected"], s["refused"], s["dead_lettered"]) == (11, 6, 4, 1, 5)
    assert es_count(es, index) == 6
    dlq = read_topic(kafka, f"{topic}.dlq", 5)
    assert sorted(m.value() or b"" for m in dlq) == sorted(poison)
    stages = {(m.value() or b"")[:20]: dict(m.headers())["logpipe.stage"] for m in dlq}
    assert stages[refused.encode()[:20]] == b"index"
    reason = next(dict(m.headers())["logpipe.reason"] for m in dlq if m.value() == refused.encode())
    assert b"mapper_parsing_exception" in reason or b"document_parsing_exception" in reason


def test_memory_stays_bounded_with_a_backlog_and_a_slow_elasticsearch(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 1_000_000, seed=26)
    peaks = []
    for backlog_group in (f"small-{unique}", f"big-{unique}"):
        faults = Faults(delay_s=0.3)
        with FaultProxy(es, faults) as proxy:
            p = start_consumer(logpipe_bin, kafka, proxy.url, topic, backlog_group, unique,
                               "--max-seconds", "15" if backlog_group.startswith("small") else "30")
            peak = peak_rss_kb(p)
            finish(p)
        peaks.append(peak)
    print(f"peak RSS (kB): 15 s run {peaks[0]}, 30 s run against the 1M backlog {peaks[1]}")
    # Twice as long against a 1M backlog: the peak does not grow with the backlog.
    assert peaks[1] < peaks[0] * 1.5 + 16_000, peaks
    if "asan" not in logpipe_bin:
        # A sanity cap, not the benchmark's target: with librdkafka's prefetch
        # bound at 6 MiB (smaller stalls fetching on 2.0.2, docs/performance.md)
        # a slow Elasticsearch keeps that queue full: 47-49 MB measured (80-85 MB
        # in CI with the 8 MiB bound and 1 MiB Fetch answers of before).
        assert peaks[1] < 100_000, peaks  # kB


def test_a_broker_frozen_for_70_s_mid_transaction_ends_exact(logpipe_bin, kafka, es, topic, unique):
    # The broker stopped (SIGSTOP) for 70 s, longer than transaction.timeout.ms:
    # the open transaction's dead letters time out, commits fail, the group
    # session expires. Depending on timing the consumer aborts and rewinds,
    # gives its partitions up, or (commits failing past 60 s) replaces its
    # dead-letter producer; every way must end exact once the broker is back
    # (CI once saw a consumer hang here, and another stop with exit 5).
    produce(logpipe_bin, kafka, topic, 100_000, seed=27, ratio="0.01")
    group, index = f"g-{unique}", unique
    p = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "5", "-v",
                       "--batch-docs", "1000")
    kafka_pgid = int((ROOT / ".stack" / "kafka" / "kafka.pid").read_text())
    try:
        wait_for_count(es, index, 10_000)
        os.killpg(kafka_pgid, signal.SIGSTOP)
        # By 45 s the prefetched messages are indexed and every commit
        # waits for the broker: the loop must wait too, not spin (it once
        # polled with no timeout when full, paused, and no bulk in flight).
        time.sleep(45)
        assert p.poll() is None, "the consumer stopped while the broker was frozen"
        before = cpu_seconds(p)
        time.sleep(20)
        idle_cpu = cpu_seconds(p) - before
        time.sleep(5)
        os.killpg(kafka_pgid, signal.SIGCONT)
        code, _, err = finish(p)
    finally:
        os.killpg(kafka_pgid, signal.SIGCONT)
        if p.poll() is None:
            p.kill()
    assert code == 0, err
    assert idle_cpu < 4, f"{idle_cpu:.1f} CPU-seconds in 20 s while waiting for a frozen broker"
    good = good_lines(logpipe_bin, 100_000, 27, "0.01")
    assert_exact(kafka, es, topic, group, index, good)
    assert_dead_lettered_once(kafka, topic, 100_000 - good)
