"""The MWAA bundle (deploy/bundle.sh, `make bundle`): its layout is what MWAA
reads from the bucket, and the logpipe in plugins.zip runs on a machine that
has none of the Debian libraries: it needs nothing beyond glibc's own
libraries and what it carries in lib/ (RPATH $ORIGIN/lib), and no glibc
symbol newer than MWAA's Amazon Linux 2023 (2.34). Unpacked the way MWAA
unpacks it, it produces and consumes against the local stack; and in a root
laid out like Amazon Linux 2023, Debian or Alpine (a chroot holding only the
bundle, glibc and that system's trust store with the stack's test CA in it)
it verifies every TLS peer with that store, and stops with exit 2 naming
what to set when the store is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import bundle_smoke
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


def mwaa_python(airflow: str) -> str:
    """The Python of MWAA's image for an Airflow version, from the one table."""
    for line in (ROOT / "deploy" / "mwaa-python.tsv").read_text().splitlines():
        fields = line.split("\t")
        if fields[0] == airflow:
            return fields[1]
    raise AssertionError(f"Airflow {airflow} is not in deploy/mwaa-python.tsv")


def test_layout_is_what_mwaa_reads(bundle):
    # a folder of logpipe's own under dags/: deploy.sh touches nothing else in a shared bucket
    assert [p.name for p in (bundle / "dags").iterdir()] == ["logpipe"]
    assert sorted(p.name for p in (bundle / "dags" / "logpipe").iterdir()) == ["log_consumer_pipeline.py",
                                                                              "log_generation_pipeline.py",
                                                                              "logpipe_worker_check.py"]
    names = zipfile.ZipFile(bundle / "plugins.zip").namelist()
    assert "logpipe" in names and "logpipe_plugin.py" in names and "logpipe_airflow/operators.py" in names
    assert "logpipe_airflow/platform_check.py" in names
    assert any(n.startswith("lib/librdkafka.so") for n in names)
    assert any(n.startswith("lib/libdeflate.so") for n in names)  # gzip of _bulk bodies: not on MWAA's image
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    req = (bundle / "requirements.txt").read_text()
    assert mwaa_python("3.0.6") == "3.12"  # images/airflow/3.0.6 of aws/amazon-mwaa-docker-images
    assert re.search(r'^--constraint "https://raw\.githubusercontent\.com/apache/airflow/constraints-3\.0\.6/'
                     r'constraints-3\.12\.txt"$', req, re.MULTILINE), req
    # the constraints file pins it: a second pin could contradict it (pip then refuses the file)
    assert re.search(r"^confluent-kafka$", req, re.MULTILINE), req


def test_airflow_version_picks_the_constraints_of_its_python(bundle, tmp_path):
    """`make bundle AIRFLOW_VERSION=...`: the constraints of MWAA's Python for
    that version (the table), and an unknown version refused, naming those known."""
    env = {**os.environ, "AIRFLOW_VERSION": "2.10.3"}
    r = subprocess.run(["bash", str(ROOT / "deploy" / "bundle.sh"), str(tmp_path / "b")], capture_output=True,
                       text=True, env=env, timeout=900, check=False)
    assert r.returncode == 0, r.stderr
    assert mwaa_python("2.10.3") == "3.11" and mwaa_python("2.11.0") == "3.12"
    assert ('--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt"'
            in (tmp_path / "b" / "requirements.txt").read_text())
    r = subprocess.run(["bash", str(ROOT / "deploy" / "bundle.sh"), str(tmp_path / "c")], capture_output=True,
                       text=True, env={**os.environ, "AIRFLOW_VERSION": "2.9.2"}, timeout=60, check=False)
    assert r.returncode == 1 and "AIRFLOW_VERSION=2.9.2 is not an MWAA version" in r.stderr, r.stderr
    known = [line.split("\t")[0] for line in (ROOT / "deploy" / "mwaa-python.tsv").read_text().splitlines()
             if not line.startswith("#")]
    assert f"({' '.join(known)})" in r.stderr and "3.0.6" in known
    assert not (tmp_path / "c").exists()


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
    version = subprocess.run([binary, "consume", "--version"], capture_output=True, text=True, env=env, check=True)
    assert re.search(r"^libmicrohttpd \d", version.stdout, re.MULTILINE), version.stdout
    topic = f"bundle-{unique}"
    create_topic(kafka_admin, topic, partitions=2)
    r = subprocess.run([binary, "produce", "-b", kafka, "-t", topic, "--count", "2000"], capture_output=True,
                       text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([binary, "consume", "-b", kafka, "-t", topic, "-g", f"g-{unique}", "-e", es, "-i", unique,
                        "--until-idle", "2", "--metrics-listen", "127.0.0.1:0"], capture_output=True, text=True, env=env, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "metrics on http://127.0.0.1:" in r.stderr  # the carried libmicrohttpd served
    assert json.loads(r.stdout.splitlines()[-1])["indexed"] == 2000
    assert es_count(es, unique) == 2000


# ---- the bundle where it runs: chroots shaped like the target systems ----------

# Each root has glibc where that system keeps it (found through an
# ld.so.cache, as there), the system's trust store where that system keeps
# it, and nothing of Debian's /usr/lib/ssl or /etc/ssl/certs unless the
# layout is Debian's. The bundle sits where MWAA unpacks plugins.zip.
LAYOUTS = {
    # MWAA's workers: /etc/ssl/certs is a link to /etc/pki/tls/certs, no ca-certificates.crt, no /usr/lib/ssl
    "amazonlinux2023": {
        "libdir": "usr/lib64", "links": {"lib64": "usr/lib64", "lib": "usr/lib", "etc/ssl/certs": "../pki/tls/certs",
                                         "etc/pki/tls/certs/ca-bundle.crt":
                                             "../../../pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                                         "etc/pki/tls/cert.pem": "../ca-trust/extracted/pem/tls-ca-bundle.pem"},
        "store": "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "trusted": "/etc/pki/tls/certs/ca-bundle.crt"},
    "debian": {
        "libdir": "usr/lib/x86_64-linux-gnu", "links": {"lib": "usr/lib", "lib64/ld-linux-x86-64.so.2":
                                                        "../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                                                        "usr/lib/ssl/certs": "../../../etc/ssl/certs",
                                                        "usr/lib/ssl/cert.pem":
                                                            "../../../etc/ssl/certs/ca-certificates.crt",
                                                        "usr/lib/ssl/openssl.cnf": "../../../etc/ssl/openssl.cnf"},
        "store": "etc/ssl/certs/ca-certificates.crt", "trusted": "/etc/ssl/certs/ca-certificates.crt"},
    # Alpine's CA layout (/etc/ssl/cert.pem); a real Alpine has musl, where this glibc binary needs gcompat
    "alpine": {
        "libdir": "lib", "links": {"lib64/ld-linux-x86-64.so.2": "../lib/ld-linux-x86-64.so.2"},
        "store": "etc/ssl/cert.pem", "trusted": "/etc/ssl/cert.pem"},
}
PLUGINS = "usr/local/airflow/plugins"


def glibc_of(binary: Path) -> list[Path]:
    """The glibc libraries the bundle's binary loads (it carries all others)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    found = [Path(p) for name, p in re.findall(r"^\s*(\S+) => (/\S+)", out, re.MULTILINE) if GLIBC.match(name)]
    return [*found, Path("/lib64/ld-linux-x86-64.so.2")]


def make_root(root: Path, layout: dict, unpacked: Path) -> None:
    shutil.copytree(unpacked, root / PLUGINS)
    libdir = root / layout["libdir"]
    libdir.mkdir(parents=True)
    for lib in glibc_of(unpacked / "logpipe"):
        shutil.copy(lib.resolve(), libdir / lib.name)
    for link, target in layout["links"].items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.conf").write_text(f"/{layout['libdir']}\n")
    subprocess.run(["ldconfig", "-r", str(root)], check=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    store = root / layout["store"]
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes((ROOT / ".stack" / "tls" / "ca.pem").read_bytes())
    if "usr/lib/ssl/openssl.cnf" in layout["links"]:
        (root / "etc" / "ssl" / "openssl.cnf").write_bytes(Path("/etc/ssl/openssl.cnf").read_bytes())


def in_root(root: Path, program: str) -> list[str]:
    """A command running program inside root, in a mount namespace of its own
    (gone with the process) where /proc and /dev are mounted as on any Linux:
    ld.so finds $ORIGIN, the bundle's RPATH, through /proc/self/exe."""
    for d in ("proc", "dev"):
        (root / d).mkdir(exist_ok=True)
    script = 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"'
    return [shutil.which("unshare") or "/usr/bin/unshare", "--mount", "--propagation", "private",
            "/bin/sh", "-c", f"PATH=/usr/sbin:/usr/bin:/sbin:/bin; {script}", str(root), program]


@pytest.mark.parametrize("system", sorted(LAYOUTS))
def test_bundle_in_a_foreign_root_trusts_that_systems_store(system, unpacked, stack, tmp_path):
    """Amazon Linux 2023 (MWAA's workers), Debian and Alpine layouts: the
    stack's CA is only in that system's bundle, the secret has no CA, no
    variable names one. Secrets Manager over https, Kafka over SASL_SSL and
    Elasticsearch over https must all verify; without the bundle: exit 2
    naming the paths tried and the setting to use."""
    layout = LAYOUTS[system]
    root = tmp_path / "root"
    make_root(root, layout, unpacked)
    settings = bundle_smoke.prepare()
    command = in_root(root, f"/{PLUGINS}/logpipe")
    bundle_smoke.run(command, settings, trusted=layout["trusted"], cafile=str(ROOT / ".stack" / "tls" / "ca.pem"))

    (root / layout["store"]).unlink()  # the system has no CA bundle at all
    r = bundle_smoke.logpipe(command, settings, "produce", "--secrets", "aws-sm://" + settings["secret"],
                             "-t", settings["topic"], "--count", "1")
    assert r.returncode == 2, r.stderr
    assert "no CA certificates to verify it with" in r.stderr, r.stderr
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
                 "/etc/ssl/ca-bundle.pem"):
        assert path in r.stderr, r.stderr
    assert "SSL_CERT_FILE" in r.stderr and "AWS_CA_BUNDLE" in r.stderr, r.stderr
