"""The consumer DAG's proof that a run lost and duplicated nothing.

Before the consumers start, `snapshot` records where the group stands on each
partition (its committed offset, or the log start when it has none: logpipe
starts from the earliest offset). After they finish, `reconcile` reads the
committed offsets again: the half-open ranges [before, after) are exactly the
messages this run took responsibility for. Every one of them must be either a
document in Elasticsearch (counted by its kafka.partition / kafka.offset
fields, so re-deliveries that overwrote the same _id count once) or a record
in the dead-letter topic (matched by its logpipe.partition / logpipe.offset
headers, read from the time the run began, duplicates counted once).

The numbers come from Kafka and Elasticsearch themselves, not from the
consumers' summaries, so a retried or killed consumer cannot fool the check.
"""

from __future__ import annotations

import re
import time
from typing import Any

from logpipe_airflow.compat import AirflowException
from logpipe_airflow.connections import ElasticsearchConnection, KafkaConnection

OFFSET_INVALID = -1001


def _consumer(kafka: KafkaConnection, purpose: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer({**kafka.client_config(), "group.id": purpose, "enable.auto.commit": False,
                     "enable.partition.eof": False, "isolation.level": "read_committed"})


def _partitions(consumer: Any, topic: str) -> list[int]:
    md = consumer.list_topics(topic, timeout=30)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise AirflowException(f"reconcile: Kafka topic {topic!r} is not available: {t.error if t else 'missing'}")
    return sorted(t.partitions)


def positions(kafka: KafkaConnection, group: str, topic: str) -> dict[int, int]:
    """Where `group` would resume on each partition of `topic`."""
    from confluent_kafka import TopicPartition

    c = _consumer(kafka, group)  # reads the group's commits without joining it
    try:
        parts = _partitions(c, topic)
        done = c.committed([TopicPartition(topic, p) for p in parts], timeout=30)
        out = {}
        for tp in done:
            if tp.offset == OFFSET_INVALID:
                out[tp.partition] = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=30)[0]
            else:
                out[tp.partition] = tp.offset
        return out
    finally:
        c.close()


def snapshot(kafka: KafkaConnection, group: str, topic: str) -> dict[str, Any]:
    start = positions(kafka, group, topic)
    return {"group": group, "topic": topic, "time_ms": int(time.time() * 1000),
            "start": {str(p): o for p, o in start.items()}}


def wildcard(index_pattern: str) -> str:
    """logs-access-%Y.%m.%d -> logs-access-*.*.*: every index the pattern can name."""
    return re.sub(r"%.", "*", index_pattern)


def count_documents(es: ElasticsearchConnection, index_pattern: str, topic: str, ranges: dict[int, tuple[int, int]]) -> int:
    """Distinct offsets of `ranges` found as documents. Dated indices (a % in
    the pattern) hold one document per offset (a replay overwrites its _id),
    so _count is exact. A data stream's replay across a rollover leaves a
    second copy in the new write index (docs/guarantees.md), so there the
    (partition, offset) pairs are counted, once each."""
    wanted = [{"bool": {"filter": [{"term": {"kafka.partition": p}},
                                   {"range": {"kafka.offset": {"gte": lo, "lt": hi}}}]}}
              for p, (lo, hi) in ranges.items() if hi > lo]
    if not wanted:
        return 0
    s = es.session()
    index = wildcard(index_pattern)
    lenient = {"allow_no_indices": "true", "ignore_unavailable": "true"}
    # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's
    # verify (psf/requests#3829), which would drop the connection's CA.
    s.post(f"{es.url}/{index}/_refresh", params=lenient, timeout=60, verify=s.verify).raise_for_status()
    query = {"bool": {"filter": [{"term": {"kafka.topic": topic}}],
                      "should": wanted, "minimum_should_match": 1}}
    if "%" in index_pattern:
        r = s.post(f"{es.url}/{index}/_count", json={"query": query}, params=lenient, timeout=60, verify=s.verify)
        if r.status_code != 200:
            raise AirflowException(f"reconcile: Elasticsearch _count on {index} answered {r.status_code}: "
                                   f"{r.text[:300]}")
        return int(r.json()["count"])
    return _distinct_offsets(es, index, query)


def _distinct_offsets(es: ElasticsearchConnection, index: str, query: dict[str, Any]) -> int:
    """(kafka.partition, kafka.offset) pairs matching query, each once: a
    composite aggregation, paged 10,000 buckets at a time."""
    s = es.session()
    sources = [{"p": {"terms": {"field": "kafka.partition"}}}, {"o": {"terms": {"field": "kafka.offset"}}}]
    after: dict[str, Any] | None = None
    total = 0
    while True:
        comp: dict[str, Any] = {"size": 10_000, "sources": sources, **({"after": after} if after else {})}
        r = s.post(f"{es.url}/{index}/_search", json={"size": 0, "query": query, "aggs": {"o": {"composite": comp}}},
                   params={"allow_no_indices": "true", "ignore_unavailable": "true"}, timeout=120, verify=s.verify)
        if r.status_code != 200:
            raise AirflowException(f"reconcile: Elasticsearch _search on {index} answered {r.status_code}: "
                                   f"{r.text[:300]}")
        agg = r.json().get("aggregations", {}).get("o", {})
        total += len(agg.get("buckets", []))
        after = agg.get("after_key")
        if not agg.get("buckets") or not after:
            return total


def count_dead_letters(kafka: KafkaConnection, dlq_topic: str, topic: str, ranges: dict[int, tuple[int, int]],
                       since_ms: int) -> int:
    """Distinct (partition, offset) of `topic` in `ranges` found in the dead-letter topic,
    reading it from `since_ms` (a minute early, for clock skew) to its current end,
    read_committed: dead letters of an aborted transaction are not there."""
    from confluent_kafka import TopicPartition

    c = _consumer(kafka, "logpipe-reconcile")
    try:
        md = c.list_topics(dlq_topic, timeout=30)
        t = md.topics.get(dlq_topic)
        if t is None or t.error is not None or not t.partitions:
            return 0  # nothing was ever dead-lettered
        parts = [TopicPartition(dlq_topic, p, since_ms - 60_000) for p in t.partitions]
        starts = c.offsets_for_times(parts, timeout=30)
        ends = {p: c.get_watermark_offsets(TopicPartition(dlq_topic, p), timeout=30)[1] for p in t.partitions}
        todo = [tp for tp in starts if tp.offset >= 0 and tp.offset < ends[tp.partition]]
        if not todo:
            return 0
        c.assign(todo)
        remaining = {tp.partition for tp in todo}
        seen: set[tuple[int, int]] = set()
        deadline = time.time() + 120
        while remaining and time.time() < deadline:
            m = c.poll(0.5)
            # Done by position, not by the last message's offset: logpipe writes
            # dead letters in transactions, and a commit marker (never delivered)
            # takes the last offset.
            for tp in c.position([TopicPartition(dlq_topic, p) for p in remaining]):
                if tp.offset >= ends[tp.partition]:
                    remaining.discard(tp.partition)
            if m is None or m.error():
                continue
            h = {k: (v or b"").decode(errors="replace") for k, v in (m.headers() or [])}
            if h.get("logpipe.topic") != topic:
                continue
            p, o = int(h.get("logpipe.partition", -1)), int(h.get("logpipe.offset", -1))
            if p in ranges and ranges[p][0] <= o < ranges[p][1]:
                seen.add((p, o))
        if remaining:
            raise AirflowException(f"reconcile: could not read dead-letter topic {dlq_topic} to its end in 120 s")
        return len(seen)
    finally:
        c.close()


def reconcile(kafka: KafkaConnection, es: ElasticsearchConnection, snap: dict[str, Any], index_pattern: str,
              dlq_topic: str | None) -> dict[str, Any]:
    topic, group = snap["topic"], snap["group"]
    before = {int(p): o for p, o in snap["start"].items()}
    after = positions(kafka, group, topic)
    ranges = {p: (before.get(p, after[p]), after[p]) for p in after}
    consumed = sum(hi - lo for lo, hi in ranges.values())
    documents = count_documents(es, index_pattern, topic, ranges)
    dead = count_dead_letters(kafka, dlq_topic or f"{topic}.dlq", topic, ranges, snap["time_ms"])
    result = {"group": group, "topic": topic, "committed": consumed, "documents": documents,
              "dead_lettered": dead,
              "ranges": {str(p): [lo, hi] for p, (lo, hi) in sorted(ranges.items()) if hi > lo}}
    if documents + dead != consumed:
        raise AirflowException(
            f"reconcile FAILED for group {group} on {topic}: Kafka says {consumed} messages were committed "
            f"this run, but Elasticsearch holds {documents} of them and the dead-letter topic {dead} "
            f"({documents + dead} accounted for, {consumed - documents - dead} missing)")
    return result
