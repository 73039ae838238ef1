"""The secured Elasticsearch (security module on, TLS on HTTP with the
stack's test CA, file-realm user; 127.0.0.1:9201) and its API-key gateway
(127.0.0.1:9202: this distribution cannot store API keys, docs/stack.md):
logpipe indexes with the API key and CA from Secrets Manager, or with a user
and a password by reference, and refuses to go on when the key is wrong or
the certificate is not trusted (no silent fallback to an unverified
connection).
"""

from __future__ import annotations

import json
import subprocess

import requests
from conftest import ROOT, create_topic
from helpers import committed
from test_secrets import key_env

TLS = ROOT / ".stack" / "tls"
ES_SECURE = "https://127.0.0.1:9201"
ES_API_KEY_GATEWAY = "https://127.0.0.1:9202"


def secure_count(index: str) -> int:
    auth = ("elastic", (TLS / "es-elastic.pass").read_text().strip())
    requests.post(f"{ES_SECURE}/{index}/_refresh", auth=auth, verify=str(TLS / "ca.pem"), timeout=30)
    r = requests.get(f"{ES_SECURE}/{index}/_count", auth=auth, verify=str(TLS / "ca.pem"), timeout=30)
    r.raise_for_status()
    return r.json()["count"]


def run(logpipe_bin: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([logpipe_bin, *args], check=False, env=env, capture_output=True, text=True, timeout=300)


def test_everything_from_the_secret_sasl_ssl_kafka_to_tls_api_key_elasticsearch(logpipe_bin, kafka_admin,
                                                                                unique, stack, tmp_path):
    """The seed's set-up: one secret, managed Kafka with SASL_SSL, Elasticsearch with an API key."""
    topic = f"sec-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    ref = "aws-sm://logpipe/local-secure"
    r = run(logpipe_bin, key_env(tmp_path), "produce", "--secrets", ref, "-t", topic, "--count", "3000",
            "--malformed-ratio", "0.01", "--seed", "5")
    assert r.returncode == 0, r.stderr
    r = run(logpipe_bin, key_env(tmp_path), "consume", "--secrets", ref, "-t", topic, "-g", f"g-{unique}",
            "-i", unique, "--until-idle", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["consumed"] == 3000
    assert secure_count(unique) == summary["indexed"] == 3000 - summary["dead_lettered"]
    api_key = (TLS / "es-api-key").read_text().strip()
    assert api_key not in r.stdout + r.stderr


def test_basic_auth_with_password_by_reference(logpipe_bin, kafka, kafka_admin, unique, stack, tmp_path):
    topic = f"basic-{unique}"
    create_topic(kafka_admin, topic)
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "500"], check=True,
                   capture_output=True)
    r = run(logpipe_bin, key_env(tmp_path), "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}",
            "-e", ES_SECURE, "--es-ca", str(TLS / "ca.pem"), "--es-user", "logpipe",
            "--es-password", f"file://{TLS / 'es-logpipe.pass'}", "-i", unique, "--until-idle", "2")
    assert r.returncode == 0, r.stderr
    assert secure_count(unique) == 500


def test_wrong_api_key_and_untrusted_certificate_stop_before_committing(logpipe_bin, kafka, kafka_admin, unique,
                                                                        stack, tmp_path):
    topic = f"bad-{unique}"
    create_topic(kafka_admin, topic)
    subprocess.run([logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "100"], check=True,
                   capture_output=True)
    env = {**key_env(tmp_path), "LP_BAD_KEY": "bm90LWEta2V5Om5vcGU="}
    r = run(logpipe_bin, env, "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}", "-e", ES_API_KEY_GATEWAY,
            "--es-ca", str(TLS / "ca.pem"), "--es-api-key", "env://LP_BAD_KEY", "-i", unique, "--until-idle", "2")
    assert r.returncode == 2, r.stderr  # a refused login is configuration, as Kafka's
    assert "401" in r.stderr and "bm90LWEta2V5Om5vcGU=" not in r.stderr

    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca)], check=True, capture_output=True)
    for ca in (["--es-ca", str(other_ca)], []):  # a wrong CA, and none (the system CAs do not know the test CA)
        r = run(logpipe_bin, key_env(tmp_path), "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}",
                "-e", ES_SECURE, *ca, "--es-user", "logpipe", "--es-password", f"file://{TLS / 'es-logpipe.pass'}",
                "-i", unique, "--until-idle", "2")
        assert r.returncode == 4, r.stderr
        assert "certificate" in r.stderr.lower(), r.stderr
    assert requests.head(f"{ES_SECURE}/{unique}", verify=str(TLS / "ca.pem"), timeout=30,
                         auth=("elastic", (TLS / "es-elastic.pass").read_text().strip())).status_code == 404
    # nothing acknowledged, so nothing committed and nothing indexed
    assert all(o < 0 for o in committed(kafka, f"g-{unique}", topic, 1).values())
