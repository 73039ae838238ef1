"""--metrics-listen on the real stack: a live consume and a live produce are
scraped over HTTP, the text is parsed with prometheus_client's parser, and
the values are checked against what Elasticsearch and Kafka hold; /healthz
turns 503, naming Elasticsearch, while a fault proxy in front of the real
Elasticsearch answers every _bulk with 503, and 200 again once it stops."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
import requests
from conftest import es_count
from faultproxy import FaultProxy, Faults
from helpers import START, high_watermarks, read_topic, run
from prometheus_client.parser import text_string_to_metric_families
from test_log_format import json_lines


class Live:
    """A logpipe run with --metrics-listen 127.0.0.1:0; stderr collected on a thread."""

    def __init__(self, logpipe_bin: str, *args: str) -> None:
        self.p = subprocess.Popen([logpipe_bin, *args, "--metrics-listen", "127.0.0.1:0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self.reader = threading.Thread(target=lambda: self.err.extend(iter(self.p.stderr.readline, "")), daemon=True)
        self.reader.start()
        found = wait_for(lambda: next((m for line in self.err if (m := re.search(r"http://(127\.0\.0\.1:\d+)/metrics",
                                                                                   line))), None), 30, self)
        self.base = f"http://{found.group(1)}"

    def scrape(self) -> dict[str, float]:
        """Every sample, keyed by name and labels: 'name{k="v",...}' or 'name'."""
        r = requests.get(f"{self.base}/metrics", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        out = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def health(self) -> tuple[int, str]:
        r = requests.get(f"{self.base}/healthz", timeout=10)
        return r.status_code, r.text.strip()

    def stop(self, timeout: float = 120) -> tuple[int, str]:
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=timeout)
        self.reader.join(10)
        return self.p.returncode, out


def wait_for(cond: Callable, timeout: float, live: Live | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if v := cond():
            return v
        if live and live.p.poll() is not None:
            raise AssertionError(f"logpipe exited {live.p.returncode}: {''.join(live.err)[-3000:]}")
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s" + (f"; logpipe said: {''.join(live.err)[-3000:]}" if live else ""))


def lags(m: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in m.items() if k.startswith("logpipe_partition_lag{")}


def settled(m: dict[str, float], total: int) -> bool:
    return (m["logpipe_consumed_messages_total"] == total
            and m["logpipe_indexed_documents_total"] + m["logpipe_rejected_messages_total"] == total
            and m["logpipe_dead_lettered_messages_total"] == m["logpipe_rejected_messages_total"]
            and len(lags(m)) == 3 and not any(lags(m).values()))


def test_consume_metrics_match_elasticsearch_and_health_follows_it(logpipe_bin, kafka, es, topic, unique):
    produce = ["produce", "-b", kafka, "-t", topic, "--start", START]
    assert run(logpipe_bin, *produce, "--count", "400", "--seed", "16", "--malformed-ratio", "0.1").code == 0
    faults = Faults()
    with FaultProxy(es, faults) as proxy:
        live = Live(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}", "-e", proxy.url,
                    "-i", unique, "--flush-ms", "200", "--unhealthy-after", "2", "--log-format", "json", "-v")
        m = wait_for(lambda: (s := live.scrape()) and settled(s, 400) and s, 90, live)
        rejected = int(m["logpipe_rejected_messages_total"])
        assert 0 < rejected < 400
        assert m["logpipe_indexed_documents_total"] == es_count(es, unique)
        assert len(read_topic(kafka, f"{topic}.dlq", rejected)) == rejected
        assert m["logpipe_partitions_assigned"] == 3 and m["logpipe_partitions_paused"] == 0
        assert m['logpipe_bulk_requests_total{outcome="ok"}'] >= 1
        assert m["logpipe_bulk_duration_seconds_count"] == sum(
            v for k, v in m.items() if k.startswith("logpipe_bulk_requests_total{"))
        assert m['logpipe_bulk_duration_seconds_bucket{le="+Inf"}'] == m["logpipe_bulk_duration_seconds_count"]
        assert m["logpipe_consumed_bytes_total"] > 400 * 50
        assert m["process_resident_memory_bytes"] > 1 << 20
        assert live.health() == (200, "ok: caught up")

        # Elasticsearch answers every _bulk with 503: unhealthy past 2 s, with the reason
        faults.fail_503_requests = 10**9
        assert run(logpipe_bin, *produce, "--count", "20", "--seed", "17").code == 0
        _, reason = wait_for(lambda: (h := live.health())[0] == 503 and h, 60, live)
        assert "Elasticsearch" in reason and "HTTP 503" in reason, reason
        m = live.scrape()
        assert m['logpipe_bulk_requests_total{outcome="error"}'] >= 1 and m["logpipe_retries_total"] >= 1

        faults.fail_503_requests = 0
        m = wait_for(lambda: (s := live.scrape()) and settled(s, 420) and s, 90, live)
        assert live.health()[0] == 200
        code, out = live.stop()
    assert code == 0, "".join(live.err)[-3000:]
    logged = json_lines("".join(live.err))  # every line of the run's log is a JSON object
    assert any("assigned 3 partition(s)" in o["message"] for o in logged)
    summary = json.loads(out.strip().splitlines()[-1])
    for key, name in [("consumed", "logpipe_consumed_messages_total"), ("indexed", "logpipe_indexed_documents_total"),
                      ("rejected", "logpipe_rejected_messages_total"), ("retries", "logpipe_retries_total"),
                      ("dead_lettered", "logpipe_dead_lettered_messages_total")]:
        assert summary[key] == m[name], key
    assert es_count(es, unique) == m["logpipe_indexed_documents_total"] == 420 - rejected


def test_produce_metrics_match_the_topic(logpipe_bin, kafka, topic):
    live = Live(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "0", "--rate", "400",
                "--summary", "json")
    before = wait_for(lambda: (s := live.scrape())["logpipe_delivered_messages_total"] >= 300 and s, 30, live)
    in_kafka = sum(high_watermarks(kafka, topic).values())
    after = live.scrape()
    # what was acknowledged is in the topic; what is in the topic was produced
    assert before["logpipe_delivered_messages_total"] <= in_kafka <= after["logpipe_produced_messages_total"]
    assert after["logpipe_delivery_failures_total"] == 0
    assert after["logpipe_produced_bytes_total"] > 50 * after["logpipe_produced_messages_total"]
    assert live.health() == (200, "ok")
    code, out = live.stop()
    assert code == 0, "".join(live.err)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["delivered"] == sum(high_watermarks(kafka, topic).values()) >= after["logpipe_produced_messages_total"]


@pytest.mark.parametrize("command", ["consume", "produce"])
def test_a_bad_or_busy_address_stops_before_any_data(logpipe_bin, kafka, es, topic, unique, command):
    args = ["-b", kafka, "-t", topic] + (["-g", f"g-{unique}", "-e", es, "-i", unique] if command == "consume"
                                         else ["--count", "10"])
    for bad in ["9464", "127.0.0.1:99999", "*:9464", "[::1]9464"]:
        r = run(logpipe_bin, command, *args, "--metrics-listen", bad, timeout=30)
        assert r.code == 2 and "--metrics-listen" in r.stderr and bad in r.stderr, r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(logpipe_bin, command, *args, "--metrics-listen", f"127.0.0.1:{port}", timeout=30)
    assert r.code == 2 and f"--metrics-listen 127.0.0.1:{port}" in r.stderr and "in use" in r.stderr, r.stderr
    assert sum(high_watermarks(kafka, topic).values()) == 0
