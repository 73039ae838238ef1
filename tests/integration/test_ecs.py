"""ECS in the real Elasticsearch: every document declares ecs.version and
event.dataset, event.original (the raw line) only with --keep-original and
then exactly as received, and the index's mapping (GET _mapping) is exactly
docs/schema.md's field table, which is generated from the same table as the
template (lib/elasticsearch/fields.def): no field a document carries goes
unmapped.

Two consumers read the same hostile lines at once (one group each, so one
group join's wait for both): one with --keep-original --dataset, one with
the defaults.
"""

from __future__ import annotations

import json
import re
import subprocess

import requests
from confluent_kafka import Producer
from conftest import ROOT, es_count
from helpers import Run

SCHEMA_MD = ROOT / "docs" / "schema.md"

LINES = [
    # every field of a combined line, with a query string and a user
    (b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1&y=%22 HTTP/1.0" 200 2326 '
     b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'),
    # vhost_combined with a host name client: server.*, source.domain
    b'www.example.com:443 crawler.example.net - - [06/Mar/2013:00:39:19 +0000] "-" 408 - "-" "-"',
    # hostile: Apache's escaped quotes and backslashes, control bytes (NUL, ESC, DEL, CR
    # inside the line), multibyte UTF-8, and invalid UTF-8 (a lone 0xff, an overlong,
    # a surrogate, a sequence cut short)
    (b'::1 - - [10/Oct/2000:13:55:36 -0700] "GET /q\\"x\\\\y HTTP/1.1" 404 0 "\\x16\x01\t\x1b\x7f\r" '
     b'"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x00 \xff \xc0\xaf \xed\xa0\x80 \xe2\x82"'),
    # a request that is not HTTP, escapes as the server wrote them
    b'91.157.67.239 - - [30/Dec/2015:12:11:01 +0200] "\\x16\\x03\\x01\\x00\\xCA" 400 181 "-" "-"',
]


def as_json_string(raw: bytes) -> str:
    """What logpipe promises for a line's bytes: each well-formed UTF-8 sequence
    as is, each byte of anything else U+FFFD (json.h)."""
    out, i = [], 0
    while i < len(raw):
        lead = raw[i]
        n = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 0
        try:
            out.append(raw[i:i + n].decode("utf-8") if n and i + n <= len(raw) else "\ufffd")
            i += n if n and i + n <= len(raw) else 1
        except UnicodeDecodeError:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def schema_table() -> dict[str, str]:
    """docs/schema.md's field table: field -> mapping type."""
    text = SCHEMA_MD.read_text()
    table = text[text.index("<!-- generated from lib/elasticsearch/fields.def"):text.index("<!-- end of the generated")]
    return dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)`", table, re.MULTILINE))


def mapped_types(props: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, m in props.items():
        path = prefix + name
        if "properties" in m:
            out.update(mapped_types(m["properties"], path + "."))
        else:
            out[path] = m["type"]
    return out


def leaves(doc: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in doc.items():
        out |= leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def start_consume(logpipe_bin, kafka, es, topic, group, index, *extra) -> subprocess.Popen:
    return subprocess.Popen([logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
                             "--until-idle", "2", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(p: subprocess.Popen) -> Run:
    out, err = p.communicate(timeout=120)
    return Run(p.returncode, out.decode(), err.decode())


def test_ecs_fields_mapped_and_event_original_byte_exact_and_opt_in(logpipe_bin, kafka, es, topic, unique):
    producer = Producer({"bootstrap.servers": kafka})
    for line in LINES:
        producer.produce(topic, line, partition=0)
    assert producer.flush(30) == 0

    kept, plain = f"{unique}-kept", f"{unique}-plain"
    runs = [start_consume(logpipe_bin, kafka, es, topic, f"k-{unique}", kept, "--keep-original",
                          "--dataset", "web.access"),
            start_consume(logpipe_bin, kafka, es, topic, f"p-{unique}", plain)]
    for r in map(finish, runs):
        assert r.code == 0, r.stderr
        assert (r.summary()["indexed"], r.summary()["dead_lettered"]) == (len(LINES), 0), r.summary()

    for index, dataset, keep in ((kept, "web.access", True), (plain, "access", False)):
        assert es_count(es, index, {"term": {"event.dataset": dataset}}) == len(LINES)
        assert es_count(es, index, {"term": {"ecs.version": "8.11.0"}}) == len(LINES)
        hits = requests.post(f"{es}/{index}/_search", json={"size": 10}, timeout=30).json()["hits"]["hits"]
        docs = {h["_source"]["kafka"]["offset"]: h["_source"] for h in hits}
        for offset, line in enumerate(LINES):
            event = docs[offset]["event"]
            if keep:
                assert event == {"dataset": dataset, "original": as_json_string(line)}, offset
            else:
                assert event == {"dataset": dataset}, offset

        # the mapping Elasticsearch has is docs/schema.md's table, type for type,
        # and every field of every document is in it (dynamic: false would hide it)
        mapping = requests.get(f"{es}/{index}/_mapping", timeout=30).json()[index]["mappings"]
        types = mapped_types(mapping["properties"])
        assert types == schema_table()
        for d in docs.values():
            assert leaves(d) <= set(types), leaves(d) - set(types)
    # the valid multibyte text came through as text, the invalid bytes as U+FFFD
    assert "café € 😀 \x00 \ufffd \ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd" in as_json_string(LINES[2])

    # parse shares the path: the same event.original from `logpipe parse --keep-original`
    p = subprocess.run([logpipe_bin, "parse", "--keep-original"], input=b"\n".join(LINES) + b"\n",
                       capture_output=True, check=True)
    parsed = [json.loads(d) for d in p.stdout.splitlines()]
    assert [d["event"]["original"] for d in parsed] == [as_json_string(line) for line in LINES]
