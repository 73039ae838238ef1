"""The DAGs load, say what the issue says, and touch nothing at parse time.

Parsing happens every 30 s in every scheduler and dag-processor, on MWAA
too: a DAG file that opens a connection while being parsed slows or hangs
them all, so parsing here runs with every network connection refused.
"""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.models.dagbag import DagBag
from logpipe_airflow.compat import AirflowFailException
from logpipe_airflow.platform_check import glibc_version

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "airflow" / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    mp = pytest.MonkeyPatch()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a DAG file opened a network connection at parse time: {args}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)
    try:
        return DagBag(dag_folder=str(DAGS), include_examples=False)
    finally:
        mp.undo()


def test_the_dags_load_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"log_generation_pipeline", "log_consumer_pipeline", "logpipe_worker_check"}


def test_worker_check_runs_once_and_never_retries(dagbag: DagBag) -> None:
    dag = dagbag.get_dag("logpipe_worker_check")
    assert str(dag.timetable.summary) == "@once"
    assert [t.task_id for t in dag.tasks] == ["worker_platform", "first_run"]
    assert all(t.retries == 0 and t.owner == "logpipe" for t in dag.tasks)
    assert dag.get_task("first_run").upstream_task_ids == {"worker_platform"}


@pytest.mark.parametrize(("ldd", "version"), [
    ("ldd (GNU libc) 2.34\nCopyright (C) 2021 Free Software Foundation, Inc.", (2, 34)),  # Amazon Linux 2023
    ("ldd (Debian GLIBC 2.36-9+deb12u13) 2.36\nCopyright (C) 2022", (2, 36)),
])
def test_glibc_version_is_read_from_ldd(ldd: str, version: tuple[int, int]) -> None:
    assert glibc_version(ldd) == version


def test_an_unreadable_ldd_fails_the_check_naming_it() -> None:
    with pytest.raises(AirflowFailException, match="cannot read the glibc version"):
        glibc_version("musl libc (x86_64)")


@pytest.mark.parametrize("dag_id", ["log_generation_pipeline", "log_consumer_pipeline"])
def test_schedule_and_run_policy(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.get_dag(dag_id)
    assert dag is not None
    assert str(dag.timetable.summary) == "*/5 * * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "logpipe" in dag.tags and len(dag.tags) >= 2
    assert dag.doc_md and dag_id in dag.doc_md
    for t in dag.tasks:
        assert t.owner == "logpipe"
        assert t.retries == 1
        assert t.retry_delay == timedelta(seconds=5)


def test_producer_defaults_to_15000_combined_zoneless_lines(dagbag: DagBag) -> None:
    dag = dagbag.get_dag("log_generation_pipeline")
    assert dag.params["count"] == 15000
    assert dag.params["log_format"] == "combined_zoneless"
    assert [t.task_id for t in dag.tasks] == ["produce"]


def test_consumer_fans_out_and_reconciles(dagbag: DagBag) -> None:
    dag = dagbag.get_dag("log_consumer_pipeline")
    assert dag.params["consumers"] == 1
    consume = dag.get_task("consume")
    assert consume.__class__.__name__ == "MappedOperator"  # dynamic task mapping over `consumers`
    assert dag.get_task("reconcile").upstream_task_ids >= {"consume", "snapshot"}
    assert float(dag.params["max_seconds"]) < 300  # bounded below the 5-minute schedule


def test_no_airflow_3_breaking_imports() -> None:
    """ruff's AIR3 rules flag what Airflow 3 removed or moved."""
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "--preview", "--select", "AIR3",
                        "airflow/"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


# Where a run reads and writes is fenced by its params (logpipe_airflow/params.py):
# dag_run.conf cannot point it at another team's connection, topic, group or index.
REFUSED = {
    "kafka_conn_id": ["aws_default", "postgres_prod", "kafka_default/../x", "kafka_", "KAFKA_X"],
    "es_conn_id": ["kafka_default", "elasticsearch", "elasticsearch-other", "aws_default"],
    "topic": ["payments", "__consumer_offsets", "logsx", "logs-", "logs-a/b", "logs a", "env://X", ""],
    "dlq_topic": ["payments", "payments.dlq", "logs-x", "__consumer_offsets"],
    "group": ["payments-indexer", "logpipe", "logpipe-", "logpipe-a b"],
    "index": [".security-7", ".kibana", "payments", "logs-", "logs-A", "logs-x/_doc", "logs-x,other", "logs-%s",
              "logs-x*", "logs-_all", "*", "_all"],
}
ACCEPTED = {
    "kafka_conn_id": ["kafka_default", "kafka_secure"],
    "es_conn_id": ["elasticsearch_default", "elasticsearch_secure", "elasticsearch_pw_t12ab"],
    "topic": ["logs", "logs-af-t12ab", "logs.web", "logs_x"],
    "dlq_topic": ["", "logs.dlq", "logs-af-t12ab.dlq"],
    "group": ["logpipe-elasticsearch", "logpipe-t12ab"],
    "index": ["logs-access-%Y.%m.%d", "logs-t12ab-%Y.%m.%d", "logs-web-%Y.%m.%d.%H", "logs-static"],
}


@pytest.mark.parametrize("dag_id", ["log_generation_pipeline", "log_consumer_pipeline"])
def test_params_refuse_names_outside_logpipes_namespace(dagbag: DagBag, dag_id: str) -> None:
    from airflow.exceptions import ParamValidationError

    dag = dagbag.get_dag(dag_id)
    fenced = [name for name in REFUSED if name in dag.params]
    assert fenced, dag_id
    for name in fenced:
        for value in ACCEPTED[name]:
            dag.params.get_param(name).resolve(value)
        for value in REFUSED[name]:
            with pytest.raises(ParamValidationError, match="does not match"):
                dag.params.get_param(name).resolve(value)
    assert set(fenced) == set(REFUSED) & set(dag.params.keys())
    if dag_id == "log_consumer_pipeline":
        assert set(fenced) == set(REFUSED)
