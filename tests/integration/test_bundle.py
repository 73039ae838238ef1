"""The MWAA bundle (deploy/bundle.sh, `make bundle`): its layout is what MWAA
reads from the bucket, and the logpipe in plugins.zip runs on a machine that
has none of the Debian libraries: it needs nothing beyond glibc's own
libraries and what it carries in lib/ (RPATH $ORIGIN/lib), and no glibc
symbol newer than MWAA's Amazon Linux 2023 (2.34). Unpacked the way MWAA
unpacks it, it produces and consumes against the local stack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, create_topic, es_count

GLIBC = re.compile(r"^(linux-vdso|ld-linux-x86-64|libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "mwaa"
    r = subprocess.run(["bash", str(ROOT / "deploy" / "bundle.sh"), str(out)], capture_output=True, text=True,
                       timeout=900, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def unpacked(bundle, tmp_path_factory) -> Path:
    """plugins.zip as MWAA unpacks it to /usr/local/airflow/plugins: the
    execute bit is not kept (zipfile drops it), so it is set here as the
    operator would (the copy-to-temp fallback is tested with Airflow)."""
    d = tmp_path_factory.mktemp("plugins")
    with zipfile.ZipFile(bundle / "plugins.zip") as z:
        z.extractall(d)
    (d / "logpipe").chmod(0o755)
    return d


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def test_layout_is_what_mwaa_reads(bundle):
    assert sorted(p.name for p in (bundle / "dags").iterdir()) == ["log_consumer_pipeline.py",
                                                                   "log_generation_pipeline.py",
                                                                   "logpipe_worker_check.py"]
    names = zipfile.ZipFile(bundle / "plugins.zip").namelist()
    assert "logpipe" in names and "logpipe_plugin.py" in names and "logpipe_airflow/operators.py" in names
    assert "logpipe_airflow/platform_check.py" in names
    assert any(n.startswith("lib/librdkafka.so") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    req = (bundle / "requirements.txt").read_text()
    assert re.search(r'^--constraint "https://raw\.githubusercontent\.com/apache/airflow/constraints-3\.0\.6/'
                     r'constraints-3\.11\.txt"$', req, re.MULTILINE)
    assert re.search(r"^confluent-kafka==\d+\.\d+\.\d+$", req, re.MULTILINE)


def test_binary_needs_only_glibc_or_what_it_carries(unpacked):
    carried = {p.name for p in (unpacked / "lib").iterdir()}
    for f in [unpacked / "logpipe", *sorted((unpacked / "lib").iterdir())]:
        for lib in needed(f):
            assert GLIBC.match(lib) or lib in carried, f"{f.name} needs {lib}, which the bundle does not carry"
    dyn = subprocess.run(["readelf", "-d", str(unpacked / "logpipe")], capture_output=True, text=True,
                         check=True).stdout
    assert re.search(r"\(RPATH\)\s+Library rpath: \[\$ORIGIN/lib\]", dyn), dyn
    versions = set()
    for f in [unpacked / "logpipe", *(unpacked / "lib").iterdir()]:
        out = subprocess.run(["objdump", "-T", str(f)], capture_output=True, text=True, check=True).stdout
        versions |= {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    assert max(versions) <= (2, 34), f"needs GLIBC_{'.'.join(map(str, max(versions)))}, MWAA has 2.34"


def test_unpacked_bundle_runs_end_to_end(unpacked, kafka, kafka_admin, es, unique):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    binary = str(unpacked / "logpipe")
    # every library outside glibc is loaded from the bundle, not from Debian's folders
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env, check=True).stdout
    for name, where in re.findall(r"^\s*(\S+) => (\S+)", ldd, re.MULTILINE):
        if not GLIBC.match(name):
            assert where.startswith(str(unpacked / "lib")), f"{name} resolved to {where}"
    assert subprocess.run([binary, "--help"], capture_output=True, env=env, check=False).returncode == 0
    topic = f"bundle-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    r = subprocess.run([binary, "produce", "-b", kafka, "-t", topic, "--count", "2000"], capture_output=True,
                       text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([binary, "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}", "-e", es, "-i", unique,
                        "--until-idle", "2"], capture_output=True, text=True, env=env, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["indexed"] == 2000
    assert es_count(es, unique) == 2000
