"""logpipe produce against the real Kafka broker."""

import pytest
from helpers import high_watermarks, read_topic, run

START = "2026-01-21T22:23:40Z"


def test_generated_lines_arrive_exactly_once_and_byte_exact(logpipe_bin, kafka, topic):
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10000",
            "--seed", "11", "--start", START, "--summary", "json")
    assert r.code == 0, r.stderr
    assert "delivered 10000, failed 0" in r.stderr
    assert sum(high_watermarks(kafka, topic).values()) == 10000
    expected = run(logpipe_bin, "generate", "--count", "10000", "--seed", "11", "--start", START)
    got = sorted(m.value() for m in read_topic(kafka, topic, 10000))
    assert got == sorted(line.encode() for line in expected.stdout.splitlines())


def test_input_file_and_empty_lines(logpipe_bin, kafka, topic, tmp_path):
    f = tmp_path / "in.log"
    f.write_bytes(b"one\r\n\ntwo\nthree")
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--input", str(f))
    assert r.code == 0, r.stderr
    assert "sent 3, delivered 3" in r.stderr and "skipped 1 empty" in r.stderr
    assert sorted(m.value() for m in read_topic(kafka, topic, 3)) == [b"one", b"three", b"two"]


@pytest.mark.parametrize("fmt, client_field", [("seed", 0), ("vhost_combined", 1)])
def test_key_ip_keeps_a_client_on_one_partition(logpipe_bin, kafka, topic, fmt, client_field):
    # vhost_combined's first field is the virtual host: the key is the client after it
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "3000", "--seed", "3",
            "--key", "ip", "--compression", "lz4", "--format", fmt, "--realistic")
    assert r.code == 0, r.stderr
    by_ip: dict[bytes, set[int]] = {}
    for m in read_topic(kafka, topic, 3000):
        assert m.key() == m.value().split(b" ")[client_field]
        by_ip.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in by_ip.values())


def test_unreachable_brokers_exit_3_naming_them(logpipe_bin):
    r = run(logpipe_bin, "produce", "-b", "127.0.0.1:1", "-t", "x", "--count", "1",
            "--connect-timeout", "2", timeout=30)
    assert r.code == 3
    assert "127.0.0.1:1 (--brokers)" in r.stderr


def test_bad_property_stops_before_connecting(logpipe_bin, kafka):
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", "x", "-X", "compression.codec=brotli")
    assert r.code == 2
    assert "compression.codec" in r.stderr
