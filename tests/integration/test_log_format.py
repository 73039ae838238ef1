"""--log-format json and --version, on every subcommand (the ones `logpipe
--help` lists, so a new subcommand is covered without an edit here). A live
consume's JSON log is checked line by line in test_metrics.py."""

from __future__ import annotations

import json
import os
import re
import subprocess

from helpers import run


def subcommands(logpipe_bin: str) -> list[str]:
    text = run(logpipe_bin, "--help").stdout
    listed = text.split("commands:\n")[1].split("\n\n")[0]
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def test_version_on_every_subcommand(logpipe_bin):
    commands = subcommands(logpipe_bin)
    assert {"generate", "parse", "produce", "consume", "check"} <= set(commands)
    for args in [["--version"]] + [[c, "--version"] for c in commands] + [["consume", "-t", "x", "--version"]]:
        r = run(logpipe_bin, *args, timeout=30)
        assert r.code == 0, (args, r.stderr)
        lines = r.stdout.splitlines()
        assert re.fullmatch(r"logpipe \d+\.\d+\.\d+", lines[0]), (args, lines)
        assert re.fullmatch(r"librdkafka \d+\.\d+\.\d+.*", lines[1]), (args, lines)
        assert re.fullmatch(r"libcurl \d+\.\d+\.\d+.*", lines[2]), (args, lines)
        assert re.fullmatch(r"libmicrohttpd \d+\.\d+\.\d+.*", lines[3]), (args, lines)


def json_lines(stderr: str) -> list[dict]:
    """Every stderr line as the JSON object it must be."""
    out = []
    for line in stderr.splitlines():
        obj = json.loads(line)
        assert {"timestamp", "level", "command", "message"} <= obj.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["timestamp"]), line
        assert obj["level"] in ("error", "warning", "info"), line
        out.append(obj)
    return out


def test_json_logs_of_failing_runs_keep_secrets_out(logpipe_bin, unique):
    env = dict(os.environ, LOGPIPE_KAFKA_PASSWORD="hunter2-kafka", LOGPIPE_ES_API_KEY="hunter2-es")
    # Kafka refuses the connection: librdkafka's own log lines and logpipe's error, all JSON
    p = subprocess.run([logpipe_bin, "consume", "--log-format", "json", "-b", "127.0.0.1:1", "-t", unique,
                        "-g", unique, "-e", "http://127.0.0.1:1", "--connect-timeout", "2",
                        "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
                        "-X", "sasl.username=u"], check=False, capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 3
    assert "hunter2" not in p.stderr + p.stdout
    objs = json_lines(p.stderr)
    last = objs[-1]
    assert last["level"] == "error" and last["command"] == "consume" and last["fields"] == {"exit_code": 3}
    assert "--brokers" in last["message"]
    assert any(o.get("fields", {}).get("facility") for o in objs), "librdkafka's log lines come as JSON too"
    # a usage error, from getopt and from logpipe's own checks
    for args, words in [(["--bogus"], "unrecognized option"), (["--batch-docs", "x"], "--batch-docs")]:
        r = run(logpipe_bin, "consume", "--log-format=json", *args)
        assert r.code == 2
        assert any(o["level"] == "error" and words in o["message"] for o in json_lines(r.stderr)), r.stderr
    # every subcommand takes it; a bad value names the flag
    for command in subcommands(logpipe_bin):
        r = run(logpipe_bin, command, "--log-format", "yaml")
        assert r.code == 2 and '--log-format: "yaml" is not one of text, json' in r.stderr, (command, r.stderr)
    r = run(logpipe_bin, "parse", "--log-format", "json", stdin=b"not a log line\n")
    assert r.code == 0 and json_lines(r.stderr)[-1]["message"] == "1 lines, 0 documents, 1 rejected"
