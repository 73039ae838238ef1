"""Data streams, and templates that never collide (issue 15, points 1, 2, 4):
logpipe's templates against the shape every default Elasticsearch has, the
built-in `logs` template on logs-*-* (priority 100, a data stream), which
`stack.sh up` installs on the local integ-test distribution.

What a user checks: where the documents are (a data stream's backing
indices, or a plain dated index), how many, that nothing was dead-lettered,
and what a replay does before and after a rollover (docs/guarantees.md).

The integ-test distribution has no data stream REST API (PUT/GET/DELETE
_data_stream: the data-streams module is not in it, nor on Maven Central),
so the streams here are created by their first write and stay behind
(their write index cannot be deleted); each test's names are unique, and
their shards are few (0 replicas).
"""

from __future__ import annotations

import requests
from conftest import create_topic, es_count
from helpers import START, run

LINES = 20


def produce(logpipe: str, kafka: str, topic: str, seed: int) -> None:
    r = run(logpipe, "produce", "-b", kafka, "-t", topic, "--count", str(LINES), "--seed", str(seed),
            "--start", START)
    assert r.code == 0, r.stderr


def consume(logpipe: str, kafka: str, es: str, topic: str, group: str, *target: str):
    r = run(logpipe, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, *target, "--until-idle", "1",
            "--replicas", "0", "--verbose", timeout=120)
    assert r.code == 0, r.stderr
    return r.summary()


def resolve(es: str, name: str) -> dict:
    r = requests.get(f"{es}/_resolve/index/{name}", timeout=30)
    r.raise_for_status()
    return r.json()


def backing_counts(es: str, stream: str) -> dict[str, int]:
    """Documents per backing index of a data stream."""
    requests.post(f"{es}/{stream}/_refresh", timeout=30).raise_for_status()
    rows = requests.get(f"{es}/_cat/indices/.ds-{stream}-*", params={"format": "json", "h": "index,docs.count,health"},
                        timeout=30).json()
    assert all(r["health"] == "green" for r in rows), rows
    return {r["index"]: int(r["docs.count"]) for r in rows}


def test_data_stream_writes_replays_and_rollover(logpipe_bin, kafka, kafka_admin, es, unique):
    topic, stream = f"ds-{unique}", f"logs-{unique}-default"
    create_topic(kafka_admin, topic)
    produce(logpipe_bin, kafka, topic, 15)
    s = consume(logpipe_bin, kafka, es, topic, f"g1-{unique}", "--data-stream", stream)
    assert (s["consumed"], s["indexed"], s["dead_lettered"]) == (LINES, LINES, 0)
    streams = resolve(es, stream)["data_streams"]
    assert [d["name"] for d in streams] == [stream]  # a data stream, not an index
    tpl = requests.get(f"{es}/_index_template/logpipe-{stream}@data-stream", timeout=30).json()
    body = tpl["index_templates"][0]["index_template"]
    assert body["index_patterns"] == [stream] and "data_stream" in body and body["priority"] > 500
    assert body["template"]["settings"]["index"]["number_of_replicas"] == "0"
    first = backing_counts(es, stream)
    assert list(first.values()) == [LINES]
    doc = requests.get(f"{es}/{stream}/_search", json={"query": {"ids": {"values": [f"{topic}-0-0"]}}},
                       timeout=30).json()
    assert doc["hits"]["hits"][0]["_source"]["kafka"] == {"topic": topic, "partition": 0, "offset": 0}

    # A replay (a new group reads it all again): every create answers 409,
    # which is acknowledged: committed, nothing dead-lettered, no new copy.
    s = consume(logpipe_bin, kafka, es, topic, f"g2-{unique}", "--data-stream", stream)
    assert (s["consumed"], s["indexed"], s["refused"], s["dead_lettered"]) == (LINES, LINES, 0, 0)
    assert s["committed"][topic] == {"0": LINES}
    assert backing_counts(es, stream) == first

    # After a rollover the _id check covers the write index only: the same
    # replay writes a second copy of every document (docs/guarantees.md).
    requests.post(f"{es}/{stream}/_rollover", timeout=30).raise_for_status()
    s = consume(logpipe_bin, kafka, es, topic, f"g3-{unique}", "--data-stream", stream)
    assert (s["indexed"], s["dead_lettered"]) == (LINES, 0)
    after = backing_counts(es, stream)
    assert sorted(after.values()) == [LINES, LINES] and len(after) == 2
    assert es_count(es, stream) == 2 * LINES


def test_each_mode_with_and_without_no_template(logpipe_bin, kafka, kafka_admin, es, unique):
    """--no-template: a dated index under logs-*-* stays a plain index once
    setup installed logpipe's template (consume installing it is
    test_nested_deployments_coexist's case, a data stream's the test above);
    a data stream with no logpipe template falls to the built-in logs
    template and is still written."""
    topic = f"nt-{unique}"
    create_topic(kafka_admin, topic)
    produce(logpipe_bin, kafka, topic, 16)
    # dated, --no-template after logpipe setup: a plain index, though logs-*-* matches its name
    dated, day = f"logs-{unique}-%Y.%m.%d", f"logs-{unique}-2026.01.21"
    r = run(logpipe_bin, "setup", "--es", es, "-i", dated, "--replicas", "0")
    assert r.code == 0, r.stderr
    assert f"index template logpipe-logs-{unique} installed: pattern logs-{unique}-*" in r.stdout
    s = consume(logpipe_bin, kafka, es, topic, f"g1-{unique}", "-i", dated, "--no-template")
    assert (s["indexed"], s["dead_lettered"]) == (LINES, 0)
    assert resolve(es, day)["data_streams"] == [] and es_count(es, day) == LINES

    # data stream, --no-template, no setup: the built-in logs template makes it
    stream = f"logs-{unique}ds-nt"
    s = consume(logpipe_bin, kafka, es, topic, f"g2-{unique}", "--data-stream", stream, "--no-template")
    assert (s["indexed"], s["dead_lettered"]) == (LINES, 0)
    assert requests.get(f"{es}/_index_template/logpipe-{stream}@data-stream", timeout=30).status_code == 404
    assert [d["name"] for d in resolve(es, stream)["data_streams"]] == [stream]
    assert es_count(es, stream) == LINES


def test_nested_deployments_coexist(logpipe_bin, kafka, kafka_admin, es, unique):
    """logs-<u>-* and logs-<u>-eu-*: two templates, the more specific wins
    for the eu indices; before issue 15 the second stopped with exit 4."""
    topic = f"nest-{unique}"
    create_topic(kafka_admin, topic)
    produce(logpipe_bin, kafka, topic, 17)
    outer, inner = f"logs-{unique}-%Y.%m.%d", f"logs-{unique}-eu-%Y.%m.%d"
    for group, index in ((f"g1-{unique}", outer), (f"g2-{unique}", inner)):
        s = consume(logpipe_bin, kafka, es, topic, group, "-i", index)
        assert (s["indexed"], s["dead_lettered"]) == (LINES, 0)
    templates = {t["name"]: t["index_template"] for t in
                 requests.get(f"{es}/_index_template/logpipe-logs-{unique}*", timeout=30).json()["index_templates"]}
    assert set(templates) == {f"logpipe-logs-{unique}", f"logpipe-logs-{unique}-eu"}
    assert templates[f"logpipe-logs-{unique}-eu"]["priority"] > templates[f"logpipe-logs-{unique}"]["priority"] > 500
    eu = f"logs-{unique}-eu-2026.01.21"
    sim = requests.post(f"{es}/_index_template/_simulate_index/{eu}", timeout=30).json()
    assert sim["template"]["mappings"]["properties"]["source"]["properties"]["ip"]["type"] == "ip"
    assert [o["name"] for o in sim.get("overlapping", [])] != []  # the outer template matched too, and lost
    assert es_count(es, eu) == LINES and es_count(es, f"logs-{unique}-2026.01.21") == LINES


def template_stamp(es: str, name: str) -> str:
    tpl = requests.get(f"{es}/_index_template/{name}", timeout=30).json()
    return tpl["index_templates"][0]["index_template"]["_meta"]["logpipe_stamp"]


def test_refresh_ms_is_the_new_indices_refresh_interval(logpipe_bin, kafka, kafka_admin, es, unique):
    """--refresh-ms: how soon a document becomes searchable, an index setting
    the operator chooses (docs/performance.md, latency). It is part of the
    template, so of its stamp: consume with the same settings keeps the
    template setup installed, and a consume without them would replace it."""
    topic = f"rf-{unique}"
    create_topic(kafka_admin, topic)
    produce(logpipe_bin, kafka, topic, 18)
    dated, day, name = f"logs-{unique}-%Y.%m.%d", f"logs-{unique}-2026.01.21", f"logpipe-logs-{unique}"
    r = run(logpipe_bin, "setup", "--es", es, "-i", dated, "--replicas", "0", "--refresh-ms", "250")
    assert r.code == 0, r.stderr
    stamp = template_stamp(es, name)
    assert f"stamp {stamp}" in r.stdout
    s = consume(logpipe_bin, kafka, es, topic, f"g1-{unique}", "-i", dated, "--refresh-ms", "250")
    assert (s["indexed"], s["dead_lettered"]) == (LINES, 0)
    assert template_stamp(es, name) == stamp  # the same settings: the same template, left alone
    settings = requests.get(f"{es}/{day}/_settings", timeout=30).json()[day]["settings"]["index"]
    assert (settings["refresh_interval"], settings["number_of_replicas"]) == ("250ms", "0")
    assert es_count(es, day) == LINES
    r = run(logpipe_bin, "setup", "--es", es, "-i", dated, "--replicas", "0")
    assert r.code == 0, r.stderr
    assert template_stamp(es, name) != stamp  # without it, another template
    r = run(logpipe_bin, "setup", "--es", es, "-i", dated, "--refresh-ms", "-5")
    assert r.code == 2 and '--refresh-ms: expected a whole number from 1 to 3600000, got "-5"' in r.stderr, r.stderr
