"""Both DAGs end to end: real Airflow, real logpipe, real Kafka and Elasticsearch.

`airflow dags test` runs a DAG in-process (what a developer runs); the REST
tests go through the running local Airflow: api-server, scheduler,
LocalExecutor workers, exactly as `make demo` and MWAA run them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import requests
from conftest import ROOT, dags_test, dags_test_xcom, task_log, task_states, trigger, wait_run, xcom
from faultproxy import FaultProxy, Faults
from helpers import committed, high_watermarks
from stack_fixtures import create_topic, es_count

CONSUMER, PRODUCER = "log_consumer_pipeline", "log_generation_pipeline"


def consumer_conf(topic: str, unique: str, **more: object) -> dict[str, object]:
    return {"topic": topic, "group": group(unique), "index": f"logs-{unique}-%Y.%m.%d", "until_idle": 3, **more}


def group(unique: str) -> str:
    return f"logpipe-{unique}"


def test_dags_test_produces_15000_and_indexes_exactly_them(dags_test_db, logpipe_bin, kafka, es, unique):
    topic = f"logs-af-{unique}"
    prod = dags_test(PRODUCER, {"topic": topic}, logpipe_bin)
    assert prod.state == "success", prod.output[-3000:]
    assert dags_test_xcom(PRODUCER, prod.run_id, "produce")["delivered"] == 15000
    assert sum(high_watermarks(kafka, topic).values()) == 15000

    cons = dags_test(CONSUMER, consumer_conf(topic, unique), logpipe_bin)
    assert cons.state == "success", cons.output[-3000:]
    assert es_count(es, f"logs-{unique}-*") == 15000
    summary = dags_test_xcom(CONSUMER, cons.run_id, "consume", map_index=0)
    assert (summary["consumed"], summary["indexed"], summary["exit_code"]) == (15000, 15000, 0)
    result = dags_test_xcom(CONSUMER, cons.run_id, "reconcile")
    assert (result["committed"], result["documents"], result["dead_lettered"]) == (15000, 15000, 0)
    assert "reconcile ok: 15000 committed = 15000 documents + 0 dead-lettered" in cons.output


def test_worker_check_proves_the_platform_against_the_secured_stack(dags_test_db, logpipe_bin, kafka_admin):
    """The first-deploy DAG with the secured stack's secret: logpipe reads it from
    Secrets Manager, shakes hands with SASL_SSL Kafka and https Elasticsearch (API
    key), sends 20 lines round trip through a scratch topic and index, removes
    them, and prints one verdict table."""
    prefix = f"lpcheck-{uuid.uuid4().hex[:8]}"
    run = dags_test("logpipe_worker_check", {"secrets": "aws-sm://logpipe/local-secure", "scratch_prefix": prefix},
                    logpipe_bin)
    assert run.state == "success", run.output[-3000:]
    found = dags_test_xcom("logpipe_worker_check", run.run_id, "worker_platform")
    assert found["machine"] == "x86_64" and found["logpipe"].startswith("logpipe ")
    assert tuple(int(x) for x in found["glibc"].split(".")) >= (2, 34)
    assert "uname -m: x86_64" in run.output and "ldd --version: ldd (" in run.output
    rows = {r["check"]: r for r in dags_test_xcom("logpipe_worker_check", run.run_id, "first_run")}
    assert list(rows) == ["platform", "secrets manager", "kafka", "elasticsearch", "round trip", "cleanup"]
    assert all(r["ok"] for r in rows.values()), rows
    assert rows["kafka"]["detail"] == "127.0.0.1:9094 answered a metadata request over sasl_ssl"
    assert rows["elasticsearch"]["detail"].startswith("Elasticsearch 8.") and "https://127.0.0.1:9202" in \
        rows["elasticsearch"]["detail"]
    assert "consumed 20, indexed 20; Elasticsearch counts 20" in rows["round trip"]["detail"]
    assert "logpipe first-run check" in run.flat and "round trip ok 20 lines produced" in run.flat
    left = kafka_admin.list_topics(timeout=30).topics
    assert not [t for t in left if t.startswith(prefix)]  # scratch topic and its dead-letter topic removed
    auth = ("elastic", (ROOT / ".stack" / "tls" / "es-elastic.pass").read_text().strip())
    r = requests.get(f"https://127.0.0.1:9201/{prefix}-*", auth=auth, verify=str(ROOT / ".stack" / "tls" / "ca.pem"),
                     timeout=30)
    assert r.json() == {}  # scratch index removed


def test_worker_check_names_what_failed_and_why(dags_test_db, logpipe_bin, unique):
    """A secret with a wrong Kafka password and a wrong API key: the verdict names
    both endpoints and why, sends nothing round trip, and the DAG fails."""
    tls = ROOT / ".stack" / "tls"
    name = f"MWAA_Secrets-bad-{unique}"
    _create_secret(name, {"kafka_bootstrap_server": "127.0.0.1:9094", "kafka_username": "logpipe",
                          "kafka_secret": "wrong-password", "elasticsearch_URL": "https://127.0.0.1:9202",
                          "elasticsearch_API_Key": "d3Jvbmc6a2V5", "kafka_ca_pem": (tls / "ca.pem").read_text(),
                          "elasticsearch_ca_pem": (tls / "ca.pem").read_text()})
    run = dags_test("logpipe_worker_check", {"secrets": f"aws-sm://{name}"}, logpipe_bin)
    assert run.state == "failed"
    flat = run.flat
    assert "first-run check FAILED: kafka: Kafka authentication failed at 127.0.0.1:9094" in flat
    assert "elasticsearch: Elasticsearch at https://127.0.0.1:9202 (--es) refused authentication (HTTP 401)" in flat
    assert "round trip - not run: fix the failed checks above first" in flat
    assert "secrets manager ok read aws-sm://" in flat


def test_three_consumers_on_six_partitions_stay_exact(dags_test_db, logpipe_bin, kafka, kafka_admin, es, unique):
    topic = f"logs-af-{unique}"
    create_topic(kafka_admin, topic, partitions=6)
    prod = dags_test(PRODUCER, {"topic": topic, "malformed_ratio": 0.02}, logpipe_bin)
    assert prod.state == "success", prod.output[-3000:]
    cons = dags_test(CONSUMER, consumer_conf(topic, unique, consumers=3), logpipe_bin)
    assert cons.state == "success", cons.output[-3000:]
    summaries = [dags_test_xcom(CONSUMER, cons.run_id, "consume", map_index=i) for i in range(3)]
    result = dags_test_xcom(CONSUMER, cons.run_id, "reconcile")
    documents = es_count(es, f"logs-{unique}-*")
    assert result["committed"] == 15000 == documents + result["dead_lettered"]
    assert result["documents"] == documents and 0 < result["dead_lettered"] < 1000
    assert sum(s["indexed"] for s in summaries) == documents
    assert committed(kafka, group(unique), topic, 6) == high_watermarks(kafka, topic)


def test_elasticsearch_down_fails_commits_nothing_then_recovers(dags_test_db, logpipe_bin, kafka, es, unique):
    topic = f"logs-af-{unique}"
    assert dags_test(PRODUCER, {"topic": topic}, logpipe_bin).state == "success"
    stack = ["bash", str(ROOT / "stack" / "stack.sh")]
    subprocess.run([*stack, "stop", "es"], check=True, capture_output=True)
    try:
        down = dags_test(CONSUMER, consumer_conf(topic, unique), logpipe_bin)
    finally:
        subprocess.run([*stack, "up"], check=True, capture_output=True)
    assert down.state == "failed"
    assert "logpipe consume failed with exit code 4, an Elasticsearch error: logpipe consume: " \
           "Elasticsearch at http://127.0.0.1:9200 (--es) is unreachable" in down.flat
    assert all(o < 0 for o in committed(kafka, group(unique), topic, 3).values())  # nothing committed

    again = dags_test(CONSUMER, consumer_conf(topic, unique), logpipe_bin)
    assert again.state == "success", again.output[-3000:]
    assert es_count(es, f"logs-{unique}-*") == 15000
    assert dags_test_xcom(CONSUMER, again.run_id, "reconcile")["committed"] == 15000


def test_rest_api_runs_both_dags_in_the_running_airflow(live_airflow, kafka, es, unique):
    airflow = live_airflow
    topic = f"logs-af-{unique}"
    run = trigger(airflow, PRODUCER, {"topic": topic})
    assert wait_run(airflow, PRODUCER, run) == "success"
    run = trigger(airflow, CONSUMER, consumer_conf(topic, unique, consumers=2, until_idle=5))
    assert wait_run(airflow, CONSUMER, run) == "success", task_states(airflow, CONSUMER, run)
    assert es_count(es, f"logs-{unique}-*") == 15000
    result = xcom(airflow, CONSUMER, run, "reconcile")
    assert (result["committed"], result["documents"]) == (15000, 15000)
    log = task_log(airflow, CONSUMER, run, "consume", map_index=0)
    assert "logpipe consume" in log and "summary:" in log  # stderr streamed, summary logged


def test_secrets_stay_out_of_argv_and_the_task_log(live_airflow, logpipe_bin, kafka, kafka_admin, es, unique):
    """A consumer run in the running Airflow whose Elasticsearch connection has a
    password: it reaches Elasticsearch (a recording proxy sees it), but is neither in
    logpipe's argv while it runs nor in the task's log; same for an API key."""
    airflow = live_airflow
    topic = f"logs-af-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "300000", "--rate", "50000"],
                   check=True, capture_output=True)
    password, api_key = f"pw-{unique}-secret", f"key-{unique}-secret"
    with FaultProxy(es, Faults()) as proxy:
        for conn_id, conn in ((f"elasticsearch_pw_{unique}", {"login": "elastic", "password": password}),
                              (f"elasticsearch_key_{unique}", {"extra": json.dumps({"api_key": api_key})})):
            r = requests.post(f"{airflow}/connections", timeout=30,
                              json={"connection_id": conn_id, "conn_type": "elasticsearch", "host": proxy.url, **conn})
            r.raise_for_status()
        argvs = _watch_argv(topic)
        run = trigger(airflow, CONSUMER, consumer_conf(topic, unique, es_conn_id=f"elasticsearch_pw_{unique}"))
        state = wait_run(airflow, CONSUMER, run)
        argvs.stop()
        assert state == "success", task_states(airflow, CONSUMER, run)
        assert argvs.seen, "never saw logpipe consume running"
        assert not any(password.encode() in a for a in argvs.seen)
        logs = "".join(task_log(airflow, CONSUMER, run, t, i) for t, i in
                       (("snapshot", -1), ("consume", 0), ("reconcile", -1)))
        assert "logpipe consume" in logs and password not in logs
        assert "Basic " + base64.b64encode(f"elastic:{password}".encode()).decode() in proxy.faults.authorizations

        subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1000"], check=True,
                       capture_output=True)
        run = trigger(airflow, CONSUMER, consumer_conf(topic, unique, es_conn_id=f"elasticsearch_key_{unique}"))
        assert wait_run(airflow, CONSUMER, run) == "success", task_states(airflow, CONSUMER, run)
        logs = task_log(airflow, CONSUMER, run, "consume", 0)
        assert "logpipe consume" in logs and api_key not in logs
        assert f"ApiKey {api_key}" in proxy.faults.authorizations


class _watch_argv:
    """Collects the argv of every running `logpipe consume` of a topic (/proc/<pid>/cmdline)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic.encode()
        self.seen: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    cmd = p.read_bytes()
                except OSError:
                    continue
                if self.topic in cmd and b"\0consume\0" in cmd:
                    self.seen.append(cmd)
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_connections_from_secrets_manager_only(live_airflow, kafka, unique):
    """Both DAGs against SASL_SSL Kafka and TLS + API key Elasticsearch, with
    connections that exist only in the local Secrets Manager (Airflow's
    SecretsManagerBackend): not in the metadata DB, not in the environment."""
    airflow = live_airflow
    for conn_id in ("kafka_secure", "elasticsearch_secure"):
        assert requests.get(f"{airflow}/connections/{conn_id}", timeout=30).status_code == 404
    topic = f"logs-sm-{unique}"
    run = trigger(airflow, PRODUCER, {"topic": topic, "count": 5000, "kafka_conn_id": "kafka_secure"})
    assert wait_run(airflow, PRODUCER, run) == "success", task_states(airflow, PRODUCER, run)
    run = trigger(airflow, CONSUMER, consumer_conf(topic, unique, kafka_conn_id="kafka_secure",
                                                   es_conn_id="elasticsearch_secure"))
    assert wait_run(airflow, CONSUMER, run) == "success", task_states(airflow, CONSUMER, run)
    result = xcom(airflow, CONSUMER, run, "reconcile")
    assert (result["committed"], result["documents"]) == (5000, 5000)
    tls = ROOT / ".stack" / "tls"
    auth = ("elastic", (tls / "es-elastic.pass").read_text().strip())
    ca = str(tls / "ca.pem")
    requests.post(f"https://127.0.0.1:9201/logs-{unique}-*/_refresh", auth=auth, verify=ca, timeout=30)
    count = requests.get(f"https://127.0.0.1:9201/logs-{unique}-*/_count", auth=auth, verify=ca, timeout=30).json()
    assert count["count"] == 5000
    api_key = (tls / "es-api-key").read_text().strip()
    kafka_pw = (tls / "kafka-plain.pass").read_text().strip()
    logs = task_log(airflow, CONSUMER, run, "consume", 0) + task_log(airflow, CONSUMER, run, "reconcile")
    xcoms = json.dumps([result, xcom(airflow, CONSUMER, run, "consume", 0)])
    assert "logpipe consume" in logs
    for secret in (api_key, kafka_pw):
        assert secret not in logs and secret not in xcoms


def test_a_trigger_pointing_a_run_elsewhere_is_refused(dags_test_db, logpipe_bin, kafka_admin, unique):
    """dag_run.conf naming another team's topic, index or connection: Airflow
    refuses to create the run (the REST API answers 400 with the same message)."""
    for dag_id, param, value in ((PRODUCER, "topic", f"payments-{unique}"),
                                 (CONSUMER, "index", ".security-7"),
                                 (CONSUMER, "kafka_conn_id", "aws_default")):
        run = dags_test(dag_id, {"topic": f"logs-af-{unique}", param: value}, logpipe_bin)
        assert run.code != 0 and run.run_id is None, run.output[-3000:]
        assert f"Invalid input for param {param}: '{value}' does not match" in run.flat, run.output[-3000:]
    assert f"payments-{unique}" not in kafka_admin.list_topics(timeout=30).topics


def test_a_rest_trigger_pointing_a_run_elsewhere_is_refused(airflow, unique):
    """The same through the running Airflow's REST API, as the UI and MWAA trigger: 400, no run."""
    for dag_id, param, value in ((PRODUCER, "topic", f"payments-{unique}"),
                                 (CONSUMER, "group", "payments-indexer"),
                                 (CONSUMER, "es_conn_id", "aws_default")):
        r = requests.post(f"{airflow}/dags/{dag_id}/dagRuns", timeout=30,
                          json={"logical_date": None, "conf": {"topic": f"logs-af-{unique}", param: value}})
        assert r.status_code == 400, r.text
        assert f"Invalid input for param {param}: '{value}' does not match" in r.json()["detail"]
        runs = requests.get(f"{airflow}/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-start_date"},
                            timeout=30).json()["dag_runs"]
        assert not any(value in json.dumps(run.get("conf") or {}) for run in runs)


def _create_secret(name: str, value: dict[str, str]) -> None:
    """A secret in the stack's local Secrets Manager, signed with its profile."""
    import boto3

    keys = dict(line.split(" = ", 1) for line in (ROOT / ".stack" / "aws" / "credentials").read_text().splitlines()
                if " = " in line)
    boto3.client("secretsmanager", endpoint_url="http://127.0.0.1:5000", region_name="us-east-1",
                 aws_access_key_id=keys["aws_access_key_id"],
                 aws_secret_access_key=keys["aws_secret_access_key"]).create_secret(
        Name=name, SecretString=json.dumps(value))


def test_the_seeds_secret_replaces_both_connections(dags_test_db, logpipe_bin, kafka_admin, unique):
    """Both DAGs with `secrets: aws-sm://MWAA_Secrets-…` and connection ids that do
    not exist: produce, consume and reconcile reach SASL_SSL Kafka and the API-key
    Elasticsearch from the seed's keys alone (plus the local test CA, which no
    system trust store holds), resolved on the worker from its AWS credentials;
    no secret in argv, the task output or XCom."""
    tls = ROOT / ".stack" / "tls"
    kafka_pw, api_key = (tls / "kafka-plain.pass").read_text().strip(), (tls / "es-api-key").read_text().strip()
    ca = (tls / "ca.pem").read_text()
    name = f"MWAA_Secrets-{unique}"
    _create_secret(name, {"kafka_bootstrap_server": "127.0.0.1:9094", "kafka_username": "logpipe",
                          "kafka_secret": kafka_pw, "elasticsearch_URL": "https://127.0.0.1:9202",
                          "elasticsearch_API_Key": api_key, "kafka_ca_pem": ca, "elasticsearch_ca_pem": ca})
    topic, ref = f"logs-seed-{unique}", f"aws-sm://{name}"
    create_topic(kafka_admin, topic, partitions=2)
    prod = dags_test(PRODUCER, {"topic": topic, "count": 2000, "malformed_ratio": 0.01, "secrets": ref,
                                "kafka_conn_id": f"kafka_nosuch_{unique}"}, logpipe_bin)
    assert prod.state == "success", prod.output[-3000:]
    cons = dags_test(CONSUMER, consumer_conf(topic, unique, secrets=ref, kafka_conn_id=f"kafka_nosuch_{unique}",
                                          es_conn_id=f"elasticsearch_nosuch_{unique}"),
                     logpipe_bin)
    assert cons.state == "success", cons.output[-3000:]
    result = dags_test_xcom(CONSUMER, cons.run_id, "reconcile")
    summary = dags_test_xcom(CONSUMER, cons.run_id, "consume", map_index=0)
    assert result["committed"] == 2000 == result["documents"] + result["dead_lettered"]
    assert 0 < result["dead_lettered"] == summary["dead_lettered"]
    auth = ("elastic", (tls / "es-elastic.pass").read_text().strip())
    requests.post(f"https://127.0.0.1:9201/logs-{unique}-*/_refresh", auth=auth, verify=str(tls / "ca.pem"), timeout=30)
    count = requests.get(f"https://127.0.0.1:9201/logs-{unique}-*/_count", auth=auth, verify=str(tls / "ca.pem"),
                         timeout=30).json()["count"]
    assert count == result["documents"]
    # `airflow dags test` logs at DEBUG, where Airflow 3.0.6's task supervisor
    # prints the request by which a task hands it a value to mask
    # (MaskSecret(value=...)): Airflow's own line, not a task's output, and not
    # at MWAA's default INFO level. Everything else must be clean.
    out = "\n".join(ln for ln in (prod.output + cons.output).splitlines() if "MaskSecret(" not in ln)
    assert f"--secrets {ref}" in out and "--brokers" not in out  # the reference alone on the command line
    xcoms = json.dumps([result, summary, dags_test_xcom(PRODUCER, prod.run_id, "produce")])
    for secret in (kafka_pw, api_key):
        assert secret not in out and secret not in xcoms
