"""The first run that proves the platform: logpipe_worker_check's verdict.

On a new MWAA environment the first thing to fail is rarely logpipe's logic:
it is the worker's trust store, a secret the execution role may not read, a
broker the VPC cannot reach, an ACL. So before the pipelines run, this:

1. runs `logpipe check` with the same settings the pipelines use (the
   `secrets` reference, or the two connections): the carried libraries read
   the secret from Secrets Manager, shake hands with Kafka (TLS and SASL) and
   Elasticsearch (TLS and credentials), exactly as a run would;
2. if all of that passed, sends 20 lines round trip: a scratch topic
   `<prefix>-<id>`, `logpipe produce` into it, `logpipe consume` (group and
   index of the same name) out of it, and counts the documents in
   Elasticsearch;
3. removes the scratch topic, its dead-letter topic, the group and the index;
4. prints one verdict table, each row what was checked, ok / FAILED, and why,
   returns it (XCom: endpoints and logpipe's error messages, which never
   carry a credential) and fails the task naming every failed row.

`logpipe check` does the handshakes, so a `logpipe check` that grows more
rows (ACLs, privileges) shows them here unchanged.
"""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any

from logpipe_airflow.binary import logpipe_binary
from logpipe_airflow.compat import AirflowFailException
from logpipe_airflow.connections import ElasticsearchConnection, KafkaConnection, secrets_ref
from logpipe_airflow.operators import child_environment, connection_args

log = logging.getLogger(__name__)

ROUND_TRIP_LINES = 20


@dataclass
class Settings:
    """logpipe's arguments and secret environment: Kafka's alone (produce), and
    Kafka's and Elasticsearch's (check, consume)."""

    kafka: tuple[list[str], dict[str, str]]
    both: tuple[list[str], dict[str, str]]


def _row(check: str, ok: bool | None, detail: str) -> dict[str, Any]:
    """ok None: not run, or a warning that does not fail the check."""
    return {"check": check, "ok": ok, "detail": detail}


def _logpipe(binary: str, args: list[str], env: dict[str, str]) -> tuple[int, dict | None, str]:
    """Runs logpipe: its exit code, its last JSON line, its own error line."""
    p = subprocess.run([binary, *args], env=child_environment(env), capture_output=True, text=True, timeout=180,
                       check=False)
    for line in p.stderr.splitlines():
        log.info("%s", line)
    said = [ln for ln in p.stderr.splitlines() if ln.startswith(f"logpipe {args[0]}: ")]
    summary = None
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            summary = json.loads(line)
            break
    return p.returncode, summary, said[-1] if said else p.stderr.strip()[-300:]


def endpoints(binary: str, args: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    code, summary, said = _logpipe(binary, ["check", *args], env)
    if summary is None:
        return [_row("logpipe check", False, f"exit code {code}: {said}")]
    rows = [_row(r["check"], r["ok"], r["detail"]) for r in summary["checks"]]
    for r in rows:  # the settings' own error is on stderr
        if r["ok"] is False and "on stderr" in r["detail"]:
            r["detail"] = said
    return rows


def _cleanup(kafka: KafkaConnection, es: ElasticsearchConnection, name: str) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient

    problems = []
    admin = AdminClient(kafka.client_config())
    for topic, f in admin.delete_topics([name, f"{name}.dlq"], operation_timeout=30).items():
        try:
            f.result(timeout=60)
        except Exception as e:  # noqa: BLE001  (reported, never raised: a leftover is not a failed platform)
            if "UNKNOWN_TOPIC" not in str(e):
                problems.append(f"topic {topic}: {e}")
    try:
        for f in admin.delete_consumer_groups([name], request_timeout=30).values():
            f.result(timeout=60)
    except Exception as e:  # noqa: BLE001
        if "GROUP_ID_NOT_FOUND" not in str(e):  # no consumer got as far as joining it
            problems.append(f"group {name}: {e}")
    s = es.session()
    r = s.delete(f"{es.url}/{name}", timeout=60, verify=s.verify)
    if r.status_code not in (200, 404):
        problems.append(f"index {name}: HTTP {r.status_code} {r.text[:200]}")
    if problems:
        return _row("cleanup", None, "left behind (delete by hand): " + "; ".join(problems))
    return _row("cleanup", True, f"removed topics {name} and {name}.dlq, group {name}, index {name}")


def _send_and_count(binary: str, conn: Settings, es: ElasticsearchConnection, name: str) -> dict[str, Any]:
    args, env = conn.both
    code, summary, said = _logpipe(binary, ["produce", *conn.kafka[0], "--topic", name, "--count", str(ROUND_TRIP_LINES),
                                            "--summary", "json"], conn.kafka[1])
    if code != 0:
        return _row("round trip", False, f"logpipe produce into {name} exited {code}: {said}")
    code, summary, said = _logpipe(binary, ["consume", *args, "--topic", name, "--group", name, "--index", name,
                                            "--until-idle", "2", "--max-seconds", "90", "--no-template", "--no-progress"],
                                   env)
    if code != 0 or summary is None:
        return _row("round trip", False, f"logpipe consume from {name} exited {code}: {said}")
    s = es.session()
    s.post(f"{es.url}/{name}/_refresh", timeout=60, verify=s.verify)
    r = s.get(f"{es.url}/{name}/_count", timeout=60, verify=s.verify)
    documents = r.json().get("count") if r.ok else f"HTTP {r.status_code}"
    ok = summary["consumed"] == summary["indexed"] == documents == ROUND_TRIP_LINES
    return _row("round trip", ok, f"{ROUND_TRIP_LINES} lines produced to topic {name}; consumed "
                                  f"{summary['consumed']}, indexed {summary['indexed']}; Elasticsearch counts "
                                  f"{documents} in index {name}")


def round_trip(binary: str, conn: Settings, kafka: KafkaConnection, es: ElasticsearchConnection, prefix: str) -> list[dict[str, Any]]:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin = AdminClient(kafka.client_config())
    try:
        admin.create_topics([NewTopic(name, num_partitions=1)], operation_timeout=30)[name].result(timeout=60)
    except Exception as e:  # noqa: BLE001  (the row says why; nothing was created)
        return [_row("round trip", False, f"cannot create the scratch topic {name}: {e} "
                                          f"(grant CREATE on topic prefix {prefix}-, docs/deploy.md)")]
    try:
        sent = _send_and_count(binary, conn, es, name)
    finally:
        cleanup = _cleanup(kafka, es, name)
    return [sent, cleanup]


def table(rows: list[dict[str, Any]]) -> str:
    verdict = {True: "ok", False: "FAILED", None: "-"}
    width = max(len(r["check"]) for r in rows)
    lines = [f"{'check'.ljust(width)}  verdict  detail"]
    lines += [f"{r['check'].ljust(width)}  {verdict[r['ok']].ljust(7)}  {r['detail']}" for r in rows]
    return "\n".join(lines)


def check_first_run(platform: dict[str, Any], kafka_conn_id: str, es_conn_id: str, secrets: str | None,
                    prefix: str = "logpipe-check") -> list[dict[str, Any]]:
    rows = [_row("platform", True, f"{platform['machine']}, glibc {platform['glibc']}, {platform['logpipe']}")]
    with logpipe_binary() as binary:
        conn = None
        try:
            conn = Settings(connection_args(kafka_conn_id, secrets),
                            connection_args(kafka_conn_id, secrets, es_conn_id))
        except AirflowFailException as e:
            rows.append(_row("settings", False, str(e)))
        if conn:
            rows += endpoints(binary, *conn.both)
        if all(r["ok"] for r in rows):
            ref = secrets_ref(secrets)
            kafka, es = KafkaConnection.for_task(kafka_conn_id, ref), ElasticsearchConnection.for_task(es_conn_id, ref)
            rows += round_trip(binary, conn, kafka, es, prefix)
        else:
            rows.append(_row("round trip", None, "not run: fix the failed checks above first"))
    print("logpipe first-run check\n" + table(rows))
    failed = [f"{r['check']}: {r['detail']}" for r in rows if r["ok"] is False]
    if failed:
        raise AirflowFailException("first-run check FAILED: " + " | ".join(failed))
    return rows
