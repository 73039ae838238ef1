"""The consumer DAG's reconcile over a data stream (issue 15, point 1): the
consume operator writes it with --data-stream, and a replay across a
rollover (a second copy of each offset in the new write index,
docs/guarantees.md) still reconciles: offsets are counted once each."""

from __future__ import annotations

import json

import requests
from logpipe_airflow import reconcile
from logpipe_airflow.connections import ElasticsearchConnection, KafkaConnection
from logpipe_airflow.operators import LogpipeConsumeOperator, LogpipeProduceOperator
from stack_fixtures import create_topic, es_count
from test_operators import FakeTI, connections  # noqa: F401  (a fixture)

LINES = 20


def test_reconcile_counts_each_offset_once_across_a_rollover(connections, kafka, kafka_admin, es, unique):  # noqa: F811
    topic, group, stream = f"rd-{unique}", f"g-{unique}", f"logs-{unique}-default"
    create_topic(kafka_admin, topic, partitions=1)
    LogpipeProduceOperator(task_id="produce", topic=topic, count=LINES, seed=4).execute({"ti": FakeTI()})
    k, e = KafkaConnection.from_connection("kafka_default"), ElasticsearchConnection.from_connection("elasticsearch_default")
    snap = reconcile.snapshot(k, group, topic)
    op = LogpipeConsumeOperator(task_id="consume", topic=topic, group=group, index=stream, data_stream="True",
                                until_idle=1, extra_args=["--replicas", "0"])
    summary = op.execute({"ti": FakeTI()})
    assert (summary["indexed"], summary["dead_lettered"]) == (LINES, 0)
    # A replay after a rollover: the same _ids again, in the new write index.
    requests.post(f"{es}/{stream}/_rollover", timeout=30).raise_for_status()
    hits = requests.post(f"{es}/{stream}/_search", json={"size": LINES}, timeout=30).json()["hits"]["hits"]
    bulk = "".join(json.dumps({"create": {"_id": h["_id"]}}) + "\n" + json.dumps(h["_source"]) + "\n" for h in hits)
    r = requests.post(f"{es}/{stream}/_bulk", data=bulk, headers={"Content-Type": "application/x-ndjson"},
                      params={"refresh": "true"}, timeout=30)
    assert r.ok and not r.json()["errors"], r.text[:300]
    assert es_count(es, stream) == 2 * LINES
    result = reconcile.reconcile(k, e, snap, stream, None)
    assert (result["committed"], result["documents"], result["dead_lettered"]) == (LINES, LINES, 0)
