"""LogpipeProduceOperator / LogpipeConsumeOperator with the real logpipe binary
against the real Kafka and Elasticsearch.

Connections come from AIRFLOW_CONN_* environment variables (one of the places
Airflow looks), so each test points the operators where it wants; the binary
from the Variable logpipe_binary, set the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import committed, high_watermarks
from logpipe_airflow.binary import _executable
from logpipe_airflow.compat import AirflowException, AirflowFailException
from logpipe_airflow.operators import LogpipeConsumeOperator, LogpipeProduceOperator
from stack_fixtures import create_topic, es_count


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, logpipe_bin: str, kafka: str, es: str) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AIRFLOW_VAR_LOGPIPE_BINARY", logpipe_bin)
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka}}))
    monkeypatch.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", json.dumps({"conn_type": "elasticsearch", "host": es}))
    return monkeypatch


def test_produce_summary_is_the_xcom_and_matches_kafka(connections, kafka, kafka_admin, unique):
    topic = f"op-{unique}"
    create_topic(kafka_admin, topic, partitions=3)
    op = LogpipeProduceOperator(task_id="produce", topic=topic, count=5000, seed=3)
    summary = op.execute({"ti": FakeTI()})
    assert (summary["sent"], summary["delivered"], summary["failed"]) == (5000, 5000, 0)
    assert sum(high_watermarks(kafka, topic).values()) == 5000


def test_consume_failure_names_elasticsearch_and_commits_nothing(connections, kafka, kafka_admin, unique):
    topic = f"op-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    LogpipeProduceOperator(task_id="produce", topic=topic, count=100).execute({"ti": FakeTI()})
    connections.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT",
                       json.dumps({"conn_type": "elasticsearch", "host": "http://127.0.0.1:9"}))
    op = LogpipeConsumeOperator(task_id="consume", topic=topic, group=f"g-{unique}", index=unique, until_idle=2)
    with pytest.raises(AirflowException) as err:
        op.execute({"ti": FakeTI()})
    msg = str(err.value)
    assert "exit code 4" in msg and "Elasticsearch" in msg and "127.0.0.1:9" in msg
    assert not isinstance(err.value, AirflowFailException)  # an outage is retried
    assert committed(kafka, f"g-{unique}", topic, 1) == {0: -1001}


def test_bad_configuration_fails_without_retry(connections, unique):
    op = LogpipeConsumeOperator(task_id="consume", topic=f"op-{unique}", group="g", index=unique,
                                log_format="klingon")
    with pytest.raises(AirflowFailException) as err:
        op.execute({"ti": FakeTI()})
    assert "exit code 2" in str(err.value) and "--format" in str(err.value)


def test_stopped_task_stops_logpipe_cleanly(connections, kafka, kafka_admin, es, unique):
    """on_kill sends SIGTERM: logpipe finishes its bulks, commits, and exits;
    what it committed is exactly what Elasticsearch holds."""
    topic = f"op-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    LogpipeProduceOperator(task_id="produce", topic=topic, count=50_000, rate=10_000).execute({"ti": FakeTI()})
    op = LogpipeConsumeOperator(task_id="consume", topic=topic, group=f"g-{unique}", index=unique, until_idle=60)
    outcome: dict[str, object] = {}
    t = threading.Thread(target=lambda: outcome.update(summary=op.execute({"ti": FakeTI()})))
    t.start()
    # Stopped mid-run: once its first commit shows (a fixed wait raced the
    # start-up checks on a loaded machine), with most of the topic still to read.
    deadline = time.time() + 60
    while committed(kafka, f"g-{unique}", topic, 1)[0] <= 0 and time.time() < deadline:
        time.sleep(0.2)
    started = time.time()
    op.on_kill()
    t.join(timeout=60)
    assert not t.is_alive() and time.time() - started < op.kill_grace_s
    assert op._proc is not None and op._proc.returncode == 0  # a clean stop, not SIGKILL
    done = committed(kafka, f"g-{unique}", topic, 1)[0]
    assert done > 0 and es_count(es, unique) == done == outcome["summary"]["indexed"]


def test_binary_without_execute_bit_is_copied_and_run(tmp_path: Path, logpipe_bin: str):
    """plugins.zip may lose the execute bit on MWAA."""
    plain = tmp_path / "logpipe"
    shutil.copyfile(logpipe_bin, plain)
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    runnable = _executable(plain)
    assert runnable != str(plain) and os.access(runnable, os.X_OK)
    assert subprocess.run([runnable, "--help"], capture_output=True, check=False).returncode == 0


def test_bundled_binary_without_execute_bit_runs_with_its_libraries(tmp_path: Path):
    """The bundle's logpipe, unpacked without the execute bit as MWAA may do:
    the copy the operator makes finds the bundle's lib/ through a link."""
    import zipfile

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "mwaa"
    subprocess.run(["bash", str(root / "deploy" / "bundle.sh"), str(out)], check=True, capture_output=True,
                   timeout=900)
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(out / "plugins.zip") as z:
        z.extractall(plugins)  # modes are not restored
    assert not os.access(plugins / "logpipe", os.X_OK)
    runnable = Path(_executable(plugins / "logpipe"))
    assert (runnable.parent / "lib").resolve() == (plugins / "lib").resolve()
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    ldd = subprocess.run(["ldd", str(runnable)], capture_output=True, text=True, env=env, check=True).stdout
    assert f"librdkafka.so.1 => {runnable.parent / 'lib'}/" in ldd, ldd
    assert subprocess.run([str(runnable), "--help"], capture_output=True, env=env, check=False).returncode == 0
