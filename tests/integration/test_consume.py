"""logpipe consume against the real Kafka and Elasticsearch.

Each test ends with what a user would check: documents counted in
Elasticsearch, offsets committed in Kafka, dead-lettered bytes read back from
the dead-letter topic.
"""

import json
import secrets
import subprocess

import requests
from conftest import create_topic, es_count
from helpers import committed, high_watermarks, read_topic, run

START = "2026-01-21T22:23:40Z"


def produce(logpipe_bin, kafka, topic, count, seed, ratio="0"):
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", str(count), "--seed", str(seed),
            "--start", START, "--malformed-ratio", ratio)
    assert r.code == 0, r.stderr


def consume(logpipe_bin, kafka, es, topic, group, index, *extra):
    return run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
               "--until-idle", "3", *extra, timeout=600)


def test_100k_exactly_once_and_replay_overwrites(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 100_000, 1)
    index = f"{unique}-%Y.%m.%d"
    r = consume(logpipe_bin, kafka, es, topic, f"g1-{unique}", index)
    assert r.code == 0, r.stderr
    s = r.summary()
    assert (s["consumed"], s["indexed"], s["rejected"], s["dead_lettered"]) == (100_000, 100_000, 0, 0)
    assert es_count(es, f"{unique}-*") == 100_000
    # committed offsets are the high watermarks: everything consumed was acknowledged
    marks = high_watermarks(kafka, topic)
    done = committed(kafka, f"g1-{unique}", topic, len(marks))
    assert {p: o for p, o in done.items() if marks[p]} == {p: o for p, o in marks.items() if o}
    assert all(o < 0 for p, o in done.items() if not marks[p])  # empty partition: nothing to commit
    assert {int(p): o for p, o in s["committed"][topic].items()} == {p: o for p, o in marks.items() if o}
    # the _id is the message's coordinates
    doc = requests.get(f"{es}/{unique}-2026.01.21/_doc/{topic}-0-0", timeout=30)
    assert doc.status_code == 200 and doc.json()["_source"]["@timestamp"].startswith("2026-01-21T")
    assert doc.json()["_source"]["kafka"] == {"topic": topic, "partition": 0, "offset": 0}
    # ...and searchable: each partition's documents, counted by offset range, are its high watermark
    for p, mark in marks.items():
        in_partition = {"bool": {"filter": [{"term": {"kafka.topic": topic}}, {"term": {"kafka.partition": p}},
                                            {"range": {"kafka.offset": {"gte": 0, "lt": mark}}}]}}
        assert es_count(es, f"{unique}-*", in_partition) == mark

    # The same topic again under a new group: overwrites, never duplicates.
    r2 = consume(logpipe_bin, kafka, es, topic, f"g2-{unique}", index)
    assert r2.code == 0, r2.stderr
    assert r2.summary()["indexed"] == 100_000
    assert es_count(es, f"{unique}-*") == 100_000

    # The first group has nothing left: a rerun consumes nothing.
    r3 = consume(logpipe_bin, kafka, es, topic, f"g1-{unique}", index)
    assert r3.code == 0 and r3.summary()["consumed"] == 0


def test_malformed_lines_go_to_the_dlq_exactly(logpipe_bin, kafka, es, topic, unique, tmp_path):
    produce(logpipe_bin, kafka, topic, 20_000, 9, ratio="0.05")
    # raw bytes (the malformed lines are not UTF-8), so not through run()
    gen = subprocess.run([logpipe_bin, "generate", "--count", "20000", "--seed", "9", "--start", START,
                          "--malformed-ratio", "0.05"], capture_output=True, check=True).stdout
    raw = gen.split(b"\n")[:-1]
    rejects = tmp_path / "rejects.ndjson"
    p = run(logpipe_bin, "parse", "--rejects", str(rejects), stdin=gen)
    bad = [raw[json.loads(line)["line_number"] - 1] for line in rejects.read_text().splitlines()]
    assert 800 < len(bad) < 1200

    r = consume(logpipe_bin, kafka, es, topic, f"g-{unique}", unique)
    assert r.code == 0, r.stderr
    s = r.summary()
    assert s["consumed"] == 20_000
    assert s["rejected"] == s["dead_lettered"] == len(bad)
    assert es_count(es, unique) == 20_000 - len(bad)
    dlq = read_topic(kafka, f"{topic}.dlq", len(bad))
    assert sorted(m.value() for m in dlq) == sorted(bad)  # original bytes, exactly once each
    for m in dlq:
        headers = dict(m.headers())
        assert headers["logpipe.reason"] and headers["logpipe.stage"] == b"parse"
        assert headers["logpipe.topic"] == topic.encode()
    assert p.code == 0


def test_typed_mapping_makes_fields_queryable(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 20_000, 4)
    gen = run(logpipe_bin, "generate", "--count", "20000", "--seed", "4", "--start", START).stdout
    statuses = [line.split('" ', 1)[1].split(" ", 1)[0] for line in gen.splitlines()]
    r = consume(logpipe_bin, kafka, es, topic, f"g-{unique}", f"{unique}-%Y.%m.%d")
    assert r.code == 0, r.stderr
    index = f"{unique}-*"
    assert es_count(es, index, {"term": {"http.response.status_code": 500}}) == statuses.count("500")
    assert es_count(es, index, {"range": {"http.response.status_code": {"gte": 500}}}) == \
        sum(s.startswith("5") for s in statuses)
    first_ip = gen.split(" ", 1)[0]
    assert es_count(es, index, {"term": {"source.ip": first_ip}}) >= 1
    assert es_count(es, index, {"term": {"source.ip": "2001:db8::/32"}}) > 1000  # ip type: CIDR works
    assert es_count(es, index, {"term": {"url.path": "/contact"}}) == \
        sum(' /contact ' in ln or ' /contact?' in ln for ln in gen.splitlines())
    mapping = requests.get(f"{es}/{index}/_mapping/field/http.response.status_code", timeout=30).json()
    types = {m["mappings"]["http.response.status_code"]["mapping"]["status_code"]["type"]
             for m in mapping.values()}
    assert types == {"long"}


# Lines of requests that never completed, from real servers (tests/unit/test_parse.c
# names each source), and one line that is not an access log at all.
SHAPES = [
    b'::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -',
    b'127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-"',
    b'91.157.67.239 - - [30/Dec/2015:12:11:01 +0200] "\\x16\\x03\\x01\\x00\\xCA\\x01\\x00\\x00\\xC6\\x03\\x03" 400 181 "-" "-"',
    b'83.149.9.216 - a.user [11/Jan/2020:23:05:27 +0100] "OPTIONS /remote.php/ HTTP/1.1" - 7908 "-" "monitoring-client (v2.2)"',
    b'127.0.1.1:80 127.0.0.1 - - [26/Jun/2012:10:41:10 -0700] "OPTIONS * HTTP/1.0" 200 126 "-" "Apache/2.2.22 (Ubuntu)"',
    b'www.example.com:80 10.240.1.8 - - [06/Mar/2013:00:39:19 +0000] "-" 408 0 "-" "-" -',
    b'[Mon Aug 31 16:27:04 2015] [error] [client 10.17.42.3] Premature end of script headers: example.com',
]


def test_incomplete_requests_and_vhost_lines_become_documents(logpipe_bin, kafka, es, kafka_admin, unique):
    topic = f"shapes-{unique}"
    create_topic(kafka_admin, topic, partitions=1)  # one partition: offset i is line i
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "-i", "-", stdin=b"\n".join(SHAPES) + b"\n")
    assert r.code == 0, r.stderr
    r = consume(logpipe_bin, kafka, es, topic, f"g-{unique}", unique)
    assert r.code == 0, r.stderr
    s = r.summary()
    assert (s["consumed"], s["indexed"], s["rejected"], s["dead_lettered"]) == (7, 6, 1, 1)
    assert es_count(es, unique) == 6
    hits = requests.post(f"{es}/{unique}/_search", json={"size": 10}, timeout=30).json()["hits"]["hits"]
    doc = {h["_source"]["kafka"]["offset"]: h["_source"] for h in hits}
    for d in doc.values():
        del d["kafka"]
        assert d.pop("ecs") == {"version": "8.11.0"} and d.pop("event") == {"dataset": "access"}

    assert doc[0] == {"@timestamp": "2016-12-26T14:16:48Z", "source": {"ip": "::1"},
                      "http": {"response": {"status_code": 408}}}
    assert doc[1] == {"@timestamp": "2018-04-12T07:48:40Z", "source": {"ip": "127.0.0.1"},
                      "http": {"response": {"status_code": 400, "body": {"bytes": 0}}}}
    assert doc[2]["url"] == {"original": r"\x16\x03\x01\x00\xCA\x01\x00\x00\xC6\x03\x03"}
    assert "request" not in doc[2]["http"] and "version" not in doc[2]["http"]
    assert doc[3]["http"]["response"] == {"body": {"bytes": 7908}} and doc[3]["http"]["request"] == {"method": "OPTIONS"}
    assert doc[4]["server"] == {"ip": "127.0.1.1", "port": 80} and doc[4]["source"] == {"ip": "127.0.0.1"}
    assert doc[5] == {"@timestamp": "2013-03-06T00:39:19Z", "source": {"ip": "10.240.1.8"},
                      "server": {"domain": "www.example.com", "port": 80},
                      "http": {"response": {"status_code": 408, "body": {"bytes": 0}}}}
    # the template types the new fields: server.ip is an ip (CIDR), server.port a number
    assert es_count(es, unique, {"term": {"server.ip": "127.0.0.0/8"}}) == 1
    assert es_count(es, unique, {"range": {"server.port": {"gte": 80, "lte": 80}}}) == 2
    # and what an operator asks first: the requests that never came, the non-HTTP bytes
    assert es_count(es, unique, {"bool": {"must_not": {"exists": {"field": "url.original"}}}}) == 3
    assert es_count(es, unique, {"bool": {"filter": {"exists": {"field": "url.original"}},
                                          "must_not": {"exists": {"field": "http.request.method"}}}}) == 1
    # the line that is not an access log is in the dead-letter topic, bytes intact
    dead = read_topic(kafka, f"{topic}.dlq", 1)
    assert [m.value() for m in dead] == [SHAPES[6]]


def test_documents_that_barely_compress_are_indexed_whole(logpipe_bin, kafka, es, topic, unique):
    # Random paths: the gzip'd bulk body comes out larger than the first
    # guess for its size (a quarter of the body), so its buffer has to grow.
    paths = [f"/{secrets.token_urlsafe(1500)}" for _ in range(2000)]
    lines = "".join(f'10.0.0.{i % 250} - - [Jan 21 2026, 22:23:40] "GET {p} HTTP/1.1" 200 {i} "-" "-"\n'
                    for i, p in enumerate(paths))
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "-i", "-", stdin=lines.encode())
    assert r.code == 0, r.stderr
    r = consume(logpipe_bin, kafka, es, topic, f"g-{unique}", unique, "--batch-docs", "1000")
    assert r.code == 0, r.stderr
    assert r.summary()["indexed"] == 2000 and es_count(es, unique) == 2000
    found = requests.post(f"{es}/{unique}/_search", json={"query": {"term": {"http.response.body.bytes": 1234}}},
                          timeout=30).json()["hits"]["hits"]
    assert [h["_source"]["url"]["path"] for h in found] == [paths[1234]]


def test_unreachable_elasticsearch_exits_4_naming_it(logpipe_bin, kafka, topic, unique):
    r = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", unique, "-e", "http://127.0.0.1:1",
            "--until-idle", "1", timeout=60)
    assert r.code == 4
    assert "Elasticsearch at http://127.0.0.1:1 (--es) is unreachable" in r.stderr
    assert r.summary()["consumed"] == 0


def test_missing_topic_exits_3_naming_it(logpipe_bin, kafka, es, unique):
    r = run(logpipe_bin, "consume", "-b", kafka, "-t", f"missing-{unique}", "-g", unique, "-e", es,
            "--until-idle", "1", timeout=60)
    assert r.code == 3
    assert f"topic missing-{unique} (--topic) does not exist" in r.stderr
