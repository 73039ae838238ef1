"""The bundle as MWAA runs it, by an Airflow that knows nothing of this repo.

A fresh venv is installed from the bundle's requirements.txt alone, plus what
MWAA's image already carries (Airflow and the providers of
airflow/requirements.in), with the local pins (airflow/requirements-local.txt)
standing in for the GitHub-hosted constraints file the bundle names, which
cannot be fetched here. Airflow then runs with dags_folder = the bundle's
dags/ (logpipe's DAGs in dags/logpipe/, as deploy.sh puts them in the
bucket, beside another team's DAG), plugins_folder = plugins.zip unpacked
the way MWAA unpacks it (no execute bit), no Variable naming the binary, no
LD_LIBRARY_PATH and no setting of the local stack's Airflow: the worker
check and both DAGs run
end to end against the local Kafka and Elasticsearch with `airflow dags test`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import committed, high_watermarks
from stack_fixtures import ES, KAFKA, es_count

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".stack" / "mwaa-venv"


@dataclass
class Mwaa:
    home: Path
    plugins: Path
    env: dict[str, str]

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV / "bin" / "airflow"), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, check=False)

    def dags_test(self, dag_id: str, conf: dict[str, Any]) -> tuple[str, str]:
        p = self.airflow("dags", "test", dag_id, "-c", json.dumps(conf))
        out = p.stdout + p.stderr
        m = re.search(r"DagRun Finished: dag_id=\S+, logical_date=.*?, run_id=([^,]+), .*?state=(\w+)", out)
        assert m and m.group(2) == "success", out[-4000:]
        return m.group(1), out

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute("SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=? "
                             "AND key='return_value'", (dag_id, run_id, task_id, map_index)).fetchone()
        assert row is not None, f"no XCom for {dag_id}/{run_id}/{task_id}"
        value = json.loads(row[0])
        return json.loads(value) if isinstance(value, str) else value


def mwaa_requirements(bundle: Path, into: Path) -> Path:
    """The bundle's requirements.txt with the local pins as its constraints,
    and the packages MWAA's image comes with."""
    req = (bundle / "requirements.txt").read_text()
    assert req.count("--constraint ") == 1, req
    local = re.sub(r'^--constraint .*$', f'--constraint {ROOT / "airflow" / "requirements-local.txt"}', req,
                   flags=re.MULTILINE)
    image = [line for line in (ROOT / "airflow" / "requirements.in").read_text().splitlines()
             if line.startswith("apache-airflow")]
    path = into / "requirements-mwaa.txt"
    path.write_text(local + "\n# what MWAA's image carries\n" + "\n".join(image) + "\n")
    return path


def fresh_venv(requirements: Path) -> None:
    """Rebuilt whenever what it is installed from changes (always, on a new machine)."""
    stamp = hashlib.sha256(requirements.read_bytes() +
                           (ROOT / "airflow" / "requirements-local.txt").read_bytes()).hexdigest()
    if (VENV / ".stamp").is_file() and (VENV / ".stamp").read_text() == stamp:
        return
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(VENV)], check=True, timeout=300)
    p = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "-r", str(requirements)], capture_output=True, text=True, timeout=1500, check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (VENV / ".stamp").write_text(stamp)


OTHER_TEAMS_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def other_team_daily():
    @task
    def hello() -> int:
        return 1

    hello()


other_team_daily()
"""


@pytest.fixture(scope="module")
def mwaa(tmp_path_factory, stack) -> Mwaa:
    home = tmp_path_factory.mktemp("mwaa")
    bundle = home / "bundle"
    r = subprocess.run(["bash", str(ROOT / "deploy" / "bundle.sh"), str(bundle)], capture_output=True, text=True,
                       timeout=900, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    plugins = home / "plugins"
    with zipfile.ZipFile(bundle / "plugins.zip") as z:
        z.extractall(plugins)  # as MWAA: the execute bit is not kept
    assert not os.access(plugins / "logpipe", os.X_OK)
    # The bucket's dags/ as deploy.sh leaves it: logpipe's folder beside another team's DAG.
    dags = home / "bucket-dags"
    shutil.copytree(bundle / "dags", dags)
    (dags / "other_team_daily.py").write_text(OTHER_TEAMS_DAG)
    fresh_venv(mwaa_requirements(bundle, home))
    # Nothing of the local stack's Airflow or of this machine's libraries.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "AWS_", "LOGPIPE", "LD_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": KAFKA}}),
        "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({"conn_type": "elasticsearch", "host": ES}),
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "1000",
    })
    m = Mwaa(home, plugins, env)
    p = m.airflow("db", "migrate")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return m


def test_the_bundle_alone_runs_the_worker_check_and_both_dags(mwaa: Mwaa, kafka, es, unique):
    p = mwaa.airflow("dags", "reserialize")  # parses the bundle's dags/ as the dag-processor does
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    p = mwaa.airflow("dags", "list-import-errors", "-o", "json")
    assert p.returncode == 0 and json.loads(p.stdout or "[]") == [], p.stdout + p.stderr[-3000:]
    p = mwaa.airflow("dags", "list", "-o", "json")
    assert p.returncode == 0, p.stderr[-3000:]
    assert {d["dag_id"] for d in json.loads(p.stdout)} == {"log_generation_pipeline", "log_consumer_pipeline",
                                                          "logpipe_worker_check", "other_team_daily"}

    run_id, out = mwaa.dags_test("logpipe_worker_check", {})
    found = mwaa.xcom("logpipe_worker_check", run_id, "worker_platform")
    assert found["machine"] == "x86_64" and found["logpipe"].startswith("logpipe ")
    # the bundle's binary (copied out to get its execute bit), not this repo's build
    assert not found["binary"].startswith(str(ROOT)), found
    assert "ldd --version: ldd (" in out

    topic = f"logs-mwaa-{unique}"
    run_id, _ = mwaa.dags_test("log_generation_pipeline", {"topic": topic, "malformed_ratio": 0.01})
    assert mwaa.xcom("log_generation_pipeline", run_id, "produce")["delivered"] == 15000
    run_id, _ = mwaa.dags_test("log_consumer_pipeline", {"topic": topic, "group": f"logpipe-{unique}",
                                                         "index": f"logs-{unique}-%Y.%m.%d", "until_idle": 3})
    result = mwaa.xcom("log_consumer_pipeline", run_id, "reconcile")
    documents = es_count(es, f"logs-{unique}-*")
    assert result["committed"] == 15000 == documents + result["dead_lettered"], result
    assert 0 < result["dead_lettered"] < 500
    assert committed(kafka, f"logpipe-{unique}", topic, len(high_watermarks(kafka, topic))) == high_watermarks(kafka, topic)
