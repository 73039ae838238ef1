"""What an Airflow worker is, checked against what the bundled logpipe needs.

MWAA does not say which OS its workers run beyond its documentation (Amazon
Linux 2023 for Airflow 2.10 to 3.x: x86_64, glibc 2.34), and deploy/bundle.sh
builds logpipe for exactly that. The logpipe_worker_check DAG runs this once
on first deploy: it logs `uname -m` and `ldd --version` as the worker prints
them, runs the logpipe the operators would run, and fails, naming the
mismatch, when the worker cannot run it. A failure here, not in the first
real produce, is the point.
"""

from __future__ import annotations

import logging
import re
import subprocess
from typing import Any

from logpipe_airflow.binary import logpipe_binary
from logpipe_airflow.compat import AirflowFailException

log = logging.getLogger(__name__)

MACHINE = "x86_64"


def _run(*argv: str) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if p.returncode != 0:
        raise AirflowFailException(f"`{' '.join(argv)}` failed with exit code {p.returncode}: "
                                   f"{(p.stderr or p.stdout).strip()[:500]}")
    return p.stdout.strip()


def glibc_version(ldd_output: str) -> tuple[int, ...]:
    """The version in `ldd --version`'s first line ("ldd (GNU libc) 2.34",
    "ldd (Debian GLIBC 2.36-9+deb12u13) 2.36")."""
    m = re.search(r"(\d+)\.(\d+)\s*$", ldd_output.splitlines()[0] if ldd_output else "")
    if not m:
        raise AirflowFailException(f"cannot read the glibc version from `ldd --version`: {ldd_output[:200]!r}")
    return int(m.group(1)), int(m.group(2))


def check_worker(glibc_min: str = "2.34") -> dict[str, Any]:
    machine = _run("uname", "-m")
    ldd = _run("ldd", "--version")
    log.info("uname -m: %s", machine)
    log.info("ldd --version: %s", ldd.splitlines()[0])
    if machine != MACHINE:
        raise AirflowFailException(f"this worker is {machine}; the bundled logpipe is built for {MACHINE}")
    have, need = glibc_version(ldd), tuple(int(x) for x in glibc_min.split("."))
    if have < need:
        raise AirflowFailException(f"this worker's glibc is {'.'.join(map(str, have))}; the bundled logpipe "
                                   f"needs {glibc_min} or newer")
    with logpipe_binary() as binary:
        version = _run(binary, "--version")
    log.info("%s: %s", binary, version)
    return {"machine": machine, "glibc": ".".join(map(str, have)), "logpipe": version, "binary": binary}
