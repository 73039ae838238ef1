"""The local stack is real: Kafka answers metadata, Elasticsearch reports an 8.x version."""

import os
import shutil
import subprocess
from pathlib import Path

import requests
from confluent_kafka.admin import AdminClient
from conftest import ROOT


def test_kafka_answers_metadata(kafka_admin: AdminClient) -> None:
    md = kafka_admin.list_topics(timeout=30)
    assert md.brokers, "no broker in the cluster metadata"


def test_elasticsearch_is_8x_and_not_red(es: str) -> None:
    nodes = requests.get(f"{es}/_nodes/_local?filter_path=nodes.*.version", timeout=30).json()
    version = next(iter(nodes["nodes"].values()))["version"]
    assert version.startswith("8."), version
    health = requests.get(f"{es}/_cluster/health", timeout=30).json()
    assert health["status"] in ("green", "yellow")


def test_status_names_both_servers(stack: None) -> None:
    out = subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "status"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kafka" in out.stdout and "elasticsearch" in out.stdout


def _recording_kcat(tmp_path: Path) -> Path:
    """A kcat on PATH that records its argv (what `ps` shows every local user) and
    the mode of any -F file, then runs the real one."""
    real = shutil.which("kcat")
    assert real, "kcat is missing"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kcat").write_text(f"""#!/bin/bash
printf '%s\\n' "$*" >> {tmp_path}/argv
prev=
for a in "$@"; do [ "$prev" = -F ] && stat -c '%a %n' "$a" >> {tmp_path}/configs; prev=$a; done
exec {real} "$@"
""")
    (bindir / "kcat").chmod(0o755)
    return bindir


def test_kafka_test_passwords_never_reach_kcats_argv(stack: None, tmp_path: Path) -> None:
    """The readiness checks of the SASL_SSL listeners log in with the stack's test
    passwords: through a private -F config file, never on kcat's command line."""
    bindir = _recording_kcat(tmp_path)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    tls = ROOT / ".stack" / "tls"
    # status runs the SCRAM listener's check; the sourced functions the PLAIN one's,
    # against the running broker (it must still log in)
    subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "status"], env=env, capture_output=True, timeout=120,
                   check=False)
    sasl = subprocess.run(["bash", "-c", f"source {ROOT}/stack/stack.sh && kafka_sasl_ready"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert sasl.returncode == 0, sasl.stderr
    argv = (tmp_path / "argv").read_text()
    assert "sasl.username=logpipe" not in argv and "-F " in argv, argv
    for name in ("kafka-plain.pass", "kafka-scram.pass"):
        assert (tls / name).read_text().strip() not in argv, f"the password of {name} is on kcat's command line"
    configs = (tmp_path / "configs").read_text().split("\n")
    assert configs[0] and all(line.startswith("600 ") for line in configs if line), configs


def test_broker_configs_are_private_from_their_creation(tmp_path: Path) -> None:
    """server.properties holds the keystore and PLAIN passwords. Written by the
    stack's own functions into a scratch folder (files only: no server starts),
    under a umask of 022 and over an old world-readable copy: the new file is
    0600, and the secret never went into the old, readable inode."""
    stack_dir = tmp_path / "stack"
    (stack_dir / "tls").mkdir(parents=True)
    for name in ("keystore.pass", "kafka-plain.pass"):
        (stack_dir / "tls" / name).write_text(f"secret-{name}\n")
    props = []
    for home in ("kafka", "kafka-scram"):
        (stack_dir / home / "data").mkdir(parents=True)
        (stack_dir / home / "data" / "meta.properties").write_text("")  # formatted: no StorageTool run
        p = stack_dir / home / "server.properties"
        p.write_text("# old\n")
        p.chmod(0o644)
        props.append(p)
    old = [p.open() for p in props]
    try:
        script = f"umask 022; source {ROOT}/stack/stack.sh && configure_kafka && configure_kafka_scram"
        r = subprocess.run(["bash", "-c", script], env={**os.environ, "LOGPIPE_STACK_DIR": str(stack_dir)},
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert [f.read() for f in old] == ["# old\n", "# old\n"]
    finally:
        for f in old:
            f.close()
    for p in props:
        assert oct(p.stat().st_mode & 0o777) == "0o600", p
        assert "ssl.keystore.password=secret-keystore.pass" in p.read_text()
    assert 'user_logpipe="secret-kafka-plain.pass"' in props[0].read_text()
    assert sorted(p.name for p in stack_dir.rglob("server.properties*")) == ["server.properties"] * 2
