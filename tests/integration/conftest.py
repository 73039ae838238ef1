"""Fixtures for the integration tests: the real local stack and the logpipe binary.

Every test here talks to a real Kafka broker and a real Elasticsearch over
the network. `stack/stack.sh up` starts them (or reuses them when they already
answer), so the tests can run on a fresh machine or next to a running demo.
Each test gets its own topic, group and index names, so tests never see each
other's data and can be re-run without cleaning up.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
KAFKA = os.environ.get("LOGPIPE_KAFKA", "127.0.0.1:9092")
ES = os.environ.get("LOGPIPE_ES", "http://127.0.0.1:9200")


@pytest.fixture(scope="session")
def logpipe_bin() -> str:
    path = os.environ.get("LOGPIPE_BIN", str(ROOT / "build" / "logpipe"))
    assert os.access(path, os.X_OK), f"logpipe binary not found at {path}: run `make build`"
    return path


@pytest.fixture(scope="session")
def stack() -> None:
    """Makes sure Kafka and Elasticsearch are up (starting them if needed)."""
    subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "up"], check=True)


@pytest.fixture(scope="session")
def kafka(stack: None) -> str:
    return KAFKA


@pytest.fixture(scope="session")
def es(stack: None) -> str:
    return ES


@pytest.fixture(scope="session")
def kafka_admin(kafka: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka})


@pytest.fixture
def unique() -> str:
    """A short name unique to this test run, for topics, groups and indices."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def realm(stack: None) -> Iterator:
    """Users and roles of this test in the secured Elasticsearch's file
    realm (test_prerequisites.FileRealm), removed after."""
    from test_prerequisites import FileRealm

    fr = FileRealm()
    yield fr
    fr.remove()


def create_topic(admin: AdminClient, name: str, partitions: int = 1) -> None:
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)


@pytest.fixture
def topic(kafka_admin: AdminClient, unique: str) -> Iterator[str]:
    """A fresh 3-partition topic; the dead-letter topic is <topic>.dlq."""
    name = f"logs-{unique}"
    create_topic(kafka_admin, name, partitions=3)
    yield name


def es_count(es_url: str, index: str, query: dict | None = None) -> int:
    requests.post(f"{es_url}/{index}/_refresh", timeout=30)
    body = {"query": query} if query else None
    r = requests.post(f"{es_url}/{index}/_count", json=body, timeout=30)
    r.raise_for_status()
    return int(r.json()["count"])
