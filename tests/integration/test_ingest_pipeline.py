"""consume --pipeline: documents go through an Elasticsearch ingest pipeline.

The local Elasticsearch is the integ-test distribution: its only processor
is x-pack-security's set_security_user (the ingest-common and user-agent
modules are not in it, and are not published on Maven Central: docs/stack.md).
So the pipeline that runs for real here is one with that processor, on the
secured Elasticsearch (the processor needs security on): every document
comes back carrying the user that indexed it, which only the pipeline can
have put there. Its name has an '@' (as Elastic's @custom pipelines do), so
the URL-encoding is exercised too.

A processor that fails on the documents (that one where security is off:
HTTP 500) is retried for --retry-limit, then stops the run: nothing
committed or dead-lettered. The errors: a name with a character no pipeline name has is refused before
anything is contacted; a pipeline that does not exist stops the run at
start-up when the credentials may read pipelines (the shared
Elasticsearch), and at the first bulk otherwise (the secured one's writer
has no read_pipeline): either way exit code and message name the pipeline,
and nothing is committed or dead-lettered.
"""

from __future__ import annotations

import subprocess

import requests
from helpers import Run, committed, run
from test_refusals import assert_stopped_untouched
from test_secure_es import ES_SECURE, TLS

PIPELINE_ISSUER = {"description": "who indexed the document (logpipe's test of --pipeline)",
                   "processors": [{"set_security_user": {"field": "indexed_by", "properties": ["username"]}}]}
SECURE = ["-e", ES_SECURE, "--es-ca", str(TLS / "ca.pem"), "--es-user", "logpipe",
          "--es-password", f"file://{TLS / 'es-logpipe.pass'}"]


def elastic() -> dict:
    return {"auth": ("elastic", (TLS / "es-elastic.pass").read_text().strip()), "verify": str(TLS / "ca.pem"),
            "timeout": 30}


def start(logpipe_bin, kafka, topic, group, index, *extra) -> subprocess.Popen:
    return subprocess.Popen([logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", group, "-i", index,
                             "--until-idle", "2", "--retry-limit", "5", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(p: subprocess.Popen) -> Run:
    out, err = p.communicate(timeout=120)
    return Run(p.returncode, out.decode(), err.decode())


def test_pipeline_runs_on_every_document_and_a_missing_one_stops_untouched(logpipe_bin, kafka, es, kafka_admin,
                                                                           topic, unique):
    # a name Elasticsearch would never have: refused before Kafka or Elasticsearch is contacted
    r = run(logpipe_bin, "consume", "-b", "127.0.0.1:1", "-t", topic, "-g", f"x-{unique}", "-e",
            "http://127.0.0.1:1", "--pipeline", "a/b?c")
    assert r.code == 2 and "--pipeline: \"a/b?c\" has a character not allowed" in r.stderr, r.stderr

    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "200", "--seed", "3")
    assert r.code == 0, r.stderr
    good, failing = f"{unique}@custom", f"{unique}-fails"
    requests.put(f"{ES_SECURE}/_ingest/pipeline/{good}", json=PIPELINE_ISSUER, **elastic()).raise_for_status()
    # the same processor where security is off fails on every document (HTTP 500)
    requests.put(f"{es}/_ingest/pipeline/{failing}", json=PIPELINE_ISSUER, timeout=30).raise_for_status()
    try:
        fails = start(logpipe_bin, kafka, topic, f"fail-{unique}", f"{unique}-fail", "-e", es,
                      "--pipeline", failing)
        # both secured runs at once: one group join's wait for the two
        ran = start(logpipe_bin, kafka, topic, f"ok-{unique}", f"{unique}-ok", *SECURE, "--pipeline", good)
        missing = start(logpipe_bin, kafka, topic, f"miss-{unique}", f"{unique}-miss", *SECURE,
                        "--pipeline", f"{unique}-absent")
        # the shared Elasticsearch lets a pipeline be read: a missing one stops the run at start-up
        r = run(logpipe_bin, "consume", "-b", kafka, "-t", topic, "-g", f"pre-{unique}", "-e", es, "-i",
                f"{unique}-pre", "--pipeline", f"{unique}-absent", "--until-idle", "2")
        assert r.code == 2, r.stderr
        assert f'has no ingest pipeline "{unique}-absent"' in r.stderr, r.stderr
        assert all(o < 0 for o in committed(kafka, f"pre-{unique}", topic, 3).values())

        r = finish(ran)
        assert r.code == 0, r.stderr
        assert r.summary()["indexed"] == 200 - r.summary()["dead_lettered"] > 150, r.summary()
        # indexed_by is not in the mapping (dynamic: false), so it is read from _source
        requests.post(f"{ES_SECURE}/{unique}-ok/_refresh", **elastic())
        docs = requests.post(f"{ES_SECURE}/{unique}-ok/_search", json={"size": 300}, **elastic()).json()
        hits = docs["hits"]["hits"]
        assert len(hits) == r.summary()["indexed"]
        assert all(h["_source"]["indexed_by"] == {"username": "logpipe"} for h in hits)

        # the writer may not read pipelines: the first bulk is refused, the run stops, nothing committed
        r = finish(missing)
        assert_stopped_untouched(r, kafka, topic, f"miss-{unique}",
                                 [f"pipeline with id [{unique}-absent] does not exist"])

        # a processor that fails: retried as Elasticsearch's fault, then the run stops untouched
        r = finish(fails)
        assert_stopped_untouched(r, kafka, topic, f"fail-{unique}", ["set_security_user"])
    finally:
        requests.delete(f"{ES_SECURE}/_ingest/pipeline/{good}", **elastic())
        requests.delete(f"{es}/_ingest/pipeline/{failing}", timeout=30)
