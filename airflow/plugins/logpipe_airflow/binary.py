"""Finding the logpipe binary a task runs.

Order: the Airflow Variable `logpipe_binary` (an explicit override wins),
then the plugins folder (MWAA unpacks plugins.zip, and the binary in it, to
/usr/local/airflow/plugins), then PATH. A zip does not always keep the
execute bit, so a binary that cannot be executed where it lies is copied,
for the one run, into a folder of its own made by mkdtemp (a fresh,
unpredictable name, mode 0700, checked to be ours) and removed afterwards.
A predictable shared folder would let any local user plant a `logpipe` there
first. The bundle's binary finds its shared libraries in lib/ beside it
(RPATH $ORIGIN/lib), so the copy gets a lib link to the original folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from logpipe_airflow.compat import AirflowFailException, get_variable

PLUGINS_DIR = Path(__file__).resolve().parent.parent
VARIABLE = "logpipe_binary"


@contextmanager
def logpipe_binary() -> Iterator[str]:
    """The path of a logpipe this process can execute, for the duration of the block."""
    with _runnable(_find()) as path:
        yield path


def _find() -> Path:
    override = get_variable(VARIABLE)
    if override:
        if not Path(override).is_file():
            raise AirflowFailException(f"Variable {VARIABLE} names {override!r}, which is not a file")
        return Path(override)
    for candidate in (PLUGINS_DIR / "logpipe", PLUGINS_DIR / "bin" / "logpipe"):
        if candidate.is_file():
            return candidate
    on_path = shutil.which("logpipe")
    if on_path:
        return Path(on_path)
    raise AirflowFailException(
        f"logpipe binary not found: looked at the Variable {VARIABLE}, {PLUGINS_DIR}/logpipe, "
        f"{PLUGINS_DIR}/bin/logpipe and PATH")


@contextmanager
def _runnable(path: Path) -> Iterator[str]:
    """`path` itself when it can be executed, else a private copy of it."""
    if os.access(path, os.X_OK):
        yield str(path)
        return
    folder = Path(tempfile.mkdtemp(prefix="logpipe-"))
    try:
        _check_private(folder)
        target = folder / "logpipe"
        # O_EXCL: the file is new, ours, and executable by us alone from the start
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IRWXU)
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            shutil.copyfileobj(src, out)
        libs = path.parent / "lib"
        if libs.is_dir():
            (folder / "lib").symlink_to(libs.resolve(), target_is_directory=True)
        yield str(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_private(folder: Path) -> None:
    """The folder is a real directory, owned by this user, open to no one else."""
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AirflowFailException(
            f"temporary folder {folder} for the logpipe copy is not private (owner uid {st.st_uid}, "
            f"mode {stat.filemode(st.st_mode)}): refusing to run a binary from it")
