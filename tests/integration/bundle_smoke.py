"""The bundle's first run, as a new MWAA user's worker makes it: one Secrets
Manager secret with the seed's keys (no CA in it) read over https, produce
and consume over Kafka's SASL_SSL listener, index into the secured
Elasticsearch over https, every peer verified with nothing but the machine's
system trust store.

Shared by two runners, so it needs only Python 3.9's standard library:
- tests/integration/test_bundle.py runs it in chroots laid out like Amazon
  Linux 2023, Debian and Alpine, on the machine that runs the stack;
- the ci workflow's `bundle-amazonlinux` job runs it inside the real
  amazonlinux:2023 container, with the stack's test CA added to that
  system's trust store by `update-ca-trust`:

      python3 bundle_smoke.py prepare OUT.json     (next to the stack: .venv's boto3 and confluent-kafka)
      python3 bundle_smoke.py run OUT.json LOGPIPE (where the bundle runs: the standard library only)

`prepare` creates the secret and the topic and writes what `run` needs
(names, endpoints, the test AWS key); `run` exits non-zero naming the check
that failed.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TLS = ROOT / ".stack" / "tls"
AWS_HOME = ROOT / ".stack" / "aws"
SASL = "127.0.0.1:9094"
ES_API_KEY_GATEWAY = "https://127.0.0.1:9202"
AWS_HTTPS = "https://127.0.0.1:5443"  # nginx with the test CA's certificate in front of moto (stack.sh)
COUNT = 400


def prepare(name: str | None = None) -> dict:
    """A secret with the seed's keys for the secured servers, and a topic.
    Needs boto3 and confluent-kafka (the test harness's .venv)."""
    import boto3
    from confluent_kafka.admin import AdminClient, NewTopic

    name = name or "t" + uuid.uuid4().hex[:10]
    keys = dict(line.split(" = ", 1) for line in (AWS_HOME / "credentials").read_text().splitlines() if " = " in line)
    sm = boto3.client("secretsmanager", endpoint_url="http://127.0.0.1:5000", region_name="us-east-1",
                      aws_access_key_id=keys["aws_access_key_id"], aws_secret_access_key=keys["aws_secret_access_key"])
    api_key = (TLS / "es-api-key").read_text().strip()
    secret = f"logpipe/bundle-smoke/{name}"
    sm.create_secret(Name=secret, SecretString=json.dumps({
        "kafka_bootstrap_server": SASL, "kafka_username": "logpipe",
        "kafka_secret": (TLS / "kafka-plain.pass").read_text().strip(),
        "elasticsearch_URL": ES_API_KEY_GATEWAY, "elasticsearch_API_Key": api_key}))
    topic = f"bundle-smoke-{name}"
    admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    return {"secret": secret, "topic": topic, "group": f"g-{name}", "index": f"bundle-smoke-{name}",
            "es": ES_API_KEY_GATEWAY, "es_api_key": api_key,
            "aws": {"AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
                    "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": AWS_HTTPS, "AWS_EC2_METADATA_DISABLED": "true"}}


def environment(settings: dict) -> dict:
    """What a worker has: AWS's variables and a PATH, nothing naming a CA."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", **settings["aws"]}


def logpipe(command: list[str], settings: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], env=environment(settings), capture_output=True, text=True,
                          timeout=300, check=False)


def es_count(settings: dict, cafile: str | None) -> int:
    """Documents in the run's index, read through the API-key endpoint."""
    context = ssl.create_default_context(cafile=cafile)
    headers = {"Authorization": "ApiKey " + settings["es_api_key"]}
    base = f"{settings['es']}/{settings['index']}"
    urllib.request.urlopen(urllib.request.Request(base + "/_refresh", method="POST", headers=headers),
                           context=context, timeout=30).read()
    with urllib.request.urlopen(urllib.request.Request(base + "/_count", headers=headers), context=context,
                                timeout=30) as r:
        return int(json.load(r)["count"])


def check(ok: bool, what: str, r: subprocess.CompletedProcess | None = None) -> None:
    if not ok:
        detail = f"\nexit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-3000:]}" if r else ""
        raise AssertionError(what + detail)


def run(command: list[str], settings: dict, trusted: str, cafile: str | None = None) -> dict:
    """Produces COUNT lines and consumes them into Elasticsearch with
    --secrets aws-sm://... alone; `trusted` is the bundle -v must name.
    Returns the consumer's summary."""
    ref = "aws-sm://" + settings["secret"]
    r = logpipe(command, settings, "produce", "--secrets", ref, "-t", settings["topic"], "--count", str(COUNT),
                "--summary", "json", "-v")
    check(r.returncode == 0, "produce over SASL_SSL, settings from Secrets Manager over https", r)
    check(f"trusting the CA certificates in {trusted} " in r.stderr, f"produce -v names {trusted}", r)
    check(json.loads(r.stdout.splitlines()[-1])["delivered"] == COUNT, f"{COUNT} delivered", r)
    r = logpipe(command, settings, "consume", "--secrets", ref, "-t", settings["topic"], "-g", settings["group"],
                "-i", settings["index"], "--until-idle", "2", "-v")
    check(r.returncode == 0, "consume over SASL_SSL into Elasticsearch over https", r)
    check(f"trusting the CA certificates in {trusted} " in r.stderr, f"consume -v names {trusted}", r)
    summary = json.loads(r.stdout.splitlines()[-1])
    check(summary["consumed"] == COUNT and summary["indexed"] == COUNT, f"{COUNT} consumed and indexed: {summary}", r)
    check(es_count(settings, cafile) == COUNT, f"Elasticsearch holds {COUNT} documents in {settings['index']}")
    check(settings["es_api_key"] not in r.stdout + r.stderr, "the API key is not printed")
    return summary


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "prepare":
        Path(argv[2]).write_text(json.dumps(prepare()))
        os.chmod(argv[2], 0o600)
        return 0
    if len(argv) == 4 and argv[1] == "run":
        settings = json.loads(Path(argv[2]).read_text())
        run([argv[3]], settings, trusted="/etc/pki/tls/certs/ca-bundle.crt")
        print(f"bundle smoke: {COUNT} lines through SASL_SSL Kafka into https Elasticsearch, settings from "
              "Secrets Manager over https, trusting the system's /etc/pki/tls/certs/ca-bundle.crt")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
