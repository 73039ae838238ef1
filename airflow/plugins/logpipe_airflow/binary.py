"""Finding the logpipe binary a task runs.

Order: the Airflow Variable `logpipe_binary` (an explicit override wins),
then the plugins folder (MWAA unpacks plugins.zip, and the binary in it, to
/usr/local/airflow/plugins), then PATH. A zip does not always keep the
execute bit, so a binary that cannot be executed where it lies is copied to
a private temporary folder and made executable there; the bundle's
binary finds its shared libraries in lib/ beside it (RPATH $ORIGIN/lib), so
the copy gets a lib link to the original folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from logpipe_airflow.compat import AirflowFailException, get_variable

PLUGINS_DIR = Path(__file__).resolve().parent.parent
VARIABLE = "logpipe_binary"


def find_logpipe() -> str:
    override = get_variable(VARIABLE)
    if override:
        if not Path(override).is_file():
            raise AirflowFailException(f"Variable {VARIABLE} names {override!r}, which is not a file")
        return _executable(Path(override))
    for candidate in (PLUGINS_DIR / "logpipe", PLUGINS_DIR / "bin" / "logpipe"):
        if candidate.is_file():
            return _executable(candidate)
    on_path = shutil.which("logpipe")
    if on_path:
        return on_path
    raise AirflowFailException(
        f"logpipe binary not found: looked at the Variable {VARIABLE}, {PLUGINS_DIR}/logpipe, "
        f"{PLUGINS_DIR}/bin/logpipe and PATH")


def _executable(path: Path) -> str:
    if os.access(path, os.X_OK):
        return str(path)
    data = path.read_bytes()
    folder = Path(tempfile.gettempdir()) / f"logpipe-{os.getuid()}-{hashlib.sha256(data).hexdigest()[:16]}"
    target = folder / "logpipe"
    if not os.access(target, os.X_OK):
        folder.mkdir(mode=0o700, exist_ok=True)
        tmp = folder / f".logpipe.{os.getpid()}"
        tmp.write_bytes(data)
        tmp.chmod(stat.S_IRWXU)
        tmp.replace(target)  # atomic: concurrent tasks never run a half-written copy
    libs = path.parent / "lib"
    link = folder / "lib"
    if libs.is_dir() and not (link.is_symlink() and link.resolve() == libs.resolve()):
        tmp_link = folder / f".lib.{os.getpid()}"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(libs.resolve(), target_is_directory=True)
        tmp_link.replace(link)  # atomic, and replaces a link left by an older unpacking
    return str(target)
