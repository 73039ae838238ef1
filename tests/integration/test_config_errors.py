"""Bad configuration stops logpipe before it touches data: one line naming the
problem and the option, a documented exit code, no offsets committed and no
document written. docs/guarantees.md has the table these tests back."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import es_count
from helpers import committed, run


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
    assert r.code == 4
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
