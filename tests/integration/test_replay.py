"""logpipe replay against the real Kafka and Elasticsearch.

What an operator does after a bad deploy: documents refused by a mapping
went to <topic>.dlq; the mapping is fixed; replay writes them back; consume
indexes them. The checks are the operator's: every source record's document
in Elasticsearch exactly once (reconciled by source offsets through the
replayed-from and dead-letter headers), the target topic holding each
replayed record once for a read_committed reader even after kill -9.
"""

import json
import signal
import subprocess

import requests
from conftest import create_topic, es_count
from helpers import committed, high_watermarks, read_topic, run

START = "2026-01-21T22:23:40Z"

# http.request may hold only a method: documents with a referrer are refused
# (strict_dynamic_mapping_exception), as after a template that forgot a field.
BAD_MAPPING = {"mappings": {"properties": {"http": {"properties": {"request": {
    "dynamic": "strict", "properties": {"method": {"type": "keyword"}}}}}}}}
FIX = {"properties": {"http": {"properties": {"request": {"properties": {"referrer": {"type": "keyword"}}}}}}}


def consume(logpipe_bin, kafka, es, topic, group, index):
    r = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
            "--no-template", "--until-idle", "2", "--quiet")
    assert r.code == 0, r.stderr
    return r.summary()


def examined(kafka, group, dlq):
    """Dead-letter records the replay group has committed past, over all partitions."""
    parts = len(high_watermarks(kafka, dlq))
    return sum(max(o, 0) for o in committed(kafka, group, dlq, parts).values())


def es_ids(es, index):
    requests.post(f"{es}/{index}/_refresh", timeout=30)
    r = requests.post(f"{es}/{index}/_search", json={"size": 10000, "_source": False}, timeout=30)
    r.raise_for_status()
    return [h["_id"] for h in r.json()["hits"]["hits"]]


def test_refused_documents_replayed_after_the_mapping_fix_are_indexed_once(logpipe_bin, kafka, es,
                                                                           kafka_admin, unique):
    topic = f"logs-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    requests.put(f"{es}/{unique}", json=BAD_MAPPING, timeout=30).raise_for_status()
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "400", "--seed", "16", "--start", START,
            "--malformed-ratio", "0.05")
    assert r.code == 0, r.stderr
    first = consume(logpipe_bin, kafka, es, topic, unique, unique)
    refused, unparseable = first["refused"], first["rejected"]
    assert refused > 50 and unparseable > 5 and first["dead_lettered"] == refused + unparseable
    dlq = read_topic(kafka, f"{topic}.dlq", refused + unparseable)
    assert len(dlq) == refused + unparseable

    # --dry-run: counts by reason, nothing written, nothing committed
    base = ["-b", kafka, "-t", topic]
    d = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}", "--dry-run")
    assert d.code == 0, d.stderr
    s = d.summary()
    assert s["read"] == s["matched"] == len(dlq) and s["replayed"] == 0
    assert s["by_reason"]["strict_dynamic_mapping_exception"] == refused
    assert sum(s["by_reason"].values()) == len(dlq)
    # filters: the source partition, the stage, an offset range
    part1 = [m for m in dlq if dict(m.headers())["logpipe.partition"] == b"1"]
    s = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}", "--dry-run", "--partition", "1").summary()
    assert s["matched"] == len(part1) > 0
    s = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}", "--dry-run", "--stage", "parse").summary()
    assert s["matched"] == unparseable
    low = [m for m in dlq if int(dict(m.headers())["logpipe.offset"]) <= 99]
    s = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}", "--dry-run", "--from-offset", "0",
            "--to-offset", "99").summary()
    assert s["matched"] == len(low) > 0
    assert sum(high_watermarks(kafka, topic).values()) == 400  # a dry run writes nothing
    assert examined(kafka, f"r-{unique}", f"{topic}.dlq") == 0  # nor commits

    requests.put(f"{es}/{unique}/_mapping", json=FIX, timeout=30).raise_for_status()
    r = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}", "--stage", "index",
            "--reason", "strict_dynamic_mapping_exception")
    assert r.code == 0, r.stderr
    assert r.summary()["replayed"] == refused
    second = consume(logpipe_bin, kafka, es, topic, unique, unique)
    assert second["consumed"] == second["indexed"] == refused and second["rejected"] == 0
    assert second["lag"] == {topic: {"0": 0, "1": 0}} and second["backlog"] == 0

    # Reconcile by source offsets: each document is one source record's, each parseable record has one.
    source = read_topic(kafka, topic, 400 + refused)
    assert len(source) == 400 + refused
    dlq_at = {f"{m.topic()}/{m.partition()}/{m.offset()}": dict(m.headers()) for m in dlq}
    origin = {}
    for m in source:
        h = dict(m.headers() or [])
        key = f"{topic}-{m.partition()}-{m.offset()}"
        if "logpipe.replayed-from" in h:
            d = dlq_at[h["logpipe.replayed-from"].decode()]
            origin[key] = (int(d["logpipe.partition"]), int(d["logpipe.offset"]))
        else:
            origin[key] = (m.partition(), m.offset())
    ids = es_ids(es, unique)
    assert len(ids) == es_count(es, unique) == 400 - unparseable
    sources = [origin[i] for i in ids]
    unparsed = {(int(dict(m.headers())["logpipe.partition"]), int(dict(m.headers())["logpipe.offset"]))
                for m in dlq if dict(m.headers())["logpipe.stage"] == b"parse"}
    originals = {(m.partition(), m.offset()) for m in source if "logpipe.replayed-from" not in dict(m.headers() or [])}
    assert len(set(sources)) == len(sources)
    assert set(sources) == originals - unparsed

    # A rerun finds nothing left: the progress was committed with the writes.
    again = run(logpipe_bin, "replay", *base, "-g", f"r-{unique}").summary()
    assert again["read"] == 0 and again["replayed"] == 0


def test_kill_9_mid_replay_then_rerun_writes_each_record_once(logpipe_bin, kafka, es, kafka_admin, unique):
    topic, target = f"logs-{unique}", f"out-{unique}"
    create_topic(kafka_admin, topic)
    create_topic(kafka_admin, target)
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "3000", "--seed", "7", "--start", START,
            "--malformed-ratio", "1")
    assert r.code == 0, r.stderr
    first = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", unique, "-e", es, "-i", unique,
                "--until-idle", "2", "--quiet").summary()
    assert first["dead_lettered"] == 3000

    args = [logpipe_bin, "replay", "-b", kafka, "-t", topic, "-g", f"r-{unique}", "--to", target,
            "--txn-records", "40", "-v"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    commits = 0
    assert p.stderr is not None
    for line in p.stderr:
        commits += b"committed:" in line
        if commits == 5:
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    done = examined(kafka, f"r-{unique}", f"{topic}.dlq")
    assert 200 <= done < 3000  # killed mid-way, after its fifth commit

    r = run(logpipe_bin, "replay", "-b", kafka, "-t", topic, "-g", f"r-{unique}", "--to", target)
    assert r.code == 0, r.stderr
    assert r.summary()["replayed"] == 3000 - done
    out = read_topic(kafka, target, 3000)
    sources = [dict(m.headers())["logpipe.replayed-from"] for m in out]
    assert len(out) == len(set(sources)) == 3000
    dlq = read_topic(kafka, f"{topic}.dlq", 3000)
    assert sorted(m.value() for m in out) == sorted(m.value() for m in dlq)


def test_bad_flags_are_refused_before_kafka_is_touched(logpipe_bin):
    nowhere = ["-b", "127.0.0.1:1", "-t", "logs", "-g", "g"]
    cases = [
        (["--stage", "mapping"], '--stage: "mapping" is not one of parse, index'),
        (["--partition", "-1"], "--partition"),
        (["--from-offset", "9", "--to-offset", "3"], "--from-offset 9 is past --to-offset 3"),
        (["--to", "logs.dlq"], "--to logs.dlq is the dead-letter topic being read"),
        (["--reason", ""], "--reason: empty text"),
        (["--txn-records", "0"], "--txn-records"),
    ]
    for extra, message in cases:
        r = run(logpipe_bin, "replay", *nowhere, *extra, timeout=10)
        assert r.code == 2 and message in r.stderr and r.stdout == "", (extra, r.stderr)
    r = run(logpipe_bin, "replay", "-b", "127.0.0.1:1", "-t", "logs", timeout=10)
    assert r.code == 2 and "--group is required" in r.stderr


def test_missing_dead_letter_topic_exits_2_naming_it(logpipe_bin, kafka, unique):
    r = run(logpipe_bin, "replay", "-b", kafka, "-t", f"none-{unique}", "-g", unique, "--dry-run")
    assert r.code == 2 and f"none-{unique}.dlq" in r.stderr and "does not exist" in r.stderr
    assert json.loads(r.stdout)["read"] == 0
