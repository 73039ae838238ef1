"""Fixtures for the Airflow tests, which run inside the local Airflow's venv
(.venv-airflow) so that Airflow itself is importable.

The stack fixtures (real Kafka, Elasticsearch, the logpipe binary, unique
names) are the integration suite's own, loaded from tests/integration; the
Airflow ones drive the real `airflow` command of the local install through
stack/airflow.sh and the running api-server's REST API.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "integration"), str(ROOT / "airflow" / "plugins")]

_spec = importlib.util.spec_from_file_location("stack_fixtures", ROOT / "tests" / "integration" / "conftest.py")
stack_fixtures = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["stack_fixtures"] = stack_fixtures
_spec.loader.exec_module(stack_fixtures)  # type: ignore[union-attr]
from stack_fixtures import (  # noqa: F401  (fixtures are found by name)
    create_topic,
    es,
    es_count,
    kafka,
    kafka_admin,
    logpipe_bin,
    stack,
    unique,
)

AIRFLOW_API = f"http://127.0.0.1:{os.environ.get('LOGPIPE_AIRFLOW_PORT', '8080')}/api/v2"


@dataclass
class DagTest:
    code: int
    output: str
    run_id: str | None
    state: str | None

    @property
    def flat(self) -> str:
        """The output without terminal styling, line breaks and runs of spaces (the
        CLI prints tracebacks with rich, which styles and wraps them regardless)."""
        return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", self.output).split())


def airflow_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "stack" / "airflow.sh"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False,
                          # plain, unwrapped output, so tests can match messages in it
                          env={**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "1000", **(env or {})})


DAGS_TEST_HOME = ROOT / ".stack" / "airflow-dags-test"


def _dags_test_env(logpipe: str) -> dict[str, str]:
    """`airflow dags test` gets a metadata DB of its own: sharing the running
    scheduler's would let that scheduler pick up the test run's task instances
    too (two executors, one run). Connections come from the environment."""
    return {"LOGPIPE_BIN": logpipe,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DAGS_TEST_HOME}/airflow.db",
            "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka",
                                                      "extra": {"bootstrap.servers": stack_fixtures.KAFKA}}),
            "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({"conn_type": "elasticsearch",
                                                              "host": stack_fixtures.ES})}


@pytest.fixture(scope="session")
def dags_test_db(stack: None, logpipe_bin: str) -> None:
    DAGS_TEST_HOME.mkdir(parents=True, exist_ok=True)
    p = airflow_cli("db", "migrate", env=_dags_test_env(logpipe_bin))
    assert p.returncode == 0, p.stdout + p.stderr


def dags_test(dag_id: str, conf: dict[str, Any], logpipe: str, env: dict[str, str] | None = None) -> DagTest:
    """`airflow dags test` of one DAG: a real DAG run, in-process (needs the dags_test_db fixture)."""
    p = airflow_cli("dags", "test", dag_id, "-c", json.dumps(conf), env={**_dags_test_env(logpipe), **(env or {})})
    out = p.stdout + p.stderr
    m = re.search(r"DagRun Finished: dag_id=\S+, logical_date=.*?, run_id=([^,]+), .*?state=(\w+)", out)
    return DagTest(p.returncode, out, m.group(1) if m else None, m.group(2) if m else None)


def dags_test_xcom(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    """A task's return value from a `dags test` run (its own DB, which no api-server serves)."""
    with sqlite3.connect(DAGS_TEST_HOME / "airflow.db") as db:
        row = db.execute("SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=? "
                         "AND key='return_value'", (dag_id, run_id, task_id, map_index)).fetchone()
    assert row is not None, f"no XCom for {dag_id}/{run_id}/{task_id}[{map_index}]"
    value = json.loads(row[0])
    return json.loads(value) if isinstance(value, str) else value


def xcom(api: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    """A task's return value through the running Airflow's REST API."""
    r = requests.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
                     params={"map_index": map_index}, timeout=30)
    r.raise_for_status()
    return r.json()["value"]


@pytest.fixture(scope="session")
def airflow(stack: None) -> str:
    """The running local Airflow's REST API (stack.sh up started it)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{AIRFLOW_API}/monitor/health", timeout=5).ok:
                return AIRFLOW_API
        except requests.ConnectionError:
            pass
        time.sleep(2)
    pytest.fail("the local Airflow's api-server does not answer: bash stack/stack.sh logs airflow")


DAG_IDS = ("log_generation_pipeline", "log_consumer_pipeline")


def _active_runs(api: str, dag_id: str) -> int:
    r = requests.get(f"{api}/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]}, timeout=30)
    r.raise_for_status()
    return int(r.json()["total_entries"])


@pytest.fixture(scope="module")
def live_airflow(airflow: str) -> Iterator[str]:
    """The running Airflow with both DAGs unpaused (a paused DAG's runs wait);
    afterwards, once their runs are done, the DAGs are left as they were found."""
    was = {d: requests.get(f"{airflow}/dags/{d}", timeout=30).json()["is_paused"] for d in DAG_IDS}
    for d in DAG_IDS:
        requests.patch(f"{airflow}/dags/{d}", json={"is_paused": False}, timeout=30).raise_for_status()
    yield airflow
    deadline = time.time() + 300
    while time.time() < deadline and any(_active_runs(airflow, d) for d in DAG_IDS):
        time.sleep(3)
    for d in DAG_IDS:
        requests.patch(f"{airflow}/dags/{d}", json={"is_paused": was[d]}, timeout=30).raise_for_status()


def trigger(api: str, dag_id: str, conf: dict[str, Any]) -> str:
    r = requests.post(f"{api}/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}, timeout=30)
    r.raise_for_status()
    return r.json()["dag_run_id"]


def wait_run(api: str, dag_id: str, run_id: str, timeout: float = 600) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = requests.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}", timeout=30).json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    raise AssertionError(f"{dag_id} run {run_id} did not finish in {timeout} s")


def task_log(api: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
    """The task's log as the UI shows it (read back through the api-server)."""
    r = requests.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                     params={"map_index": map_index, "full_content": "true"},
                     headers={"Accept": "application/json"}, timeout=30)
    r.raise_for_status()
    return r.text


def task_states(api: str, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    r = requests.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances", timeout=30)
    r.raise_for_status()
    return {(t["task_id"], t["map_index"]): t["state"] for t in r.json()["task_instances"]}
