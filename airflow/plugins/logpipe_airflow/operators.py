"""LogpipeProduceOperator and LogpipeConsumeOperator: logpipe as Airflow tasks.

Each runs the binary as a child process and does what a BashOperator would
not: its stderr goes into the task log line by line as it comes, its JSON
run summary becomes the task's XCom, its exit code becomes a failure message
that says which system failed (2 configuration, 3 Kafka, 4 Elasticsearch,
5 partial), credentials travel only by environment and are masked, and a
stopped task stops the child the way logpipe expects (SIGTERM: it finishes
in-flight bulks and commits; SIGKILL only if that takes too long).

The child gets an allowlist of the task's environment (CHILD_ENV), not all
of it: what the AWS credential chain needs (on MWAA the execution role's
container credentials, which a replaced environment would silently drop),
locale, time zone, CA and proxy settings. Airflow's own settings (database
URL, fernet key, JWT secret, AIRFLOW_CONN_*), LD_PRELOAD and anything else
a worker happens to carry stay out of logpipe's /proc/<pid>/environ, and
out of reach of an `env://` reference.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from logpipe_airflow.binary import logpipe_binary
from logpipe_airflow.compat import AirflowException, AirflowFailException, BaseOperator
from logpipe_airflow.connections import ElasticsearchConnection, KafkaConnection, secrets_ref

# The worker variables logpipe may read (lib/aws, lib/secrets, libcurl,
# OpenSSL, libc): documented in docs/secrets.md. Add a name here, not a prefix.
CHILD_ENV = frozenset({
    "PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "LC_TIME",
    # the AWS credential chain and endpoints (docs/secrets.md)
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_STS", "AWS_CA_BUNDLE",
    # TLS trust and configuration, proxies (lib/tls, OpenSSL, libcurl)
    "SSL_CERT_FILE", "SSL_CERT_DIR", "OPENSSL_CONF", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "NO_PROXY", "no_proxy",
    # sanitizer builds (make test-asan)
    "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
})


def child_environment(secret_env: dict[str, str]) -> dict[str, str]:
    """What logpipe runs with: the allowlisted worker variables and its credentials."""
    return {**{k: v for k, v in os.environ.items() if k in CHILD_ENV}, **secret_env}


# logpipe's exit codes (lib/core/error.c, lp_exit_codes): each meaning is the
# C table's, with an article and, where the operator has one, its own remark in
# parentheses. A copy, since the table is in the binary; the test
# tests/integration/test_exit_codes.py fails when the two drift.
EXIT_MEANING = {
    1: "an input/output error",
    2: "a usage or configuration error (not retried: fix the DAG or the connection)",
    3: "a Kafka error",
    4: "an Elasticsearch error",
    5: "a partial run: some messages were not acknowledged, were not committed and will be consumed again",
}


def connection_args(kafka_conn_id: str, secrets: str | None,
                    es_conn_id: str | None = None) -> tuple[list[str], dict[str, str]]:
    """How logpipe reaches Kafka (and Elasticsearch, given es_conn_id): the
    `secrets` reference when set, which logpipe resolves itself from the
    task's AWS credentials (nothing secret passes through this process), else
    the connections' settings and secret environment."""
    ref = secrets_ref(secrets)
    if ref:
        return ["--secrets", ref], {}
    kafka = KafkaConnection.from_connection(kafka_conn_id)
    if es_conn_id is None:
        return kafka.cli_args(), kafka.child_env()
    es = ElasticsearchConnection.from_connection(es_conn_id)
    return [*kafka.cli_args(), *es.cli_args()], {**kafka.child_env(), **es.child_env()}


class LogpipeOperator(BaseOperator):
    """Runs `logpipe <subcommand>`; subclasses build the arguments."""

    subcommand = ""
    ui_color = "#d9ecf2"
    # How long a stopped child gets to drain and commit before SIGKILL.
    kill_grace_s = 40.0

    def __init__(self, *, kafka_conn_id: str = "kafka_default", secrets: str | None = None,
                 extra_args: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id = kafka_conn_id
        self.secrets = secrets
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    def build(self) -> tuple[list[str], dict[str, str]]:
        """The arguments (no secrets) and the secret environment for the child."""
        raise NotImplementedError

    def connection_args(self, es_conn_id: str | None = None) -> tuple[list[str], dict[str, str]]:
        return connection_args(self.kafka_conn_id, self.secrets, es_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        args, secret_env = self.build()
        with logpipe_binary() as binary:
            cmd = [binary, self.subcommand, *args, *map(str, self.extra_args)]
            self.log.info("running: %s", shlex.join(cmd))
            code, summary, tail = self._run(cmd, secret_env)
        if summary is None and code == 0:
            raise AirflowException(f"logpipe {self.subcommand} exited 0 but printed no JSON summary")
        if code != 0:
            if summary is not None:
                context["ti"].xcom_push(key="summary", value=summary)
            raise self._failure(code, tail)
        self.log.info("summary: %s", json.dumps(summary, sort_keys=True))
        return summary

    def _run(self, cmd: list[str], secret_env: dict[str, str]) -> tuple[int, dict | None, list[str]]:
        self._proc = proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, env=child_environment(secret_env),
                                             start_new_session=True)
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        tail: deque[str] = deque(maxlen=10)
        for raw in proc.stderr:  # type: ignore[union-attr]
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)
                self.log.info("%s", line)
        code = proc.wait()
        reader.join()
        return code, _last_json_line(b"".join(out)), list(tail)

    def _failure(self, code: int, tail: list[str]) -> Exception:
        # logpipe's own error line ("logpipe consume: ..."), not a trailing --help hint
        ours = [line for line in tail if line.startswith(f"logpipe {self.subcommand}: ")]
        said = ours[-1] if ours else tail[-1] if tail else "(nothing on stderr)"
        if code < 0:
            return AirflowException(f"logpipe {self.subcommand} was killed by signal {-code}: {said}")
        meaning = EXIT_MEANING.get(code, "an unexpected exit code")
        msg = f"logpipe {self.subcommand} failed with exit code {code}, {meaning}: {said}"
        return AirflowFailException(msg) if code == 2 else AirflowException(msg)

    def on_kill(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.log.info("stopping logpipe (pid %d): SIGTERM, then SIGKILL after %.0f s", proc.pid,
                      self.kill_grace_s)
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=self.kill_grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _last_json_line(stdout: bytes) -> dict | None:
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


class LogpipeProduceOperator(LogpipeOperator):
    """Generates synthetic access-log lines into a Kafka topic (`logpipe produce`)."""

    subcommand = "produce"
    template_fields: Sequence[str] = ("topic", "count", "log_format", "rate", "seed", "malformed_ratio",
                                      "kafka_conn_id", "secrets", "extra_args")

    def __init__(self, *, topic: str, count: int | str = 15000, log_format: str = "combined_zoneless",
                 rate: int | str = 0, seed: int | str | None = None, malformed_ratio: float | str = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.count = count
        self.log_format = log_format
        self.rate = rate
        self.seed = seed
        self.malformed_ratio = malformed_ratio

    def build(self) -> tuple[list[str], dict[str, str]]:
        conn, env = self.connection_args()
        args = [*conn, "--topic", str(self.topic), "--count", str(self.count),
                "--format", str(self.log_format), "--rate", str(self.rate),
                "--malformed-ratio", str(self.malformed_ratio), "--summary", "json"]
        if self.seed not in (None, "", "None"):
            args += ["--seed", str(self.seed)]
        return args, env


class LogpipeConsumeOperator(LogpipeOperator):
    """One consumer-group member indexing a topic into Elasticsearch (`logpipe consume`).

    Bounded: it stops when caught up and idle for `until_idle` seconds, and
    never runs longer than `max_seconds` (keep it under the schedule interval).
    Several of these in one group (dynamic task mapping) share the partitions.
    """

    subcommand = "consume"
    template_fields: Sequence[str] = ("topic", "group", "index", "data_stream", "dlq_topic", "until_idle", "max_seconds",
                                      "log_format", "timezone", "kafka_conn_id", "es_conn_id", "secrets",
                                      "extra_args", "fail_on_backlog")

    def __init__(self, *, topic: str, group: str, index: str = "logs-access-%Y.%m.%d",
                 dlq_topic: str | None = None, until_idle: float | str = 10, max_seconds: float | str = 240,
                 log_format: str = "auto", timezone: str = "UTC", es_conn_id: str = "elasticsearch_default",
                 member: int = 0, fail_on_backlog: bool | str = False, data_stream: bool | str = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on_backlog = fail_on_backlog
        self.topic = topic
        self.group = group
        self.index = index
        self.data_stream = data_stream  # index names a data stream (--data-stream); "True" once templated
        self.dlq_topic = dlq_topic
        self.until_idle = until_idle
        self.max_seconds = max_seconds
        self.log_format = log_format
        self.timezone = timezone
        self.es_conn_id = es_conn_id
        self.member = member

    def build(self) -> tuple[list[str], dict[str, str]]:
        conn, env = self.connection_args(self.es_conn_id)
        args = [*conn, "--topic", str(self.topic), "--group", str(self.group),
                "--data-stream" if str(self.data_stream).lower() == "true" else "--index", str(self.index),
                "--until-idle", str(self.until_idle),
                "--max-seconds", str(self.max_seconds), "--format", str(self.log_format),
                "--timezone", str(self.timezone), "--no-progress", "--verbose",
                "-X", f"client.id=logpipe-airflow-{self.member}"]
        if self.dlq_topic not in (None, "", "None"):
            args += ["--dlq-topic", str(self.dlq_topic)]
        return args, env

    def execute(self, context: Any) -> dict[str, Any]:
        summary = super().execute(context)
        self.check_backlog(summary, context)
        return summary

    def check_backlog(self, summary: dict[str, Any], context: Any) -> None:
        """A bounded run (--max-seconds) can stop with messages left: green, yet
        behind. The summary's lag says so; the task log warns, and with
        fail_on_backlog the task fails (its summary still in XCom, key summary)."""
        backlog = summary.get("backlog")
        behind = {f"{t}/{p}": n for t, parts in (summary.get("lag") or {}).items() for p, n in parts.items() if n}
        if backlog == 0:
            return
        what = ("lag unknown (Kafka did not answer the end-offset request)" if backlog is None else
                f"backlog of {backlog} message(s) left in group {self.group}: lag per partition {behind}")
        self.log.warning("logpipe consume stopped with a %s", what)
        if str(self.fail_on_backlog).strip().lower() in ("true", "1", "yes"):
            context["ti"].xcom_push(key="summary", value=summary)
            raise AirflowException(f"logpipe consume stopped with a {what} (fail_on_backlog is on)")
