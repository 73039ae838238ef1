"""A fault-injecting HTTP proxy in front of Elasticsearch, on loopback.

Real Elasticsearch answers 429 only under real overload, which a 2-core test
machine cannot produce on demand, so this proxy forwards every request to the
real server and then, for _bulk responses, rewrites a share of the item
results to 429 (the documents were really indexed: a retry overwrites them by
_id, exactly as after a genuine partial 429). It can also answer whole
requests with 503 and add latency, to play a slow cluster. It counts what it
saw so tests can assert on retries, and which credentials arrived.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Self


@dataclass
class Faults:
    item_429_every: int = 0      # rewrite every Nth bulk item result to 429 (0: off)
    item_429_requests: int = 0   # ... in this many bulk requests
    fail_503_requests: int = 0   # answer this many bulk requests with 503 outright
    delay_s: float = 0.0         # added to every bulk request
    bulk_requests: int = 0
    bulk_answers: int = 0        # bulk requests answered: bulk_requests - bulk_answers are in flight
    rewritten_items: int = 0
    authorizations: set[str] = field(default_factory=set)  # Authorization headers seen, to prove credentials arrived
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(upstream: str, faults: Faults) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization"):
                with faults.lock:
                    faults.authorizations.add(self.headers["Authorization"])
            is_bulk = self.path.split("?")[0].endswith("/_bulk")
            inject_429 = fail = False
            if is_bulk:
                with faults.lock:
                    faults.bulk_requests += 1
                    if faults.fail_503_requests > 0:
                        faults.fail_503_requests -= 1
                        fail = True
                    elif faults.item_429_requests > 0:
                        faults.item_429_requests -= 1
                        inject_429 = True
                time.sleep(faults.delay_s)
            if fail:
                self._reply(503, b'{"error":"injected by faultproxy","status":503}', "application/json")
                return
            req = urllib.request.Request(upstream + self.path, data=body or None, method=self.command)
            for k in ("Content-Type", "Content-Encoding", "Authorization"):
                if self.headers.get(k):
                    req.add_header(k, self.headers[k])
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
            if inject_429 and status == 200:
                data = self._rewrite(data)
            self._reply(status, data, ctype)
            if is_bulk:
                with faults.lock:
                    faults.bulk_answers += 1

        def _rewrite(self, data: bytes) -> bytes:
            doc = json.loads(data)
            n = 0
            for i, item in enumerate(doc["items"]):
                if i % faults.item_429_every == 0:
                    result = next(iter(item.values()))
                    result["status"] = 429
                    result["error"] = {"type": "es_rejected_execution_exception", "reason": "injected"}
                    n += 1
            doc["errors"] = doc["errors"] or n > 0
            with faults.lock:
                faults.rewritten_items += n
            return json.dumps(doc).encode()

        def _reply(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/json")
            self.send_header("X-elastic-product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = _forward

    return Handler


class FaultProxy:
    def __init__(self, upstream: str, faults: Faults) -> None:
        self.faults = faults
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, faults))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

