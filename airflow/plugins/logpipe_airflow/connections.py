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
"""

from __future__ import annotations

import json
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
class Kafka:
    """Where and how to reach Kafka, split into what may be shown and what may not."""

    conn_id: str
    bootstrap: str
    props: dict[str, str] = field(default_factory=dict)  # non-secret librdkafka properties
    password: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str) -> Kafka:
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
class Elasticsearch:
    conn_id: str
    url: str
    user: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_file: str | None = None
    verify: bool = True

    @classmethod
    def from_connection(cls, conn_id: str) -> Elasticsearch:
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
