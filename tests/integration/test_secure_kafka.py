"""The secured Kafka listeners, with the stack's test CA, as the seed's
managed Kafka is reached: PLAIN (SASL_SSL on 127.0.0.1:9094) from the Secrets
Manager secret end to end; SCRAM-SHA-512 end to end on a Kafka 3.9 broker
(127.0.0.1:9096, started on demand) and, pinned, the Kafka 4.x login that
Debian's librdkafka cannot do; and the two failures a user meets first (a
wrong password, an untrusted certificate), each stopping before any data
moves with a message that names it.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import ROOT, create_topic, es_count
from helpers import committed, high_watermarks
from test_secrets import key_env

TLS = ROOT / ".stack" / "tls"
SASL = "127.0.0.1:9094"
SCRAM = "127.0.0.1:9096"


@pytest.fixture(scope="module")
def kafka_scram(stack) -> str:
    """The Kafka 3.9 broker with the SCRAM-SHA-512 listener (reused when up)."""
    r = subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "up", "kafka-scram"], capture_output=True,
                       text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    return SCRAM


def scram_conf() -> dict[str, str]:
    """The same login for the test's own client (the confluent-kafka wheel)."""
    return {"bootstrap.servers": SCRAM, "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "logpipe-scram", "sasl.password": (TLS / "kafka-scram.pass").read_text().strip(),
            "ssl.ca.location": str(TLS / "ca.pem")}


def run(logpipe_bin: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([logpipe_bin, *args], check=False, env=env, capture_output=True, text=True, timeout=300)


def plain_args() -> list[str]:
    return ["-b", SASL, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
            "-X", "sasl.username=logpipe", "-X", f"sasl.password=file://{TLS / 'kafka-plain.pass'}",
            "-X", f"ssl.ca.location={TLS / 'ca.pem'}"]


def test_sasl_ssl_plain_end_to_end_from_the_secret(logpipe_bin, kafka, kafka_admin, es, unique, stack, tmp_path):
    topic = f"secure-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    env = key_env(tmp_path)
    ref = "aws-sm://logpipe/local-secure"
    r = run(logpipe_bin, env, "produce", "--secrets", ref, "-t", topic, "--count", "2000", "--summary", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["delivered"] == 2000
    # --es on the command line wins over the secret's elasticsearch_URL
    r = run(logpipe_bin, key_env(tmp_path), "consume", "--secrets", ref, "-e", es, "-t", topic,
            "-g", f"g-{unique}", "-i", unique, "--until-idle", "2")
    assert r.returncode == 0, r.stderr
    assert es_count(es, unique) == 2000
    marks = high_watermarks(kafka, topic)  # read back over the plaintext listener
    assert sum(marks.values()) == 2000
    assert committed(kafka, f"g-{unique}", topic, len(marks)) == marks


def scram_args(broker: str = SCRAM) -> list[str]:
    return ["-b", broker, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", "sasl.username=logpipe-scram", "-X", f"sasl.password=file://{TLS / 'kafka-scram.pass'}",
            "-X", f"ssl.ca.location={TLS / 'ca.pem'}"]


def test_scram_sha_512_end_to_end_on_kafka_3_9(logpipe_bin, kafka_scram, es, unique, tmp_path):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"scram-{unique}"
    admin = AdminClient(scram_conf())  # kept alive until the futures complete
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(timeout=60)
    r = run(logpipe_bin, key_env(tmp_path), "produce", *scram_args(), "-t", topic, "--count", "3000",
            "--summary", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["delivered"] == 3000
    r = run(logpipe_bin, key_env(tmp_path), "consume", *scram_args(), "-e", es, "-t", topic, "-g", f"g-{unique}",
            "-i", unique, "--until-idle", "2")
    assert r.returncode == 0, r.stderr
    assert es_count(es, unique) == 3000
    password = (TLS / "kafka-scram.pass").read_text().strip()
    assert password not in r.stderr + r.stdout
    c = Consumer({**scram_conf(), "group.id": f"g-{unique}"})
    try:
        done = c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=30)
        marks = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in (0, 1)]
    finally:
        c.close()
    assert [tp.offset for tp in done] == marks and sum(marks) == 3000


def test_scram_sha_512_on_kafka_4_is_refused_to_debians_librdkafka(logpipe_bin, kafka, kafka_admin, unique,
                                                                   stack, tmp_path):
    """librdkafka before 2.6.1 repeats the client nonce in the SCRAM
    client-final message; Kafka 4.x rejects that (confluentinc/librdkafka#4895),
    3.9 accepts it (the test above). Debian 12 ships 2.0.2, so logpipe cannot
    log in to Kafka 4.x with SCRAM. The listener and user are right (the
    confluent-kafka wheel's librdkafka logs in) and logpipe says what failed.
    When Debian's librdkafka is 2.6.1 or newer this test fails: then assert
    the success instead."""
    from confluent_kafka import Producer, libversion

    password = (TLS / "kafka-scram.pass").read_text().strip()
    conf = {**scram_conf(), "bootstrap.servers": SASL}
    assert tuple(int(x) for x in libversion()[0].split(".")[:3]) >= (2, 6, 1)
    assert Producer(conf).list_topics(timeout=20).brokers  # the listener authenticates SCRAM users

    topic = f"scram-{unique}"
    create_topic(kafka_admin, topic)
    r = run(logpipe_bin, key_env(tmp_path), "produce", *scram_args(SASL), "-t", topic, "--count", "10",
            "--connect-timeout", "5")
    assert r.returncode == 2, r.stderr
    assert "Kafka authentication failed at 127.0.0.1:9094" in r.stderr and "SCRAM-SHA-512" in r.stderr
    assert password not in r.stderr
    assert high_watermarks(kafka, topic) == {0: 0}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_wrong_password_names_kafka_authentication(logpipe_bin, kafka, kafka_admin, kafka_scram, unique, tmp_path,
                                                   mechanism):
    # each against a listener where the right password logs in (the tests above)
    broker, args = (SASL, plain_args()) if mechanism == "PLAIN" else (SCRAM, scram_args())
    topic = f"badpw-{unique}"
    create_topic(kafka_admin, topic)
    env = {**key_env(tmp_path), "LP_WRONG": "not-the-password"}
    args = [a if not a.startswith("sasl.password=") else "sasl.password=env://LP_WRONG" for a in args]
    r = run(logpipe_bin, env, "produce", *args, "-t", topic, "--count", "10", "--connect-timeout", "5")
    assert r.returncode == 2, r.stderr
    assert f"Kafka authentication failed at {broker}" in r.stderr
    assert "not-the-password" not in r.stderr
    assert high_watermarks(kafka, topic) == {0: 0}



def test_consume_with_a_wrong_password_exits_2_as_produce_does(logpipe_bin, kafka, kafka_admin, es, unique, tmp_path):
    """consume meets the refused login in its error callback before its own
    start-up check answers: the exit code is the same 2 (configuration) that
    produce and check give, not 3 (Kafka unreachable)."""
    topic = f"badpw-c-{unique}"
    create_topic(kafka_admin, topic)
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "10"], check=True,
                   capture_output=True)
    env = {**key_env(tmp_path), "LP_WRONG": "not-the-password"}
    args = [a if not a.startswith("sasl.password=") else "sasl.password=env://LP_WRONG" for a in plain_args()]
    r = run(logpipe_bin, env, "consume", *args, "-t", topic, "-g", f"g-{unique}", "-e", es, "-i", unique,
            "--until-idle", "2", "--connect-timeout", "5")
    assert r.returncode == 2, r.stderr
    assert "Kafka authentication failed" in r.stderr and SASL in r.stderr
    assert "not-the-password" not in r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["exit_code"] == 2
    assert all(o < 0 for o in committed(kafka, f"g-{unique}", topic, 1).values())


def test_untrusted_certificate_is_a_tls_error_not_a_fallback(logpipe_bin, kafka, kafka_admin, unique, stack,
                                                             tmp_path):
    topic = f"badca-{unique}"
    create_topic(kafka_admin, topic)
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca)], check=True, capture_output=True)
    args = [a if not a.startswith("ssl.ca.location=") else f"ssl.ca.location={other_ca}" for a in plain_args()]
    r = run(logpipe_bin, key_env(tmp_path), "produce", *args, "-t", topic, "--count", "10",
            "--connect-timeout", "5")
    assert r.returncode == 2, r.stderr
    assert "TLS to Kafka at 127.0.0.1:9094 failed" in r.stderr
    assert "certificate verify failed" in r.stderr
    assert high_watermarks(kafka, topic) == {0: 0}
