"""Bad configuration stops logpipe before it touches data: one line naming the
problem and the option, a documented exit code, no offsets committed and no
document written. docs/guarantees.md has the table these tests back."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import es_count
from helpers import committed, high_watermarks, run


@contextmanager
def http_server(status: int, body: bytes, headers: dict[str, str]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_POST = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def consume(logpipe_bin, kafka, topic, group, es_url, *extra):
    return run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es_url,
               "-i", group, "--until-idle", "2", *extra, timeout=60)


def assert_untouched(kafka, es, topic, group):
    assert all(o < 0 for o in committed(kafka, group, topic, 3).values())
    assert es_count(es, "_all", {"term": {"_index": group}}) == 0


def test_not_elasticsearch(logpipe_bin, kafka, es, topic, unique):
    run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10")
    with http_server(200, b"<html>hello</html>", {"Content-Type": "text/html"}) as url:
        r = consume(logpipe_bin, kafka, topic, unique, url)
    assert r.code == 4
    assert f"{url} (--es) is not Elasticsearch" in r.stderr
    assert_untouched(kafka, es, topic, unique)


def test_rejected_credentials(logpipe_bin, kafka, es, topic, unique):
    run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10")
    body = b'{"error":{"type":"security_exception"},"status":401}'
    with http_server(401, body, {"X-elastic-product": "Elasticsearch"}) as url:
        r = consume(logpipe_bin, kafka, topic, unique, url)
    assert r.code == 2  # wrong credentials: configuration, as a wrong Kafka password
    assert "refused authentication (HTTP 401)" in r.stderr and "--es" in r.stderr
    assert_untouched(kafka, es, topic, unique)


def test_unknown_flag_and_bad_property(logpipe_bin, kafka, es, topic, unique):
    r = consume(logpipe_bin, kafka, topic, unique, es, "--bogus-flag")
    assert r.code == 2 and "bogus-flag" in r.stderr
    r = consume(logpipe_bin, kafka, topic, unique, es, "-X", "fetch.wait.max.ms=soon")
    assert r.code == 2 and "-X fetch.wait.max.ms=soon" in r.stderr
    r = consume(logpipe_bin, "127.0.0.1:9092,nohost", topic, unique, es)
    assert r.code == 2 and "--brokers" in r.stderr
    assert_untouched(kafka, es, topic, unique)


def test_unhealthy_after_without_metrics_listen_is_refused(logpipe_bin, kafka, es, topic, unique):
    # /healthz, the only reader of --unhealthy-after, exists only with
    # --metrics-listen: the threshold alone would promise a check nobody serves.
    r = consume(logpipe_bin, kafka, topic, unique, es, "--unhealthy-after", "5")
    assert r.code == 2
    assert "--unhealthy-after needs --metrics-listen" in r.stderr
    assert_untouched(kafka, es, topic, unique)
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10", "--unhealthy-after", "5")
    assert r.code == 2 and "--unhealthy-after needs --metrics-listen" in r.stderr
    assert not any(high_watermarks(kafka, topic).values()), "produce wrote before refusing"


def secret_file(tmp_path, unique, kafka, es) -> tuple[str, list[str]]:
    """A whole JSON secret in a 0600 file, as the seed stores it; returns its
    file:// reference and the values no message may contain."""
    values = {"kafka_bootstrap_server": kafka, "kafka_username": f"user-{unique}",
              "kafka_secret": f"kpass-{unique}", "elasticsearch_URL": es,
              "elasticsearch_API_Key": f"apikey-{unique}", "note": f"P4ss-{unique}:1234 x"}
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return f"file://{path}", [v for k, v in values.items() if k != "kafka_bootstrap_server"] + [kafka, es]


def assert_quotes_none(stderr: str, values: list[str]) -> None:
    for v in values:
        assert v not in stderr, f"stderr quotes a value of the secret: {stderr!r}"


def test_a_whole_json_secret_for_one_value_is_refused_without_quoting_it(logpipe_bin, kafka, es, topic, unique,
                                                                         tmp_path):
    ref, values = secret_file(tmp_path, unique, kafka, es)
    r = run(logpipe_bin, "produce", "--brokers", ref, "-t", topic, "--count", "1")
    assert r.code == 2 and "--brokers" in r.stderr and "did you forget #key?" in r.stderr, r.stderr
    assert_quotes_none(r.stderr, values)
    r = consume(logpipe_bin, kafka, topic, unique, ref)
    assert r.code == 2 and "--es" in r.stderr and "did you forget #key?" in r.stderr, r.stderr
    assert_quotes_none(r.stderr.replace(kafka, ""), values)
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1", "-X", f"sasl.password={ref}")
    assert r.code == 2 and "-X sasl.password" in r.stderr and "did you forget #key?" in r.stderr, r.stderr
    assert_quotes_none(r.stderr.replace(kafka, ""), values)
    # the seed's key of a credential for an endpoint: refused before it is read
    r = run(logpipe_bin, "produce", "--brokers", f"{ref}#kafka_secret", "-t", topic, "--count", "1")
    assert r.code == 2 and "did you mean #kafka_bootstrap_server?" in r.stderr, r.stderr
    assert_quotes_none(r.stderr, values)
    r = consume(logpipe_bin, kafka, topic, unique, f"{ref}#elasticsearch_API_Key")
    assert r.code == 2 and "did you mean #elasticsearch_URL?" in r.stderr, r.stderr
    assert_quotes_none(r.stderr.replace(kafka, ""), values)
    # any other key holding something else: the message names the reference, not the value
    r = run(logpipe_bin, "produce", "--brokers", f"{ref}#note", "-t", topic, "--count", "1")
    assert r.code == 2 and f"the value of {ref}#note is not a host:port" in r.stderr, r.stderr
    assert_quotes_none(r.stderr, values)
    r = consume(logpipe_bin, kafka, topic, unique, f"{ref}#note")
    assert r.code == 2 and f"the value of {ref}#note is not an http:// or https:// URL" in r.stderr, r.stderr
    assert_quotes_none(r.stderr.replace(kafka, ""), values)
    assert_untouched(kafka, es, topic, unique)
    # with the seed's keys, the same references work for both endpoints
    r = run(logpipe_bin, "produce", "--brokers", f"{ref}#kafka_bootstrap_server", "-t", topic, "--count", "5")
    assert r.code == 0, r.stderr
    r = consume(logpipe_bin, f"{ref}#kafka_bootstrap_server", topic, unique, f"{ref}#elasticsearch_URL")
    assert r.code == 0 and json.loads(r.stdout.splitlines()[-1])["indexed"] == 5, r.stderr


def test_references_in_x_only_for_credential_properties(logpipe_bin, kafka, es, topic, unique, tmp_path):
    ref, values = secret_file(tmp_path, unique, kafka, es)
    for prop in (f"bootstrap.servers={ref}#kafka_bootstrap_server", f"client.rack={ref}#kafka_secret",
                 "client.id=env://HOME", "ssl.ca.location=file:///etc/passwd"):
        r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1", "-X", prop)
        key = prop.split("=", 1)[0]
        assert r.code == 2 and f"-X {key}" in r.stderr and "credential properties" in r.stderr, r.stderr
        assert_quotes_none(r.stderr.replace(kafka, ""), values)
    # a literal secret on the command line is refused, naming the key and the way to pass it
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1", "-X", f"sasl.password=lit-{unique}")
    assert r.code == 2 and "-X sasl.password takes a reference" in r.stderr and "LOGPIPE_KAFKA_PASSWORD" in r.stderr
    assert f"lit-{unique}" not in r.stderr
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1", "-X", f"ssl.key.password=lit-{unique}")
    assert r.code == 2 and "-X ssl.key.password takes a reference" in r.stderr
    # credential properties still take references (and sasl.username a literal)
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "1", "-X", "sasl.username=someone",
            "-X", f"sasl.password={ref}#kafka_secret")
    assert r.code == 0, r.stderr


@contextmanager
def elasticsearch_imitation(bomb_on: str) -> Iterator[str]:
    """Answers like Elasticsearch (a version, an acknowledged template, every
    privilege held), except that the request whose path starts with bomb_on
    gets a gzip bomb: 64 KiB on the wire, 64 MiB decoded."""
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            gz = self.path.startswith(bomb_on)
            body = bomb if gz else b'{"version":{"number":"8.19.0"},"acknowledged":true,"has_all_requested":true}'
            self.send_response(200)
            self.send_header("X-elastic-product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_POST = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_elasticsearch_responses_are_capped_after_decompression(logpipe_bin, kafka, es, topic, unique):
    run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10")
    for path, what in (("/_bulk", "answered _bulk with more than"), ("/", "sent a response larger than 1024 KiB")):
        with elasticsearch_imitation(bomb_on=path) as url:
            started = time.time()
            r = consume(logpipe_bin, kafka, topic, unique, url)
        assert r.code == 4 and f"Elasticsearch at {url} (--es) {what}" in r.stderr, r.stderr
        assert time.time() - started < 30
    assert all(o < 0 for o in committed(kafka, unique, topic, 3).values())
