"""Refusals that are not the document's fault, retries that never end,
memory under a backlog of large rejects, settings that would void the
guarantee, and the summary of a run over several topics. Each test runs the real consumer against the real Kafka and
Elasticsearch and checks what a user would: the exit status and its
message, what reached the index and the dead-letter topic, and the offsets
Kafka holds for the group. A run that stops must have committed nothing it
could not account for, and a rerun once the cause is fixed must end exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from conftest import create_topic, es_count
from faultproxy import FaultProxy, Faults
from helpers import Run, committed, high_watermarks, peak_rss_kb, read_topic, run
from test_faults import (
    FAST_GROUP,
    assert_exact,
    consume_to_end,
    finish,
    log_lines,
    produce,
    start_consumer,
    wait_for_line,
)
from test_prerequisites import ES_SECURE, TLS, FileRealm, es_docs

GOOD_LINE = b'1.2.3.4 - - [Jan 21 2026, 22:23:40] "GET /ok HTTP/1.1" 200 1 "-" "-"'


def consume_once(logpipe_bin, kafka, es, topic, group, index, *extra, timeout: float = 120):
    return run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
               "--until-idle", "4", "-X", "session.timeout.ms=6000", *extra, timeout=timeout)


def visible_records(kafka: str, topic: str) -> list:
    """Every record a read_committed reader sees in topic (none if it does
    not exist), read by assignment to the end: no group join to wait for."""
    c = Consumer({"bootstrap.servers": kafka, "group.id": f"inspect-{topic}", "enable.partition.eof": True,
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=30).topics[topic]
        if md.error is not None:
            return []
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions]
        c.assign(parts)
        at_end, records = set(), []
        deadline = time.time() + 60
        while len(at_end) < len(parts) and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
            elif not m.error():
                records.append(m)
        assert len(at_end) == len(parts), f"{topic} not read to its end"
        return records
    finally:
        c.close()


def assert_stopped_untouched(r, kafka, topic, group, expect_in_message: list[str]):
    """Exit 4 naming the cause; no offset committed; nothing dead-lettered."""
    assert r.code == 4, (r.code, r.stderr[-3000:])
    for text in expect_in_message:
        assert text in r.stderr, (text, r.stderr[-3000:])
    assert r.summary()["dead_lettered"] == 0 and r.summary()["refused"] == 0, r.summary()
    assert all(o < 0 for o in committed(kafka, group, topic, 3).values())
    assert visible_records(kafka, f"{topic}.dlq") == []


def test_a_closed_index_stops_the_run_and_a_rerun_after_opening_it_is_exact(
        logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 3_000, seed=31)
    group, index = f"g-{unique}", unique
    requests.put(f"{es}/{index}", timeout=30).raise_for_status()
    requests.post(f"{es}/{index}/_close", timeout=30).raise_for_status()
    try:
        r = consume_once(logpipe_bin, kafka, es, topic, group, index)
    finally:
        requests.post(f"{es}/{index}/_open", timeout=30).raise_for_status()
    assert_stopped_untouched(r, kafka, topic, group, [index, "index_closed_exception", "not for the document's fault"])
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert_exact(kafka, es, topic, group, index, 3_000)
    assert visible_records(kafka, f"{topic}.dlq") == []


@contextmanager
def auto_create_forbidden(es: str, prefix: str) -> Iterator[None]:
    """Forbids automatic creation of indices named prefix* (and only those:
    this Elasticsearch is shared), restoring the previous setting after."""
    url = f"{es}/_cluster/settings"
    before = requests.get(url, params={"flat_settings": "true"}, timeout=30).json()
    previous = before.get("persistent", {}).get("action.auto_create_index")
    allowed = previous if previous not in (None, "true") else "+*"
    body = {"persistent": {"action.auto_create_index": f"-{prefix}*,{allowed}"}}
    requests.put(url, json=body, timeout=30).raise_for_status()
    try:
        yield
    finally:
        requests.put(url, json={"persistent": {"action.auto_create_index": previous}},
                     timeout=30).raise_for_status()


def test_an_index_that_may_not_be_created_stops_the_run_and_a_rerun_once_allowed_is_exact(
        logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 3_000, seed=32)
    group, index = f"g-{unique}", f"{unique}-%Y.%m"
    with auto_create_forbidden(es, unique):
        r = consume_once(logpipe_bin, kafka, es, topic, group, index)
    assert_stopped_untouched(r, kafka, topic, group,
                             [f"{unique}-2026.01", "index_not_found_exception", "auto_create_index"])
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert_exact(kafka, es, topic, group, f"{unique}-*", 3_000)


def test_a_429_that_never_clears_stops_at_the_retry_limit_with_a_report(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 2_000, seed=33)
    group, index = f"g-{unique}", unique
    faults = Faults(item_429_every=1, item_429_requests=10**9)
    with FaultProxy(es, faults) as proxy:
        t0 = time.monotonic()
        r = consume_once(logpipe_bin, kafka, proxy.url, topic, group, index, "--retry-limit", "6", timeout=90)
        took = time.monotonic() - t0
    assert faults.rewritten_items > 0
    assert_stopped_untouched(r, kafka, topic, group,
                             ["--retry-limit", "HTTP 429", "es_rejected_execution_exception", index])
    assert took < 60, took
    consume_to_end(logpipe_bin, kafka, es, topic, group, index)
    assert_exact(kafka, es, topic, group, index, 2_000)


@contextmanager
def asan_quarantine_mb(mb: int) -> Iterator[None]:
    before = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [before, f"quarantine_size_mb={mb}"]))
    try:
        yield
    finally:
        if before is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = before


def test_a_backlog_of_1_mb_rejects_with_a_slow_elasticsearch_stays_within_the_memory_bound(
        logpipe_bin, kafka, es, kafka_admin, unique):
    # A rejected message adds its bytes to the batch but nothing to the bulk
    # body: only counting them makes such a batch "full". Elasticsearch
    # answering in 1 s keeps every slot busy, so the open batch is the one
    # that would grow.
    topic = f"big-{unique}"
    create_topic(kafka_admin, topic, partitions=1)
    producer = Producer({"bootstrap.servers": kafka, "message.max.bytes": 2 << 20, "linger.ms": 50})
    junk = []
    for i in range(12):
        producer.produce(topic, GOOD_LINE)
        for k in range(10):
            value = (b"%03d-%02d " % (i, k)) * (1_000_000 // 7)
            producer.produce(topic, value)
            junk.append(value)
    assert producer.flush(60) == 0
    group = f"g-{unique}"
    with FaultProxy(es, Faults(delay_s=1.0)) as proxy:
        # AddressSanitizer keeps freed memory resident (256 MB of quarantine
        # by default): a small quarantine keeps the peak about live memory.
        with asan_quarantine_mb(8):
            p = start_consumer(logpipe_bin, kafka, proxy.url, topic, group, unique, "--until-idle", "4")
        peak = peak_rss_kb(p)
        code, out, err = finish(p)
    print(f"peak RSS {peak} kB over a backlog of {len(junk)} rejects of 1 MB")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["dead_lettered"] == len(junk)
    assert es_count(es, unique) == 12
    dlq = read_topic(kafka, f"{topic}.dlq", len(junk))
    assert sorted(m.value() for m in dlq) == sorted(junk)
    marks = high_watermarks(kafka, topic)
    assert committed(kafka, group, topic, 1) == marks
    # The bound (docs/guarantees.md): 4 batches of at most --batch-bytes plus
    # one message each, librdkafka's 6 MiB prefetch, the process itself:
    # 65 MB measured with the 8 MiB prefetch of before (74 MB under ASan);
    # 200 MB before rejects counted.
    assert peak < 100_000, peak  # kB


def test_settings_that_would_void_the_guarantee_are_refused_naming_them(logpipe_bin, kafka, es, topic, unique):
    produce(logpipe_bin, kafka, topic, 100, seed=34)
    group = f"g-{unique}"
    for prop in ("enable.auto.commit=true", "enable.auto.offset.store=true", "isolation.level=read_uncommitted",
                 "auto.offset.reset=latest", "offset.store.method=file", f"transactional.id={group}"):
        r = consume_once(logpipe_bin, kafka, es, topic, group, unique, "-X", prop, timeout=60)
        assert r.code == 2, (prop, r.code, r.stderr[-2000:])
        assert f"-X {prop}" in r.stderr and "refused" in r.stderr, (prop, r.stderr[-2000:])
    # The same properties with the values logpipe needs are accepted.
    r = consume_once(logpipe_bin, kafka, es, topic, group, unique, "-X", "enable.auto.commit=false",
                     "-X", "auto.offset.reset=smallest", "-X", "isolation.level=read_committed")
    assert r.code == 0, r.stderr[-2000:]
    assert es_count(es, unique) == 100


def test_the_summary_names_each_topic_once(logpipe_bin, kafka, es, kafka_admin, unique):
    # Partitions enter the summary in the order they first commit: a-0, then
    # b-0, then a-1 makes the topics alternate.
    a, b = f"a-{unique}", f"b-{unique}"
    for t in (a, b):
        create_topic(kafka_admin, t, partitions=2)
    deadline = time.time() + 30  # both visible in the metadata before the consumer checks them
    while not {a, b} <= set(kafka_admin.list_topics(timeout=10).topics) and time.time() < deadline:
        time.sleep(0.2)
    group = f"g-{unique}"
    p = start_consumer(logpipe_bin, kafka, es, f"{a},{b}", group, unique, "--until-idle", "6")
    producer = Producer({"bootstrap.servers": kafka})
    try:
        for t, part in ((a, 0), (b, 0), (a, 1)):
            for _ in range(10):
                producer.produce(t, GOOD_LINE, partition=part)
            assert producer.flush(30) == 0
            deadline = time.time() + 60
            while committed(kafka, group, t, 2)[part] != 10 and p.poll() is None and time.time() < deadline:
                time.sleep(0.5)
        code, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert code == 0, err[-2000:]

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"repeated keys {keys} in {out}"
        return dict(pairs)

    s = json.loads(out.strip().splitlines()[-1], object_pairs_hook=no_repeats)
    assert s["committed"] == {a: {"0": 10, "1": 10}, b: {"0": 10}}


def refused_once_running(logpipe_bin, kafka, topic, group, es, index, fault, *extra: str,
                         env: dict | None = None) -> Run:
    """Starts a consumer on the empty topic, enters `fault` (a context
    manager) once it has its partitions, past its start-up checks, then
    produces 30 good lines: the first bulk meets the fault. The fault is
    lifted as soon as the run has ended, so a fault on the shared
    Elasticsearch lasts seconds."""
    p = subprocess.Popen([logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-e", es, "-i", index,
                          "-v", "--until-idle", "30", "--max-seconds", "120", *FAST_GROUP, *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines, reader = log_lines(p)
    try:
        wait_for_line(lines, "assigned 3 partition(s)")
        with fault:
            producer = Producer({"bootstrap.servers": kafka})
            for i in range(30):
                producer.produce(topic, GOOD_LINE, partition=i % 3)
            assert producer.flush(30) == 0
            p.wait(timeout=150)
    finally:
        if p.poll() is None:
            p.kill()
    reader.join(timeout=10)
    return Run(p.returncode, p.stdout.read(), "".join(lines))


@contextmanager
def cluster_setting(es: str, name: str, value: str) -> Iterator[None]:
    """Sets a transient cluster setting, restoring its previous transient value after."""
    url = f"{es}/_cluster/settings"
    before = requests.get(url, params={"flat_settings": "true"}, timeout=30).json()
    previous = before.get("transient", {}).get(name)
    requests.put(url, json={"transient": {name: value}}, timeout=30).raise_for_status()
    try:
        yield
    finally:
        requests.put(url, json={"transient": {name: previous}}, timeout=30).raise_for_status()


def test_the_shard_limit_reached_before_a_new_daily_index_stops_the_run(logpipe_bin, kafka, es, topic, unique):
    # The cluster's shard limit stops Elasticsearch from creating the day's
    # index. This Elasticsearch is shared: the limit (1 shard a node, so
    # that no other index changes the outcome) holds only while the
    # consumer's one bulk is answered.
    group, index = f"g-{unique}", f"{unique}-%Y.%m.%d"
    r = refused_once_running(logpipe_bin, kafka, topic, group, es, index,
                             cluster_setting(es, "cluster.max_shards_per_node", "1"), "--drain-timeout", "5")
    assert_stopped_untouched(r, kafka, topic, group, [f"{unique}-2026.01.21", "validation_exception",
                                                      "maximum normal shards open", "not for the document's fault"])
    assert requests.head(f"{es}/{unique}-2026.01.21", timeout=30).status_code == 404


@contextmanager
def data_stream_template(es: str, name: str) -> Iterator[None]:
    """A composable template making `name` a data stream. Neither the data
    stream nor, once it exists, its template can be removed on this
    distribution (no data-streams REST module): it is one empty shard."""
    body = {"index_patterns": [name], "data_stream": {}, "priority": 300,
            "template": {"settings": {"number_of_replicas": 0}}}
    requests.put(f"{es}/_index_template/{name}", json=body, timeout=30).raise_for_status()
    yield


def test_a_data_stream_that_takes_only_create_stops_the_run(logpipe_bin, kafka, es, topic, unique):
    # logpipe writes `index` actions (a replay overwrites by _id); a data
    # stream takes `create` only, for every document alike.
    produce(logpipe_bin, kafka, topic, 300, seed=35)
    group, index = f"g-{unique}", f"{unique}-ds"
    with data_stream_template(es, index):
        r = consume_once(logpipe_bin, kafka, es, topic, group, index, "--no-template")
    assert_stopped_untouched(r, kafka, topic, group, [index, "illegal_argument_exception",
                                                      "only write ops with an op_type of create"])
    assert es_count(es, index) == 0


@contextmanager
def index_privileges_narrowed(realm: FileRealm, user: str, password: str, unique: str) -> Iterator[None]:
    """The user's role loses create_index and index on every index but the
    day before the lines' day, once Elasticsearch has reloaded it."""
    realm.set_role(user, ["monitor", "manage_index_templates"], f"{unique}-2026.01.20", ["create_index", "index"])
    body = {"index": [{"names": [f"{unique}-2026.01.21"], "privileges": ["index"]}]}
    deadline = time.time() + 60
    while requests.post(f"{ES_SECURE}/_security/user/_has_privileges", json=body, auth=(user, password),
                        verify=str(TLS / "ca.pem"), timeout=30).json().get("has_all_requested"):
        assert time.time() < deadline, "Elasticsearch did not reload the role in 60 s"
        time.sleep(0.5)
    yield


def test_a_missing_privilege_for_the_new_daily_index_stops_the_run(logpipe_bin, kafka, topic, unique, realm):
    # The secured Elasticsearch, whose file realm gets this test's user: it
    # passes logpipe's start-up check of its privileges, then loses them
    # for the day the lines fall in (as a role scoped to dated names would
    # at midnight).
    user, password = f"u{unique}", f"p{unique}"
    realm.add(user, password, ["monitor", "manage_index_templates"], f"{unique}-*", ["create_index", "index"])
    realm.wait_ready(user, password)
    group = f"g-{unique}"
    r = refused_once_running(logpipe_bin, kafka, topic, group, ES_SECURE, f"{unique}-%Y.%m.%d",
                             index_privileges_narrowed(realm, user, password, unique),
                             "--es-ca", str(TLS / "ca.pem"), "--es-user", user,
                             env={**os.environ, "LOGPIPE_ES_PASSWORD": password})
    assert_stopped_untouched(r, kafka, topic, group, [f"{unique}-2026.01.21", "security_exception", "unauthorized",
                                                      "not for the document's fault"])
    assert es_docs(f"{unique}-*") == 0
