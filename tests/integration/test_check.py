"""logpipe check against the real stack: one case per exit code.

What an operator reads: the table on stderr (what is ready, what is not and
why), the JSON rows on stdout (what the worker-check DAG parses), the exit
status (0 ready, 2 a setting or a grant, 3 Kafka, 4 Elasticsearch), and that
checking created nothing (no topic, no template).
"""

from __future__ import annotations

import json
import os
import subprocess

import requests
from helpers import run
from test_prerequisites import ES_SECURE, TLS


def rows(r) -> dict[str, dict]:
    return {row["check"]: row for row in json.loads(r.stdout)["checks"]}


def topics(kafka_admin) -> set[str]:
    return set(kafka_admin.list_topics(timeout=30).topics)


def test_ready_exits_0_with_a_table(logpipe_bin, kafka, es, topic, unique):
    r = run(logpipe_bin, "check", "-b", kafka, "-e", es, "-t", topic, "-g", f"logpipe-{unique}",
            "-i", f"{unique}-%Y")
    assert r.code == 0, r.stderr
    got = rows(r)
    assert list(got) == ["settings", "kafka", f"topic {topic}", f"dead-letter topic {topic}.dlq",
                         f"group logpipe-{unique}", "elasticsearch", "elasticsearch privileges",
                         f"index template logpipe-{unique}"]
    assert all(row["ok"] for row in got.values())
    assert "consume creates it at start" in got[f"dead-letter topic {topic}.dlq"]["detail"]
    assert "consume installs it at start" in got[f"index template logpipe-{unique}"]["detail"]
    assert r.stderr.splitlines()[0].split() == ["CHECK", "READY", "DETAIL"]
    assert any(line.startswith(f"topic {topic} ") and " yes " in line for line in r.stderr.splitlines())


def test_a_template_setup_installed_reads_as_current(logpipe_bin, kafka, es, topic, unique):
    # check builds the template consume would install, with the cluster's
    # default settings; it once left replicas at 0 and called every current
    # template another logpipe's.
    pattern = f"{unique}-%Y"
    r = run(logpipe_bin, "setup", "--es", es, "-i", pattern)
    assert r.code == 0, r.stderr
    r = run(logpipe_bin, "check", "-b", kafka, "-e", es, "-t", topic, "-g", f"logpipe-{unique}", "-i", pattern)
    assert r.code == 0, r.stderr
    assert rows(r)[f"index template logpipe-{unique}"]["detail"] == "installed and current"


def test_missing_topic_exits_3_and_creates_nothing(logpipe_bin, kafka, es, kafka_admin, unique):
    r = run(logpipe_bin, "check", "-b", kafka, "-e", es, "-t", f"logs-{unique}", "-g", f"logpipe-{unique}")
    assert r.code == 3, r.stderr
    assert rows(r)[f"topic logs-{unique}"] == {"check": f"topic logs-{unique}", "ok": False,
                                               "detail": "does not exist (--topic)"}
    assert any(line.startswith(f"topic logs-{unique} ") and " NO " in line for line in r.stderr.splitlines())
    assert not {f"logs-{unique}", f"logs-{unique}.dlq"} & topics(kafka_admin)
    r = run(logpipe_bin, "check", "-b", "127.0.0.1:1", "--connect-timeout", "2")
    assert r.code == 3 and not rows(r)["kafka"]["ok"]


def test_unreachable_elasticsearch_exits_4(logpipe_bin, kafka, topic):
    r = run(logpipe_bin, "check", "-b", kafka, "-e", "http://127.0.0.1:1", "-t", topic)
    assert r.code == 4, r.stderr
    got = rows(r)
    assert got["kafka"]["ok"] and got[f"topic {topic}"]["ok"] and not got["elasticsearch"]["ok"]
    assert "http://127.0.0.1:1" in got["elasticsearch"]["detail"]


def test_a_setting_or_a_grant_missing_exits_2(logpipe_bin, kafka, es, topic, realm, unique):
    # --no-template with no template installed: indices would get dynamic mappings
    r = run(logpipe_bin, "check", "-b", kafka, "-e", es, "-t", topic, "-i", f"{unique}-%Y", "--no-template")
    assert r.code == 2, r.stderr
    assert "--no-template" in rows(r)[f"index template logpipe-{unique}"]["detail"]
    assert requests.get(f"{es}/_index_template/logpipe-{unique}", timeout=30).status_code == 404
    # credentials that lack a privilege consume needs (index): named, as consume names it
    user, password = f"u{unique}", f"p{unique}"
    realm.add(user, password, [], f"{unique}-*", ["create_index"])
    realm.wait_ready(user, password)
    p = subprocess.run([logpipe_bin, "check", "-b", kafka, "-e", ES_SECURE, "--es-ca", str(TLS / "ca.pem"),
                        "--es-user", user, "-t", topic, "-i", f"{unique}-%Y"], capture_output=True, text=True,
                       env={**os.environ, "LOGPIPE_ES_PASSWORD": password}, timeout=120, check=False)
    assert p.returncode == 2, p.stderr
    assert "lacks" in rows(p)["elasticsearch privileges"]["detail"], p.stderr
    assert "index" in rows(p)["elasticsearch privileges"]["detail"].split("lacks", 1)[1], p.stderr
    assert password not in p.stdout + p.stderr
    # settings that cannot be resolved: nothing else is tried
    r = run(logpipe_bin, "check", "--secrets", f"file:///nonexistent/{unique}")
    assert r.code == 2 and list(rows(r)) == ["settings"]
