"""`logpipe setup` apart from `logpipe consume`, on the secured Elasticsearch
(127.0.0.1:9201) with file-realm roles holding exactly the privileges
docs/deploy.md lists (issue 15, point 3):

- setup: cluster manage_index_templates (and create_index on the data
  stream, which only --create-data-stream uses);
- consume into a data stream: create_doc and auto_configure on it (the
  latter lets its first write create it), no cluster privilege at all
  (no monitor, no manage_index_templates).

The writer cannot install the template (403, exit 2), and once setup ran it
writes every document without it.
"""

from __future__ import annotations

import os

import requests
from conftest import create_topic
from helpers import START, Run, run
from test_prerequisites import ES_SECURE, TLS, FileRealm

LINES = 20


def as_user(logpipe: str, password: str, *args: str) -> Run:
    env = {**os.environ, "LOGPIPE_ES_PASSWORD": password}
    import subprocess

    p = subprocess.run([logpipe, *args], env=env, capture_output=True, timeout=120, check=False)
    return Run(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def admin_get(path: str) -> requests.Response:
    auth = ("elastic", (TLS / "es-elastic.pass").read_text().strip())
    return requests.get(f"{ES_SECURE}{path}", auth=auth, verify=str(TLS / "ca.pem"), timeout=30)


def test_setup_then_a_least_privilege_writer(logpipe_bin, kafka, kafka_admin, realm: FileRealm, unique):
    stream, topic = f"logs-{unique}-default", f"sp-{unique}"
    setup_user, writer = f"s{unique}", f"w{unique}"
    realm.add(setup_user, f"p{unique}s", ["manage_index_templates"], stream, ["create_index"])
    realm.add(writer, f"p{unique}w", [], stream, ["create_doc", "auto_configure"])
    realm.wait_ready(setup_user, f"p{unique}s")
    realm.wait_ready(writer, f"p{unique}w")
    es = ["--es", ES_SECURE, "--es-ca", str(TLS / "ca.pem")]

    # The writer may not install the template: setup says so, exit 2.
    r = as_user(logpipe_bin, f"p{unique}w", "setup", *es, "--es-user", writer, "--data-stream", stream)
    assert r.code == 2, r.stderr
    assert f"installing index template logpipe-{stream}@data-stream failed (HTTP 403)" in r.stderr

    r = as_user(logpipe_bin, f"p{unique}s", "setup", *es, "--es-user", setup_user, "--data-stream", stream,
                "--replicas", "0")
    assert r.code == 0, r.stderr
    assert f"index template logpipe-{stream}@data-stream installed: pattern {stream}" in r.stdout
    stamp = r.stdout.split("stamp ")[1].split()[0]
    tpl = admin_get(f"/_index_template/logpipe-{stream}@data-stream").json()["index_templates"][0]
    assert tpl["index_template"]["_meta"]["logpipe_stamp"] == stamp

    create_topic(kafka_admin, topic)
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", str(LINES), "--seed", "18", "--start", START)
    assert r.code == 0, r.stderr
    r = as_user(logpipe_bin, f"p{unique}w", "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}", *es,
                "--es-user", writer, "--data-stream", stream, "--until-idle", "1", "--verbose")
    assert r.code == 0, r.stderr
    assert "no manage_index_templates: not checking index template" in r.stderr
    s = r.summary()
    assert (s["consumed"], s["indexed"], s["dead_lettered"]) == (LINES, LINES, 0)
    auth = ("elastic", (TLS / "es-elastic.pass").read_text().strip())
    requests.post(f"{ES_SECURE}/{stream}/_refresh", auth=auth, verify=str(TLS / "ca.pem"), timeout=30)
    assert admin_get(f"/{stream}/_count").json()["count"] == LINES
    assert [d["name"] for d in admin_get(f"/_resolve/index/{stream}").json()["data_streams"]] == [stream]
