"""The exit summary's lag: what a bounded run leaves behind, per partition.

A run stopped by --max-messages leaves a backlog; the summary's "lag" must
equal each partition's end offset (asked of Kafka here, independently) minus
what the group committed, and "backlog" their sum: the numbers an operator
compares with kafka-consumer-groups --describe. (A run read to its end
reports 0 everywhere: test_replay's second consume checks that.)
"""

from helpers import committed, high_watermarks, run

START = "2026-01-21T22:23:40Z"


def test_max_messages_summary_reports_the_backlog_left(logpipe_bin, kafka, es, topic, unique):
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "900", "--seed", "16", "--start", START)
    assert r.code == 0, r.stderr
    r = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", unique, "-e", es, "-i", unique,
            "--max-messages", "400", "--batch-docs", "100", "--quiet")
    assert r.code == 0, r.stderr
    s = r.summary()
    ends = high_watermarks(kafka, topic)
    done = committed(kafka, unique, topic, len(ends))
    expect = {str(p): ends[p] - max(done.get(p, 0), 0) for p in ends}
    assert s["lag"] == {topic: expect}
    assert s["backlog"] == sum(expect.values()) == 900 - sum(max(v, 0) for v in done.values())
    assert 0 < s["backlog"] <= 500

