"""LogpipeProduceOperator / LogpipeConsumeOperator with the real logpipe binary
against the real Kafka and Elasticsearch.

Connections come from AIRFLOW_CONN_* environment variables (one of the places
Airflow looks), so each test points the operators where it wants; the binary
from the Variable logpipe_binary, set the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import committed, high_watermarks
from logpipe_airflow.binary import _runnable
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
    """plugins.zip may lose the execute bit on MWAA: the copy lives in a
    private folder of its own for the one run, and is removed afterwards."""
    plain = tmp_path / "logpipe"
    shutil.copyfile(logpipe_bin, plain)
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with _runnable(plain) as runnable:
        assert runnable != str(plain) and os.access(runnable, os.X_OK)
        folder = os.lstat(Path(runnable).parent)
        assert folder.st_uid == os.getuid() and stat.S_IMODE(folder.st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(runnable).st_mode) == 0o700
        assert subprocess.run([runnable, "--help"], capture_output=True, check=False).returncode == 0
    assert not Path(runnable).parent.exists()


def test_a_binary_planted_at_the_old_predictable_path_is_not_run(tmp_path: Path, logpipe_bin: str):
    """The copy used to go to /tmp/logpipe-<uid>-<sha256[:16]>/, made with
    exist_ok=True and reused when a runnable `logpipe` was already there: a
    local user could plant one (and a folder they own) before the first run."""
    plain = tmp_path / "logpipe"
    shutil.copyfile(logpipe_bin, plain)
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()[:16]
    planted = Path(tempfile.gettempdir()) / f"logpipe-{os.getuid()}-{digest}"
    planted.mkdir(mode=0o777, exist_ok=True)
    (planted / "logpipe").write_text("#!/bin/sh\necho planted\n")
    (planted / "logpipe").chmod(0o755)
    try:
        with _runnable(plain) as runnable:
            out = subprocess.run([runnable, "--version"], capture_output=True, text=True, check=False).stdout
        assert not runnable.startswith(str(planted)) and out.startswith("logpipe "), (runnable, out)
    finally:
        shutil.rmtree(planted)


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
    with _runnable(plugins / "logpipe") as copy:
        runnable = Path(copy)
        assert (runnable.parent / "lib").resolve() == (plugins / "lib").resolve()
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        ldd = subprocess.run(["ldd", str(runnable)], capture_output=True, text=True, env=env, check=True).stdout
        assert f"librdkafka.so.1 => {runnable.parent / 'lib'}/" in ldd, ldd
        assert subprocess.run([str(runnable), "--help"], capture_output=True, env=env, check=False).returncode == 0


def _kafka_conn(kafka: str, **fields: object) -> str:
    extra = {"bootstrap.servers": kafka, **fields.pop("extra", {})}  # type: ignore[arg-type]
    return json.dumps({"conn_type": "kafka", "extra": extra, **fields})


@pytest.mark.parametrize(("conn_var", "conn", "field"), [
    ("AIRFLOW_CONN_KAFKA_DEFAULT", {"extra": {"bootstrap.servers": "env://EVIL_BROKER"}}, "extra 'bootstrap.servers'"),
    ("AIRFLOW_CONN_KAFKA_DEFAULT", {"extra": {"sasl.username": "aws-sm://MWAA_Secrets#kafka_secret"}},
     "extra 'sasl.username'"),
    ("AIRFLOW_CONN_KAFKA_DEFAULT", {"extra": {"client.rack": "env://AIRFLOW__CORE__FERNET_KEY"}},
     "extra 'client.rack'"),
    ("AIRFLOW_CONN_KAFKA_DEFAULT", {"extra": {"ssl.ca.location": " FILE:///etc/shadow"}},
     "extra 'ssl.ca.location'"),
    ("AIRFLOW_CONN_KAFKA_DEFAULT", {"login": "env://AWS_SECRET_ACCESS_KEY"}, "login"),
    ("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", {"conn_type": "elasticsearch", "host": "aws-sm://MWAA_Secrets"}, "host"),
    ("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", {"conn_type": "elasticsearch", "host": "127.0.0.1",
                                            "login": "file:///run/secrets/es.json"}, "login"),
    ("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", {"conn_type": "elasticsearch", "host": "127.0.0.1",
                                            "extra": json.dumps({"ca_certs": "env://ES_CA"})}, "extra 'ca_certs'"),
])
def test_references_outside_the_credential_fields_are_refused(connections, kafka, tmp_path, unique, conn_var,
                                                             conn, field):
    """A connection's extra goes to logpipe as -X, which resolves references: in a
    field other than the credential itself one could send any secret the worker can
    read to the broker. Refused before logpipe runs, naming connection and field."""
    if conn_var == "AIRFLOW_CONN_KAFKA_DEFAULT":
        connections.setenv(conn_var, _kafka_conn(kafka, **conn))
    else:
        connections.setenv(conn_var, json.dumps(conn))
    ran = tmp_path / "ran"
    fake = tmp_path / "logpipe"
    fake.write_text(f"#!/bin/sh\ntouch {ran}\n")
    fake.chmod(0o755)
    connections.setenv("AIRFLOW_VAR_LOGPIPE_BINARY", str(fake))
    op = LogpipeConsumeOperator(task_id="consume", topic=f"op-{unique}", group="g", index=unique)
    with pytest.raises(AirflowFailException) as err:
        op.execute({"ti": FakeTI()})
    conn_id = "kafka_default" if "KAFKA" in conn_var else "elasticsearch_default"
    assert f"connection {conn_id}: {field} is a secret reference" in str(err.value)
    assert "MWAA_Secrets" not in str(err.value) and not ran.exists()


def test_references_in_the_credential_fields_reach_logpipe_by_environment(connections, kafka):
    connections.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       _kafka_conn(kafka, login="logpipe", extra={"sasl.password": "env://KAFKA_PW"}))
    connections.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", json.dumps(
        {"conn_type": "elasticsearch", "host": "127.0.0.1", "login": "elastic", "password": "env://ES_PW",
         "extra": json.dumps({"api_key": "aws-sm://MWAA_Secrets#elasticsearch_API_Key"})}))
    args, env = LogpipeConsumeOperator(task_id="c", topic="t", group="g").build()
    assert env == {"LOGPIPE_KAFKA_PASSWORD": "env://KAFKA_PW", "LOGPIPE_ES_PASSWORD": "env://ES_PW",
                   "LOGPIPE_ES_API_KEY": "aws-sm://MWAA_Secrets#elasticsearch_API_Key"}
    assert not any("://" in a and not a.startswith("http") for a in args), args


def test_only_allowlisted_worker_variables_reach_logpipe(connections, kafka, kafka_admin, unique):
    """The child gets the allowlisted variables (AWS credential chain, locale, PATH, ...)
    and its own credentials, not the worker's whole environment: Airflow's settings
    (here the api-server's JWT signing secret that stack/airflow.sh gives every
    worker; on MWAA the database URL, the fernet key) never reach /proc/<pid>/environ."""
    topic = f"op-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    jwt_secret = os.environ["AIRFLOW__API_AUTH__JWT_SECRET"].encode()
    connections.setenv("WORKER_ONLY_MARKER", f"marker-{unique}")
    connections.setenv("AWS_REGION", "eu-west-3")
    op = LogpipeProduceOperator(task_id="produce", topic=topic, count=4000, rate=1000)
    environs: list[bytes] = []

    def watch() -> None:
        while op._proc is None or op._proc.poll() is None:
            try:
                if op._proc is not None:
                    environs.append(Path(f"/proc/{op._proc.pid}/environ").read_bytes())
            except OSError:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    summary = op.execute({"ti": FakeTI()})
    watcher.join(timeout=30)
    assert summary["delivered"] == 4000 and environs, "never read logpipe's environment"
    names = {entry.split(b"=", 1)[0] for entry in environs[-1].split(b"\0") if entry}
    assert b"AWS_REGION=eu-west-3" in environs[-1].split(b"\0") and b"PATH" in names
    for env in environs:
        assert f"marker-{unique}".encode() not in env and jwt_secret not in env
    assert not [n for n in names if n.startswith(b"AIRFLOW")], names
