"""The consume task and the backlog a bounded run leaves: the summary's lag in
XCom, a warning in the task log, and fail_on_backlog, with the real logpipe
binary against the real Kafka and Elasticsearch (a --max-messages run leaves
an exact backlog, where --max-seconds would leave a timing-dependent one).
"""

from __future__ import annotations

import logging

import pytest
from helpers import committed, high_watermarks
from logpipe_airflow.compat import AirflowException
from logpipe_airflow.operators import LogpipeConsumeOperator, LogpipeProduceOperator
from stack_fixtures import create_topic
from test_dag_integrity import dagbag  # noqa: F401 (a fixture)
from test_operators import FakeTI, connections  # noqa: F401 (a fixture)


def _backlog(kafka: str, group: str, topic: str) -> dict[str, int]:
    ends = high_watermarks(kafka, topic)
    done = committed(kafka, group, topic, len(ends))
    return {str(p): ends[p] - max(done[p], 0) for p in ends}


def test_backlog_is_in_xcom_and_warned_then_fails_the_task_when_asked(connections, kafka, kafka_admin,  # noqa: F811
                                                                     unique, caplog):
    topic = f"logs-bl-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    LogpipeProduceOperator(task_id="produce", topic=topic, count=500).execute({"ti": FakeTI()})
    group = f"logpipe-{unique}"

    def consume(**more: object) -> LogpipeConsumeOperator:
        return LogpipeConsumeOperator(task_id="consume", topic=topic, group=group, index=f"logs-{unique}",
                                      until_idle=2, extra_args=["--max-messages", "200", "--batch-docs", "50"],
                                      **more)

    with caplog.at_level(logging.WARNING):
        summary = consume().execute({"ti": FakeTI()})  # default: a warning, the task succeeds
    left = _backlog(kafka, group, topic)
    assert summary["lag"] == {topic: left} and summary["backlog"] == sum(left.values()) >= 300
    assert f"backlog of {summary['backlog']} message(s) left in group {group}" in caplog.text

    ti = FakeTI()
    with pytest.raises(AirflowException, match=r"backlog of \d+ message\(s\) left .*fail_on_backlog is on"):
        consume(fail_on_backlog="True").execute({"ti": ti})  # as the DAG's template renders the param
    pushed = ti.pushed["summary"]
    assert isinstance(pushed, dict)
    assert pushed["backlog"] == sum(_backlog(kafka, group, topic).values()) > 0

    # Caught up: no warning, fail_on_backlog has nothing to fail on.
    caplog.clear()
    op = consume(fail_on_backlog="True")
    op.extra_args = []
    with caplog.at_level(logging.WARNING):
        summary = op.execute({"ti": FakeTI()})
    assert summary["backlog"] == 0 and "backlog" not in caplog.text


def test_the_consumer_dag_wires_fail_on_backlog_off_by_default(dagbag) -> None:  # noqa: F811
    dag = dagbag.get_dag("log_consumer_pipeline")
    assert dag.params["fail_on_backlog"] is False
    assert dag.get_task("consume").partial_kwargs["fail_on_backlog"] == "{{ params.fail_on_backlog }}"
