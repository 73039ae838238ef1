"""Fault tests for the corners of exactly-once: work still in flight when a
revocation comes, and a final transaction that is aborted. Like
test_faults.py (whose helpers these share), each runs against the real Kafka
and Elasticsearch, with Elasticsearch behind the fault proxy where it must be
slow, and ends with what a user would check: exit codes, documents in
Elasticsearch, committed offsets and dead-letter records counted by their
source coordinates.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Self

from confluent_kafka import Consumer, Producer, TopicPartition
from conftest import create_topic, es_count
from faultproxy import FaultProxy, Faults
from helpers import assert_dead_lettered_once, committed, good_lines, read_topic, run
from test_config_errors import assert_untouched, consume
from test_faults import (
    assert_exact,
    consume_to_end,
    finish_members,
    log_lines,
    produce,
    start_consumer,
    take_over_transactional_id,
    wait_for_bulks,
    wait_for_line,
)


class CommittedWatch:
    """Samples a group's committed offsets twice a second and remembers any
    partition whose committed offset went down."""

    def __init__(self, kafka: str, group: str, topic: str, partitions: int) -> None:
        self.args = (kafka, group, topic, partitions)
        self.backwards: list[tuple[int, int, int]] = []
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last: dict[int, int] = {}
        while not self.stop.wait(0.5):
            for p, o in committed(*self.args).items():
                if o >= 0 and o < last.get(p, -1):
                    self.backwards.append((p, last[p], o))
                last[p] = max(o, last.get(p, -1))
            self.samples += 1

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def test_batches_in_flight_at_a_revocation_are_left_to_the_new_owner(logpipe_bin, kafka, es, topic, unique):
    # Elasticsearch answers each bulk in 4 s and the drain gives up after
    # 1 s, so when a second member joins, the first one's revocation leaves
    # bulks in flight, each with malformed lines. When they complete later,
    # their dead letters and offsets are no longer the first member's to
    # write: the partitions' new owner (possibly itself, again) reads them.
    produce(logpipe_bin, kafka, topic, 30_000, seed=29, ratio="0.02")
    group, index = f"g-{unique}", unique
    faults = Faults(delay_s=4)
    with FaultProxy(es, faults) as proxy, CommittedWatch(kafka, group, topic, 3) as watch:
        a = start_consumer(logpipe_bin, kafka, proxy.url, topic, group, index, "--until-idle", "8", "-v",
                           "--batch-docs", "500", "--drain-timeout", "1")
        wait_for_bulks(faults, 2)
        b = start_consumer(logpipe_bin, kafka, es, topic, group, index, "--until-idle", "8", "-v",
                           "--batch-docs", "500")
        time.sleep(10)  # the revocation, and the bulks it left behind answering after it
        faults.delay_s = 0
        finish_members(a, b)
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert watch.samples > 10 and not watch.backwards, watch.backwards
    good = good_lines(logpipe_bin, 30_000, 29, "0.02")
    assert_exact(kafka, es, topic, group, index, good)
    assert_dead_lettered_once(kafka, topic, 30_000 - good)


def fence_final_commit(logpipe_bin, kafka, es, topic, unique, *limits):
    """Runs one consumer with `limits` behind a slow Elasticsearch and fences
    its dead-letter producer (another producer takes its transactional.id,
    as a coordinator that aborted its transaction would) once it stopped
    reading: its final commit, made after the last bulks' slow answers, is
    the one that fails. Returns the exit code, the summary and the log."""
    faults = Faults(delay_s=3)
    with FaultProxy(es, faults) as proxy:
        p = start_consumer(logpipe_bin, kafka, proxy.url, topic, f"g-{unique}", unique, "-v",
                           "--batch-docs", "1000", *limits)
        lines, reader = log_lines(p)
        try:
            wait_for_line(lines, "stopping:")
            take_over_transactional_id(kafka, lines)
            faults.delay_s = 0
            p.wait(timeout=180)
        finally:
            if p.poll() is None:
                p.kill()
        reader.join(timeout=10)
    return p.returncode, json.loads(p.stdout.read().strip().splitlines()[-1]), "".join(lines)


def assert_exact_up_to_the_commit(logpipe_bin, kafka, es, topic, unique, count, seed, ratio):
    """One partition: the committed offset is where the run stands behind;
    every document below it is indexed, every reject below it dead-lettered
    once, and nothing at or above it is in either."""
    end = committed(kafka, f"g-{unique}", topic, 1)[0]
    good = good_lines(logpipe_bin, count, seed, ratio, first=end)
    assert es_count(es, unique) == good
    dlq = read_topic(kafka, f"{topic}.dlq", end - good)
    offsets = sorted(int(dict(m.headers())["logpipe.offset"]) for m in dlq)
    assert len(offsets) == end - good and len(set(offsets)) == len(offsets), offsets
    assert not offsets or offsets[-1] < end, (offsets[-1], end)
    return end, good


def test_a_fenced_final_commit_under_max_messages_reads_again_and_commits_exactly_n(
        logpipe_bin, kafka, es, kafka_admin, unique):
    topic = f"logs-{unique}"
    create_topic(kafka_admin, topic, partitions=1)  # one partition: which messages are the first N is exact
    produce(logpipe_bin, kafka, topic, 12_000, seed=30, ratio="0.01")
    code, summary, err = fence_final_commit(logpipe_bin, kafka, es, topic, unique, "--max-messages", "5000")
    print(f"exit {code}, summary {summary}")
    assert code == 0, err
    assert "the final commit was aborted: reading again" in err  # the fence hit the final commit
    assert committed(kafka, f"g-{unique}", topic, 1) == {0: 5000}, err
    _, good = assert_exact_up_to_the_commit(logpipe_bin, kafka, es, topic, unique, 12_000, 30, "0.01")
    assert summary["dead_lettered"] == 5000 - good, summary


def test_a_fenced_final_commit_under_max_seconds_stays_within_the_budget(
        logpipe_bin, kafka, es, kafka_admin, unique):
    topic = f"logs-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    produce(logpipe_bin, kafka, topic, 30_000, seed=31, ratio="0.01")
    code, summary, err = fence_final_commit(logpipe_bin, kafka, es, topic, unique, "--max-seconds", "12")
    print(f"exit {code}, summary {summary}")
    assert code == 0, err
    assert "the final commit was aborted: reading again" in err
    # 12 s of reading, the last bulks' 3 s, the re-read of what the aborted
    # transaction covered: not a second 12 s.
    assert summary["duration_s"] < 22, summary
    end, good = assert_exact_up_to_the_commit(logpipe_bin, kafka, es, topic, unique, 30_000, 31, "0.01")
    assert end > 0 and summary["dead_lettered"] == end - good, (end, summary)


def test_the_cooperative_rebalance_protocol_is_refused_before_anything_is_read(logpipe_bin, kafka, es, topic, unique):
    # Under cooperative-sticky, librdkafka refuses the consumer's
    # rd_kafka_assign() in the rebalance callback and nothing is ever read.
    run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10")
    r = consume(logpipe_bin, kafka, topic, unique, es, "-X", "partition.assignment.strategy=cooperative-sticky")
    assert r.code == 2, r.stderr
    assert "-X partition.assignment.strategy=cooperative-sticky: the cooperative rebalance protocol is not " \
           "supported" in r.stderr
    assert_untouched(kafka, es, topic, unique)


class UnstableOffsets:
    """Holds a group's committed offsets "unstable" while in the block:
    another producer (a transactional.id of its own) opens a transaction
    with an offset commit for the group and aborts it on leaving. A
    read_committed consumer's look-up of the committed offsets (logpipe's
    rewind) waits meanwhile, as it does for a crashed member's transaction."""

    def __init__(self, kafka: str, group: str, topic: str) -> None:
        self.producer = Producer({"bootstrap.servers": kafka, "transactional.id": f"unstable-{group}"})
        self.producer.init_transactions(30)
        self.producer.begin_transaction()
        member = Consumer({"bootstrap.servers": kafka, "group.id": group})  # never joins: generation -1
        try:
            self.producer.send_offsets_to_transaction([TopicPartition(topic, 0, 0)],
                                                      member.consumer_group_metadata(), 30)
        finally:
            member.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.producer.abort_transaction(30)


def wait_for_answers(faults: Faults, timeout: float = 120) -> None:
    """Waits until the fault proxy has answered every bulk it received."""
    deadline = time.time() + timeout
    while faults.bulk_answers < faults.bulk_requests and time.time() < deadline:
        time.sleep(0.1)
    assert faults.bulk_answers == faults.bulk_requests, "a bulk is still unanswered"


def test_a_rewind_under_until_idle_waits_for_the_messages_read_again(logpipe_bin, kafka, es, kafka_admin, unique):
    # The consumer reads all 1,500 messages (its partition at its end) into
    # slow bulks; its dead-letter producer is fenced, so the first commit
    # fails and it rewinds to the committed offsets, whose look-up then
    # waits (a transaction holds them unstable) for longer than
    # --until-idle. Idle that long with its partition "at its end", the run
    # must still forget that end and wait for the messages it reads again.
    topic = f"logs-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    produce(logpipe_bin, kafka, topic, 1_500, seed=32, ratio="0.02")
    group = f"g-{unique}"
    faults = Faults(delay_s=2)
    with FaultProxy(es, faults) as proxy:
        p = start_consumer(logpipe_bin, kafka, proxy.url, topic, group, unique, "-v", "--until-idle", "3",
                           "--batch-docs", "500")
        lines, reader = log_lines(p)
        try:
            wait_for_bulks(faults, 1)
            take_over_transactional_id(kafka, lines)
            with UnstableOffsets(kafka, group, topic):
                faults.delay_s = 0
                wait_for_line(lines, "a new dead-letter producer took over")
                wait_for_answers(faults)  # the rewind's drain is over: it looks the offsets up now
                time.sleep(5)
            p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        reader.join(timeout=10)
    err = "".join(lines)
    summary = json.loads(p.stdout.read().strip().splitlines()[-1])
    print(f"exit {p.returncode}, summary {summary}")
    assert p.returncode == 0, err
    assert "rewound 1 partition(s) to their committed offsets" in err, err
    good = good_lines(logpipe_bin, 1_500, 32, "0.02")
    assert_exact(kafka, es, topic, group, unique, good)
    assert_dead_lettered_once(kafka, topic, 1_500 - good)
    # The summary counts the work done: every message twice (read, indexed
    # or rejected, then again after the rewind), but what was committed
    # once: the dead letters and the offsets (docs/guarantees.md).
    assert summary["consumed"] == 3_000 and summary["indexed"] == 2 * good, summary
    assert summary["rejected"] == 2 * (1_500 - good) and summary["dead_lettered"] == 1_500 - good, summary
    assert summary["committed"] == {topic: {"0": 1_500}}, summary

