"""The local stack is real: Kafka answers metadata, Elasticsearch reports an 8.x version."""

import subprocess

import requests
from confluent_kafka.admin import AdminClient
from conftest import ROOT


def test_kafka_answers_metadata(kafka_admin: AdminClient) -> None:
    md = kafka_admin.list_topics(timeout=30)
    assert md.brokers, "no broker in the cluster metadata"


def test_elasticsearch_is_8x_and_not_red(es: str) -> None:
    nodes = requests.get(f"{es}/_nodes/_local?filter_path=nodes.*.version", timeout=30).json()
    version = next(iter(nodes["nodes"].values()))["version"]
    assert version.startswith("8."), version
    health = requests.get(f"{es}/_cluster/health", timeout=30).json()
    assert health["status"] in ("green", "yellow")


def test_status_names_both_servers(stack: None) -> None:
    out = subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "status"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kafka" in out.stdout and "elasticsearch" in out.stdout
