"""Airflow Connections to logpipe's options and to Python clients.

`kafka_default` follows the convention of Airflow's own Kafka provider: its
extra is a JSON object of librdkafka properties, passed to logpipe as `-X`
(configuration passes straight through, as with kcat); host and port give
`bootstrap.servers` when the extra does not. `elasticsearch_default` follows
the Elasticsearch provider: schema/host/port make the URL, login/password
are basic auth, and the extra may hold `api_key`, `ca_certs` and
`verify_certs`.

Secrets never go on the command line (any local user can read a process's
argv): the SASL password and the Elasticsearch password or API key reach the
child through its environment (LOGPIPE_KAFKA_PASSWORD, LOGPIPE_ES_PASSWORD,
LOGPIPE_ES_API_KEY, which logpipe wipes once read), and every one is
registered with Airflow's secrets masker before anything can log it.

References (`aws-sm://`, `env://`, `file://`, which logpipe resolves at
start-up) are taken only in the credential fields themselves: the Kafka
password (or `sasl.password` in extra), the Elasticsearch password and
`api_key`. Anywhere else they are refused, naming the connection and the
field: logpipe resolves every `-X` value, `--brokers`, `--es` and
`--es-user`, so a reference in, say, `sasl.username` or `client.rack` would
send whatever secret it names (or an Airflow variable of the worker) to the
broker in the clear, and one in `bootstrap.servers` would hide where the
credentials go (docs/secrets.md, threat model).

Or one JSON secret replaces both connections: the DAGs' `secrets` param
(`aws-sm://MWAA_Secrets`), with the keys docs/secrets.md lists. The
operators pass only that reference to logpipe, which resolves it itself from
the worker's AWS credential chain (the execution role on MWAA); the Python
tasks (snapshot, reconcile) read it here with boto3 from the same chain
(`from_secret`). The values are masked as soon as they are read and never
returned, so they reach neither XCom nor the logs.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from logpipe_airflow.compat import AirflowFailException, get_connection, mask_secret

# librdkafka properties that hold secrets other than sasl.password: logpipe
# has no environment route for them, so refusing beats putting them on argv.
_UNSAFE_KAFKA_KEYS = ("ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret",
                      "ssl.key.pem", "sasl.kerberos.keytab")


# The reference schemes logpipe resolves (lib/secrets). Matched here without
# case or leading blanks, wider than logpipe itself, so nothing slips past.
_REFERENCE_SCHEMES = ("aws-sm://", "env://", "file://")


def _refuse_reference(conn_id: str, field_name: str, value: Any) -> None:
    """Fails when a non-credential field holds a secret reference."""
    text = str(value).strip().lower() if value is not None else ""
    scheme = next((s for s in _REFERENCE_SCHEMES if text.startswith(s)), None)
    if scheme:
        raise AirflowFailException(
            f"connection {conn_id}: {field_name} is a secret reference ({scheme}...); references are "
            "taken only in the credential fields (the password, sasl.password or api_key), "
            "so a connection cannot send a secret to a broker or host in another field")


# The --secrets keys logpipe maps (lib/secrets/secrets.c, docs/secrets.md),
# matched case-insensitively as there; the credentials among them are masked.
_SECRET_VALUES = ("kafka_secret", "kafka_password", "elasticsearch_api_key", "elasticsearch_password")
_AWS_SM = re.compile(r"aws-sm://(?P<id>[^?#]+)(\?region=(?P<region>[^&#]+))?$")


def secrets_ref(value: Any) -> str | None:
    """The DAG's `secrets` param: None when unset (empty, or a template that
    rendered None), else a checked aws-sm:// reference, which alone may go on
    logpipe's command line (a value would be readable by every local user)."""
    if value in (None, "", "None"):
        return None
    if not _AWS_SM.match(str(value)):
        raise AirflowFailException(f"secrets: expected aws-sm://SECRET_ID[?region=REGION], got {str(value)[:40]!r}")
    return str(value)


def load_secret(ref: str) -> dict[str, str]:
    """The JSON object `ref` (aws-sm://ID[?region=R]) names, with lower-case
    keys, read with boto3 from the default credential chain. Errors name the
    reference and AWS's error code, never a value."""
    m = _AWS_SM.match(secrets_ref(ref) or "")
    assert m is not None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    secret_id, region = m.group("id"), m.group("region")
    if not region and secret_id.startswith("arn:"):
        region = secret_id.split(":")[3]
    try:
        text = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id)["SecretString"]
    except ClientError as e:
        raise AirflowFailException(f"secrets: {ref}: {e.response['Error']['Code']}") from None
    except BotoCoreError as e:
        raise AirflowFailException(f"secrets: {ref}: {type(e).__name__}: {e}") from None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise AirflowFailException(f"secrets: {ref}: the value is not a JSON object")
    out = {str(k).lower(): v for k, v in value.items() if isinstance(v, str)}
    for key in _SECRET_VALUES:
        if out.get(key):
            mask_secret(out[key])
    return out


def _pem_file(pem: str) -> str:
    """A CA given as PEM text (elasticsearch_ca_pem), as the file requests needs."""
    fd, path = tempfile.mkstemp(prefix="logpipe-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    atexit.register(os.unlink, path)
    return path


def _extra(conn: Any) -> dict[str, Any]:
    raw = getattr(conn, "extra", None)
    if not raw:
        return {}
    try:
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError as e:
        raise AirflowFailException(f"connection {conn.conn_id}: extra is not valid JSON ({e})") from None
    if not isinstance(extra, dict):
        raise AirflowFailException(f"connection {conn.conn_id}: extra must be a JSON object")
    return extra


@dataclass
class KafkaConnection:
    """Where and how to reach Kafka, split into what may be shown and what may not."""

    conn_id: str
    bootstrap: str
    props: dict[str, str] = field(default_factory=dict)  # non-secret librdkafka properties
    password: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str) -> KafkaConnection:
        conn = get_connection(conn_id)
        props = {str(k): str(v) for k, v in _extra(conn).items()}
        for key in props:
            if key in _UNSAFE_KAFKA_KEYS:
                raise AirflowFailException(
                    f"connection {conn_id}: extra key {key!r} is a secret logpipe cannot take safely "
                    "(only sasl.password, or the connection's password field, is passed to it)")
        password = props.pop("sasl.password", None) or conn.password or None
        for key, value in props.items():
            _refuse_reference(conn_id, f"extra {key!r}", value)
        _refuse_reference(conn_id, "host", conn.host)
        _refuse_reference(conn_id, "login", conn.login)
        if conn.login and "sasl.username" not in props:
            props["sasl.username"] = conn.login
        props.pop("group.id", None)  # the DAG names the group
        bootstrap = props.pop("bootstrap.servers", None)
        if not bootstrap:
            if not conn.host:
                raise AirflowFailException(
                    f"connection {conn_id}: no broker (set host and port, or bootstrap.servers in extra)")
            bootstrap = f"{conn.host}:{conn.port or 9092}"
        if password:
            mask_secret(password)
        return cls(conn_id, bootstrap, props, password)

    @classmethod
    def from_secret(cls, ref: str) -> KafkaConnection:
        """As logpipe maps the secret: kafka_username means SASL_SSL + PLAIN
        unless kafka_security_protocol / kafka_sasl_mechanism say otherwise."""
        s = load_secret(ref)
        bootstrap = s.get("kafka_bootstrap_server") or s.get("kafka_bootstrap_servers")
        if not bootstrap:
            raise AirflowFailException(f"secrets: {ref}: no kafka_bootstrap_server key")
        props: dict[str, str] = {}
        if s.get("kafka_username"):
            props = {"security.protocol": s.get("kafka_security_protocol") or "SASL_SSL",
                     "sasl.mechanisms": s.get("kafka_sasl_mechanism") or "PLAIN",
                     "sasl.username": s["kafka_username"]}
        else:
            props.update({k: s[key] for key, k in (("kafka_security_protocol", "security.protocol"),
                                                   ("kafka_sasl_mechanism", "sasl.mechanisms")) if s.get(key)})
        if s.get("kafka_ca_pem"):
            props["ssl.ca.pem"] = s["kafka_ca_pem"]
        return cls(ref, bootstrap, props, s.get("kafka_secret") or s.get("kafka_password") or None)

    @classmethod
    def for_task(cls, conn_id: str, secrets: str | None) -> KafkaConnection:
        """The `secrets` reference when the DAG run sets one, else the connection."""
        ref = secrets_ref(secrets)
        return cls.from_secret(ref) if ref else cls.from_connection(conn_id)

    def cli_args(self) -> list[str]:
        args = ["--brokers", self.bootstrap]
        for k, v in self.props.items():
            args += ["-X", f"{k}={v}"]
        return args

    def child_env(self) -> dict[str, str]:
        return {"LOGPIPE_KAFKA_PASSWORD": self.password} if self.password else {}

    def client_config(self) -> dict[str, str]:
        """confluent-kafka configuration (the reconcile task's own reads)."""
        conf = {"bootstrap.servers": self.bootstrap, **self.props}
        if self.password:
            conf["sasl.password"] = self.password
        return conf


@dataclass
class ElasticsearchConnection:
    conn_id: str
    url: str
    user: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_file: str | None = None
    verify: bool = True

    @classmethod
    def from_connection(cls, conn_id: str) -> ElasticsearchConnection:
        conn = get_connection(conn_id)
        extra = _extra(conn)
        for key, value in extra.items():
            if key != "api_key":
                _refuse_reference(conn_id, f"extra {key!r}", value)
        _refuse_reference(conn_id, "host", conn.host)
        _refuse_reference(conn_id, "login", conn.login)
        host = conn.host or ""
        if "://" in host:
            url = host.rstrip("/")
        elif host:
            scheme = extra.get("scheme") or (conn.schema if conn.schema in ("http", "https") else "http")
            url = f"{scheme}://{host}:{conn.port or 9200}"
        else:
            raise AirflowFailException(f"connection {conn_id}: no host")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise AirflowFailException(
                f"connection {conn_id}: credentials in the URL are refused; use login/password or api_key")
        verify = str(extra.get("verify_certs", True)).lower() not in ("false", "0", "no")
        es = cls(conn_id, url, conn.login or None, conn.password or None, extra.get("api_key") or None,
                 extra.get("ca_certs") or None, verify)
        for secret in (es.password, es.api_key):
            if secret:
                mask_secret(secret)
        return es

    @classmethod
    def from_secret(cls, ref: str) -> ElasticsearchConnection:
        s = load_secret(ref)
        url = (s.get("elasticsearch_url") or "").rstrip("/")
        if not url:
            raise AirflowFailException(f"secrets: {ref}: no elasticsearch_URL key")
        ca = s.get("elasticsearch_ca_pem")
        return cls(ref, url, s.get("elasticsearch_username") or None, s.get("elasticsearch_password") or None,
                   s.get("elasticsearch_api_key") or None, _pem_file(ca) if ca else None)

    @classmethod
    def for_task(cls, conn_id: str, secrets: str | None) -> ElasticsearchConnection:
        ref = secrets_ref(secrets)
        return cls.from_secret(ref) if ref else cls.from_connection(conn_id)

    def cli_args(self) -> list[str]:
        args = ["--es", self.url]
        if self.user:
            args += ["--es-user", self.user]
        if self.ca_file:
            args += ["--es-ca", self.ca_file]
        if not self.verify:
            args.append("--es-insecure")
        return args

    def child_env(self) -> dict[str, str]:
        env = {}
        if self.password:
            env["LOGPIPE_ES_PASSWORD"] = self.password
        if self.api_key:
            env["LOGPIPE_ES_API_KEY"] = self.api_key
        return env

    def session(self) -> Any:
        """A requests session with the same authentication and TLS settings."""
        import requests

        s = requests.Session()
        if self.api_key:
            s.headers["Authorization"] = f"ApiKey {self.api_key}"
        elif self.user:
            s.auth = (self.user, self.password or "")
        s.verify = self.ca_file or self.verify
        return s
