"""The directory a service's processes share their metrics in (shared/multiprocess_metrics.py):
fresh at each start, handed down in the environment, removed at exit, and what a parent that
died left behind removed at the next start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import multiprocess_metrics
from shared.multiprocess_metrics import ENV, shared_directory

ROLE = "unit-test"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_start_gets_a_fresh_directory_that_its_children_inherit():
    with shared_directory(ROLE) as path:
        assert os.environ[ENV] == str(path) and not any(path.iterdir())
        inherited = subprocess.run(
            [sys.executable, "-c", f"import os; print(os.environ['{ENV}'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert inherited == str(path)
        assert path.parent == multiprocess_metrics._base()
    assert not path.exists() and ENV not in os.environ


def test_what_a_dead_parent_left_is_removed_and_a_live_one_s_kept():
    base = multiprocess_metrics._base()
    prefix = f"realty-{ROLE}-metrics-"
    left = base / f"{prefix}{dead_pid()}-abc"
    alive = base / f"{prefix}{os.getppid()}-def"  # pytest's parent runs
    for path in (left, alive):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"\0" * 8)
    try:
        with shared_directory(ROLE):
            assert not left.exists()
            assert alive.exists()
    finally:
        for path in (left, alive):
            if path.exists():
                (path / "counter_1.db").unlink()
                path.rmdir()


def test_the_directory_is_in_memory_where_there_is_shared_memory():
    if not (Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK)):
        pytest.skip("no writable /dev/shm here")
    assert multiprocess_metrics._base() == Path("/dev/shm")
