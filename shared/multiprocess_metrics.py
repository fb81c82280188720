"""One set of metrics for a service made of several processes: prometheus-client's multiprocess
mode, for the API (`python -m api --workers N`: uvicorn processes sharing one socket) and for a
worker pool (Celery's pool processes, which have no port at all).

Why this mode: a scrape of the API's port reaches one uvicorn process at random, and the pool's
Celery processes serve nothing, so per-process registries would show Prometheus a different
process's numbers at each scrape (counters jumping back and forth, rates meaningless). A `pid`
label per process would not help either: a scrape still reaches one process, and every restart
would start new series. In multiprocess mode each process writes its values into small memory-
mapped files of its own in PROMETHEUS_MULTIPROC_DIR, and whichever process answers a scrape
adds up the files of all of them: one registry, whatever process answers.

The directory is made fresh by the parent of those processes (`python -m api`, the worker pool)
at each start, before any of them imports prometheus_client (which picks its mode on import),
handed down in the environment and removed at exit; a directory left by a parent that died
without removing it is removed at the next start. It is made in /dev/shm where there is one:
memory, so the processes' writes never reach a disk.

Only counters and histograms live in these files. The files of a process that exited keep
counting, as they must: a uvicorn or Celery process replaced must not take its counts back
(`rate()` would read a reset and lose them). prometheus-client's `mark_process_dead` only
discards the files of live gauges, which none of the processes keeps, so it is not called;
gauges (queue depths, live workers) are read from Redis at each scrape instead.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# No prometheus_client import here: it must first be imported after the directory is set.
ENV = "PROMETHEUS_MULTIPROC_DIR"
SHARED_MEMORY = Path("/dev/shm")


def _base() -> Path:
    if SHARED_MEMORY.is_dir() and os.access(SHARED_MEMORY, os.W_OK | os.X_OK):
        return SHARED_MEMORY
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def _remove_stale(base: Path, prefix: str) -> None:
    """Directories of `prefix` whose parent (the pid in their name) is gone, if they are ours."""
    for entry in base.glob(f"{prefix}*-*"):
        pid = entry.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and entry.stat().st_uid == os.getuid():
            shutil.rmtree(entry, ignore_errors=True)


def fresh_directory(role: str) -> Path:
    """A new, empty directory for the processes this one starts from now on (set in this
    process's environment, which its children inherit)."""
    base = _base()
    prefix = f"realty-{role}-metrics-"
    _remove_stale(base, prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    os.environ[ENV] = str(path)
    return path


@contextmanager
def shared_directory(role: str) -> Iterator[Path]:
    """`fresh_directory`, removed when the block (the service) ends."""
    path = fresh_directory(role)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if os.environ.get(ENV) == str(path):
            del os.environ[ENV]
