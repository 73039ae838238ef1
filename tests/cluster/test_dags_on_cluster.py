"""The consumer DAG on the three-broker cluster: `log_consumer_pipeline`
with three consumers, a broker killed with SIGKILL while it runs (and
started again 10 s later, while the run goes on).

The DAG runs through `airflow dags test` of the local Airflow install
(stack/airflow.sh, its own metadata DB: never the shared, running Airflow),
so the DAG, its operators and the reconcile task are the real ones. Its
connections point to the cluster: they are defined in that one process's
environment (AIRFLOW_CONN_<ID>) under ids unique to the test and passed as
the DAG's `kafka_conn_id` / `es_conn_id` params, so nothing else sees them.
The airflow tests' helpers (tests/airflow/conftest.py) are loaded from there.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time

from conftest import (
    BOOTSTRAP,
    CLUSTER,
    ES,
    ROOT,
    cluster_up,
    create_topic,
    kill_broker,
    partition_leaders,
    wait_for_count,
)
from helpers import START, committed, good_lines, high_watermarks, run

_spec = importlib.util.spec_from_file_location("airflow_fixtures", ROOT / "tests" / "airflow" / "conftest.py")
airflow_fixtures = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["airflow_fixtures"] = airflow_fixtures  # its dataclass looks itself up there
_spec.loader.exec_module(airflow_fixtures)  # type: ignore[union-attr]

CONSUMER = "log_consumer_pipeline"


def cluster_connections(unique: str) -> tuple[dict[str, str], dict[str, str]]:
    """Connections to the cluster for one `dags test` process: its env and the DAG params naming them."""
    kafka_id, es_id = f"kafka_cluster_{unique}", f"elasticsearch_cluster_{unique}"
    env = {f"AIRFLOW_CONN_{kafka_id.upper()}": json.dumps({"conn_type": "kafka",
                                                           "extra": {"bootstrap.servers": BOOTSTRAP}}),
           f"AIRFLOW_CONN_{es_id.upper()}": json.dumps({"conn_type": "elasticsearch", "host": ES})}
    return env, {"kafka_conn_id": kafka_id, "es_conn_id": es_id}


def test_consumer_dag_with_three_consumers_survives_a_broker_kill(logpipe_bin, admin, unique):
    topic, group, pattern = f"logs-{unique}", f"logpipe-{unique}", f"logs-{unique}-*"
    create_topic(admin, topic, partitions=6)
    r = run(logpipe_bin, "produce", "-b", BOOTSTRAP, "-t", topic, "--count", "60000", "--seed", "37",
            "--start", START, "--malformed-ratio", "0.05")
    assert r.code == 0, r.stderr
    migrate = airflow_fixtures.airflow_cli("db", "migrate", env=airflow_fixtures._dags_test_env(logpipe_bin))
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    env, conns = cluster_connections(unique)
    conf = {"topic": topic, "group": group, "index": f"logs-{unique}-%Y.%m.%d", "until_idle": 5,
            "consumers": 3, **conns}
    leaders = partition_leaders(admin, topic)
    victim = max((1, 2, 3), key=lambda b: list(leaders.values()).count(b))
    done: list = []
    dag = threading.Thread(target=lambda: done.append(airflow_fixtures.dags_test(CONSUMER, conf, logpipe_bin, env)))
    dag.start()
    back = None
    try:
        wait_for_count(pattern, 3_000, timeout=240)  # the first consumer task is indexing
        kill_broker(victim)  # leads the most of the six partitions
        time.sleep(10)  # fenced (broker.session.timeout.ms 6 s): the run goes on without it
        back = subprocess.Popen([*CLUSTER, "up"], stdout=subprocess.DEVNULL)  # returns while the run goes on
        dag.join(timeout=600)
    finally:
        if back is not None:
            back.wait(timeout=900)
        cluster_up()
    assert done, "airflow dags test did not finish in 10 minutes"
    result = done[0]
    assert result.state == "success", result.output[-4000:]
    rec = airflow_fixtures.dags_test_xcom(CONSUMER, result.run_id, "reconcile")
    good = good_lines(logpipe_bin, 60_000, 37, "0.05")
    print(f"killed broker {victim}; reconcile: {rec['committed']} committed = {rec['documents']} documents + "
          f"{rec['dead_lettered']} dead-lettered")
    assert (rec["committed"], rec["documents"], rec["dead_lettered"]) == (60_000, good, 60_000 - good)
    assert committed(BOOTSTRAP, group, topic, 6) == high_watermarks(BOOTSTRAP, topic)
