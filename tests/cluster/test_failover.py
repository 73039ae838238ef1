"""Failover tests: logpipe's guarantees when a Kafka broker or an
Elasticsearch node of a real three-node cluster goes away mid-run.

Every test ends with an exact count: each produced line in the topic once
(idempotent producer), each good line in Elasticsearch once (its _id is its
Kafka coordinates, so the count of documents is the count of distinct
offsets), each malformed line in the dead-letter topic once, and the
group's committed offsets equal to the end offsets. Data is small; most of
the time goes to restarting what a test killed (measured on the shared
2-core machine under a load of about 20: the four tests in 394 s).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
import requests
from conftest import (
    BOOTSTRAP,
    CLUSTER,
    ES,
    cluster_up,
    coordinator,
    create_topic,
    es_count,
    kill_broker,
    partition_leaders,
    wait_all_in_sync,
    wait_brokers,
    wait_for_count,
    wait_isr,
)
from helpers import START, assert_dead_lettered_once, committed, good_lines, high_watermarks, read_topic, run

FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]


def produce_cmd(logpipe_bin: str, topic: str, count: int, seed: int, *extra: str) -> list[str]:
    return [logpipe_bin, "produce", "-b", BOOTSTRAP, "-t", topic, "--count", str(count), "--seed", str(seed),
            "--start", START, *extra]


def generated(logpipe_bin: str, count: int, seed: int, ratio: str = "0") -> Counter:
    out = subprocess.run([logpipe_bin, "generate", "--count", str(count), "--seed", str(seed), "--start", START,
                          "--malformed-ratio", ratio], capture_output=True, check=True).stdout
    return Counter(line for line in out.split(b"\n") if line)


def assert_topic_holds_exactly(logpipe_bin: str, topic: str, count: int, seed: int, ratio: str = "0") -> None:
    """The topic holds each generated line exactly as often as generated: nothing lost, nothing twice."""
    assert sum(high_watermarks(BOOTSTRAP, topic).values()) == count
    got = Counter(m.value() for m in read_topic(BOOTSTRAP, topic, count))
    assert got == generated(logpipe_bin, count, seed, ratio)


def consume(logpipe_bin: str, topic: str, group: str, index: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([logpipe_bin, "consume", "-b", BOOTSTRAP, "-t", topic, "-g", group, "-e", ES,
                             "-i", index, *FAST_GROUP, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def end_of_consume(p: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """A consume's exit code and log; one still running after timeout is a stall."""
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise AssertionError(f"logpipe consume did not finish in {timeout} s:\n{err[-4000:]}") from None
    return p.returncode, err


def finish(p: subprocess.Popen, timeout: float = 240) -> str:
    code, err = end_of_consume(p, timeout)
    assert code == 0, err[-4000:]
    return err


def consume_to_end(logpipe_bin: str, topic: str, group: str, index: str) -> None:
    """A bounded rerun: whatever a run that went idle during a failover left, it finishes."""
    r = run(logpipe_bin, "consume", "-b", BOOTSTRAP, "-t", topic, "-g", group, "-e", ES, "-i", index,
            "--until-idle", "4", *FAST_GROUP, timeout=300)
    assert r.code == 0, r.stderr


def assert_exact(topic: str, group: str, index: str, docs: int) -> None:
    assert es_count(index) == docs
    marks = high_watermarks(BOOTSTRAP, topic)
    assert committed(BOOTSTRAP, group, topic, len(marks)) == marks


def test_kill_9_the_leader_mid_produce_loses_and_duplicates_nothing(logpipe_bin, admin, unique):
    topic = f"logs-{unique}"
    create_topic(admin, topic, leader=2)
    prod = subprocess.Popen(produce_cmd(logpipe_bin, topic, 60_000, 31, "--rate", "15000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        kill_broker(2)  # the leader of every partition being written
        _, err = prod.communicate(timeout=240)
        assert prod.returncode == 0, err
        assert "delivered 60000, failed 0" in err, err
        assert 2 not in partition_leaders(admin, topic).values()
        assert_topic_holds_exactly(logpipe_bin, topic, 60_000, 31)
    finally:
        if prod.poll() is None:
            prod.kill()
        cluster_up()
    wait_isr(admin, topic, 3)  # the restarted broker caught up and rejoined


def test_kill_9_the_coordinator_and_leader_mid_consume_with_malformed_input(logpipe_bin, admin, unique):
    topic, group, index = f"logs-{unique}", f"g-{unique}", unique
    victim = coordinator(admin, "__consumer_offsets", group)
    create_topic(admin, topic, leader=victim)  # the group coordinator leads every consumed partition
    r = run(logpipe_bin, "produce", "-b", BOOTSTRAP, "-t", topic, "--count", "20000", "--seed", "32",
            "--start", START, "--malformed-ratio", "0.05")
    assert r.code == 0, r.stderr
    p = consume(logpipe_bin, topic, group, index, "--until-idle", "15", "--batch-docs", "1000", "-v")
    try:
        wait_for_count(index, 3_000)
        kill_broker(victim)
        # Slow after the kill: in one run here the last 10,000 of 40,000
        # lines took 117 s (each transaction commit blocking), hence the bound.
        err = finish(p, timeout=420)
    finally:
        if p.poll() is None:
            p.kill()
        cluster_up()
    txn_id = next(x for x in err.splitlines() if "transactional.id" in x).split()[-1]
    print(f"killed broker {victim}: group coordinator, leader of {topic}; transaction coordinator was "
          f"{'the same' if coordinator(admin, '__transaction_state', txn_id) == victim else 'another'} broker")
    consume_to_end(logpipe_bin, topic, group, index)
    good = good_lines(logpipe_bin, 20_000, 32, "0.05")
    assert_exact(topic, group, index, good)
    assert_dead_lettered_once(BOOTSTRAP, topic, 20_000 - good)


def primaries_by_node(index: str) -> Counter:
    rows = requests.get(f"{ES}/_cat/shards/{index}?format=json&h=prirep,node,state", timeout=30).json()
    return Counter(r["node"] for r in rows if r["prirep"] == "p" and r["state"] == "STARTED")


def test_stop_an_elasticsearch_node_holding_primaries_mid_consume(logpipe_bin, admin, unique):
    topic, group, index = f"logs-{unique}", f"g-{unique}", unique
    create_topic(admin, topic)
    requests.put(f"{ES}/{index}", json={"settings": {"number_of_shards": 3, "number_of_replicas": 1}},
                 timeout=60).raise_for_status()
    requests.get(f"{ES}/_cluster/health/{index}?wait_for_status=green&timeout=60s", timeout=90).raise_for_status()
    primaries = primaries_by_node(index)
    node = max(("es-2", "es-3"), key=lambda n: primaries[n])  # logpipe talks to es-1
    assert primaries[node] >= 1, primaries
    r = run(logpipe_bin, "produce", "-b", BOOTSTRAP, "-t", topic, "--count", "40000", "--seed", "33",
            "--start", START)
    assert r.code == 0, r.stderr
    p = consume(logpipe_bin, topic, group, index, "--until-idle", "10", "--batch-docs", "500")
    try:
        wait_for_count(index, 3_000)
        subprocess.run([*CLUSTER, "stop", node], check=True, timeout=120)
        finish(p)
    finally:
        if p.poll() is None:
            p.kill()
        cluster_up()  # the node comes back and its copies recover
    requests.get(f"{ES}/_cluster/health/{index}?wait_for_status=green&timeout=120s",
                 timeout=150).raise_for_status()
    consume_to_end(logpipe_bin, topic, group, index)
    assert_exact(topic, group, index, 40_000)


def test_min_insync_replicas_not_met_fails_produce_clearly_then_loses_nothing(logpipe_bin, admin, unique):
    topic = f"logs-{unique}"
    create_topic(admin, topic)
    try:
        kill_broker(2)
        kill_broker(3)
        wait_brokers(admin, 1)  # both fenced: the controller took them out of the ISR
        started = time.time()
        r = run(logpipe_bin, *produce_cmd(logpipe_bin, topic, 1000, 34, "-X", "message.timeout.ms=10000")[1:],
                timeout=120)
        took = time.time() - started
    finally:
        cluster_up()
    assert r.code == 3, (r.code, r.stderr)
    assert "delivered 0, failed 1000" in r.stderr, r.stderr
    assert "Not enough in-sync replicas" in r.stderr or "timed out" in r.stderr, r.stderr
    assert took < 30, took
    wait_isr(admin, topic, 3)
    assert sum(high_watermarks(BOOTSTRAP, topic).values()) == 0  # refused, not half-written
    r = run(logpipe_bin, *produce_cmd(logpipe_bin, topic, 1000, 34)[1:])
    assert r.code == 0, r.stderr
    assert_topic_holds_exactly(logpipe_bin, topic, 1000, 34)


def group_members(admin, group: str) -> int:
    return len(admin.describe_consumer_groups([group])[group].result(timeout=30).members)


@pytest.mark.rolling
def test_rolling_restart_of_every_broker_during_a_three_member_consume(logpipe_bin, admin, unique):
    """Each broker in turn stopped (SIGTERM: a controlled shutdown hands its
    leaderships over) and started again, waiting for every partition to be
    back in sync before the next, while a paced producer keeps writing (5%
    malformed, so dead-letter transactions are open throughout) and three
    members of one group consume six partitions. Every member ends: 0, or 5
    from the watchdog when a librdkafka transaction call overran its timeout
    (confluentinc/librdkafka#5456); a rerun then finishes, and the counts are
    exact."""
    topic, group, index = f"logs-{unique}", f"g-{unique}", unique
    create_topic(admin, topic, partitions=6)
    prod = subprocess.Popen(produce_cmd(logpipe_bin, topic, 1_000_000, 36, "--rate", "1500",
                                        "--malformed-ratio", "0.05"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    members = [consume(logpipe_bin, topic, group, index, "--until-idle", "20", "--batch-docs", "500", "-v")
               for _ in range(3)]
    ends: list[tuple[int, str]] = []
    try:
        deadline = time.time() + 120
        while group_members(admin, group) < 3 and time.time() < deadline:
            time.sleep(0.5)
        assert group_members(admin, group) == 3
        wait_for_count(index, 2_000)
        for n in (1, 2, 3):
            subprocess.run([*CLUSTER, "stop", f"kafka-{n}"], check=True, timeout=120)
            cluster_up()
            wait_all_in_sync(admin)
        prod.send_signal(signal.SIGTERM)  # stops at the next line and flushes what it sent
        _, perr = prod.communicate(timeout=120)
        assert prod.returncode == 0, perr
        produced = int(perr.split("delivered ")[1].split(",")[0])
        assert f"delivered {produced}, failed 0" in perr, perr
        ends = [end_of_consume(p, 300) for p in members]
    finally:
        for p in [prod, *members]:
            if p.poll() is None:
                p.kill()
        cluster_up()
    for code, err in ends:
        assert code == 0 or (code == 5 and "has not returned after" in err), err[-4000:]
    print(f"produced {produced}; members' exit codes: {[c for c, _ in ends]}")
    consume_to_end(logpipe_bin, topic, group, index)
    assert_topic_holds_exactly(logpipe_bin, topic, produced, 36, "0.05")
    good = good_lines(logpipe_bin, produced, 36, "0.05")
    assert_exact(topic, group, index, good)
    assert_dead_lettered_once(BOOTSTRAP, topic, produced - good)
    print(f"checked: {produced} lines in the topic once each, {good} documents by _id, "
          f"{produced - good} dead letters once each, 6 partitions' offsets committed at the end")
