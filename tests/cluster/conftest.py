"""Fixtures for the failover tests: the three-broker Kafka cluster and the
three-node Elasticsearch cluster of `stack/stack.sh cluster up`.

These tests kill and stop servers, so they run against their own cluster
(ports 19091-19093, 19191-19193, 19201-19203), never the shared single-node
stack, and only in the release pass of `make test` (`make test-cluster`).
The helpers for running logpipe and reading Kafka are the integration
suite's (tests/integration/helpers.py), imported from there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

BOOTSTRAP = "127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093"
ES = "http://127.0.0.1:19201"  # logpipe talks to es-1; the tests stop es-2 or es-3
CLUSTER = ["bash", str(ROOT / "stack" / "stack.sh"), "cluster"]
CLUSTER_DIR = ROOT / ".stack" / "cluster"


@pytest.fixture(scope="session")
def logpipe_bin() -> str:
    path = os.environ.get("LOGPIPE_BIN", str(ROOT / "build" / "logpipe"))
    assert os.access(path, os.X_OK), f"logpipe binary not found at {path}: run `make build`"
    return path


def cluster_up() -> None:
    """Starts whatever node of the cluster is not running and waits for all."""
    subprocess.run([*CLUSTER, "up"], check=True, timeout=900)


@pytest.fixture(scope="session")
def cluster() -> None:
    cluster_up()


@pytest.fixture
def admin(cluster: None) -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


@pytest.fixture
def unique() -> str:
    return "c" + uuid.uuid4().hex[:10]


def create_topic(admin: AdminClient, name: str, leader: int | None = None, partitions: int = 3) -> None:
    """Three replicas; with `leader`, that broker leads every partition."""
    if leader is None:
        new = NewTopic(name, num_partitions=partitions, replication_factor=3)
    else:
        others = [b for b in (1, 2, 3) if b != leader]
        new = NewTopic(name, num_partitions=partitions, replica_assignment=[[leader, *others]] * partitions)
    admin.create_topics([new])[name].result(timeout=60)
    wait_isr(admin, name, 3)


def partition_leaders(admin: AdminClient, topic: str) -> dict[int, int]:
    md = admin.list_topics(topic, timeout=30)
    return {p: m.leader for p, m in md.topics[topic].partitions.items()}


def wait_isr(admin: AdminClient, topic: str, size: int, timeout: float = 120) -> None:
    """Waits until every partition of `topic` has a leader and `size` in-sync replicas."""
    deadline = time.time() + timeout
    while True:
        md = admin.list_topics(topic, timeout=30).topics[topic]
        if md.error is None and md.partitions and all(
                m.leader >= 0 and len(m.isrs) == size for m in md.partitions.values()):
            return
        if time.time() > deadline:
            raise AssertionError(f"{topic}: ISR not {size} after {timeout} s: "
                                 f"{ {p: m.isrs for p, m in md.partitions.items()} }")
        time.sleep(0.5)


def wait_all_in_sync(admin: AdminClient, timeout: float = 180) -> None:
    """Waits until every partition of every topic (the internal ones too:
    offsets, transaction state) has a leader and all three replicas in sync."""
    deadline = time.time() + timeout
    while True:
        lagging = [f"{t}/{p}" for t, md in admin.list_topics(timeout=30).topics.items()
                   for p, m in md.partitions.items() if m.leader < 0 or len(m.isrs) < 3]
        if not lagging:
            return
        if time.time() > deadline:
            raise AssertionError(f"partitions not back in sync after {timeout} s: {lagging[:10]}")
        time.sleep(0.5)


def java_hash(s: str) -> int:
    """Java's String.hashCode, as Kafka uses it to place coordinators."""
    h, units = 0, s.encode("utf-16-be")  # Java hashes UTF-16 code units
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def coordinator(admin: AdminClient, internal_topic: str, key: str) -> int:
    """The broker coordinating `key` (a group or transactional.id): the leader
    of partition abs(hashCode) % partitions of __consumer_offsets or
    __transaction_state (Kafka's Utils.abs: MIN_VALUE maps to 0)."""
    parts = admin.list_topics(internal_topic, timeout=30).topics[internal_topic].partitions
    h = java_hash(key)
    return parts[(0 if h == -(1 << 31) else abs(h)) % len(parts)].leader


def kill_broker(n: int) -> None:
    """kill -9 broker N's whole process group (the launcher shell and the JVM)."""
    pgid = int((CLUSTER_DIR / f"kafka-{n}" / "kafka.pid").read_text())
    os.killpg(pgid, signal.SIGKILL)


def wait_brokers(admin: AdminClient, count: int, timeout: float = 60) -> None:
    """Waits until the metadata lists `count` live (unfenced) brokers."""
    deadline = time.time() + timeout
    while len(admin.list_topics(timeout=30).brokers) != count:
        if time.time() > deadline:
            raise AssertionError(f"the cluster never showed {count} brokers")
        time.sleep(0.5)


def es_count(index: str) -> int:
    requests.post(f"{ES}/{index}/_refresh", timeout=60).raise_for_status()
    r = requests.post(f"{ES}/{index}/_count", timeout=60)
    r.raise_for_status()
    return int(r.json()["count"])


def wait_for_count(index: str, at_least: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if es_count(index) >= at_least:
                return
        except requests.RequestException:
            pass  # not created yet, or a shard moving
        time.sleep(0.3)
    raise AssertionError(f"{index} never reached {at_least} documents")
