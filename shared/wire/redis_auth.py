"""Who may do what in Redis, and how each process proves who it is.

Redis runs with one ACL user per role, each with its own generated password, and its `default`
user off: a client that does not log in can run nothing (NOAUTH), not even read a queue. The
API and the workers may not run the commands that wipe, dump or reconfigure Redis
(`-@dangerous` but INFO: FLUSHALL, FLUSHDB, CONFIG, KEYS, SHUTDOWN, DEBUG, ACL, MONITOR, …),
so a process taken over can do no more than the service's own work. `admin` is the
operator's `realty` (and `redis-cli`): everything.

docker-compose.yml repeats these rules on redis-server's command line, compose being unable to
run Python; tests/integration/test_locked_redis.py runs that command line and checks that both
define the same users.
"""

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from shared.secrets import read_or_create
from shared.settings import Settings

# The `default` user is the one a connection gets before AUTH: off, without password or rights.
DEFAULT_USER_RULES = "off resetpass -@all"
# Every key and channel (Celery's queues and pub/sub broadcasts); the roles differ in commands.
# INFO is @dangerous only for what it tells; liveness needs its uptime (shared/wire/liveness.py).
SERVICE_RULES = "~* &* +@all -@dangerous +info"
USERS: dict[str, str] = {"api": SERVICE_RULES, "worker": SERVICE_RULES, "admin": "~* &* +@all"}


def password_file(user: str) -> str:
    """The name of `user`'s password file in `Settings.secrets_dir`."""
    return f"redis-{user}-password"


def _read_or_create_password(secrets_dir: Path, user: str) -> str:
    password = read_or_create(secrets_dir, password_file(user), create=True)
    assert password is not None  # create=True always yields one
    return password


def local_passwords(secrets_dir: Path) -> dict[str, str]:
    """Every role's password from `secrets_dir`, generated there on the first start (`make run`'s
    Redis launcher, the integration tests' and the benchmark's own Redis)."""
    return {user: _read_or_create_password(secrets_dir, user) for user in USERS}


def acl_config(passwords: Mapping[str, str]) -> str:
    """redis.conf lines that define the users. Passwords are given as their SHA-256 (`#…`),
    which Redis accepts, so the file itself holds no secret."""
    lines = [f"user default {DEFAULT_USER_RULES}"]
    for user, rules in USERS.items():
        digest = hashlib.sha256(passwords[user].encode()).hexdigest()
        lines.append(f"user {user} on #{digest} {rules}")
    return "\n".join(lines) + "\n"


def write_acl_config(path: Path, passwords: Mapping[str, str]) -> Path:
    """`acl_config` into `path` (mode 0600, replaced atomically): redis-server's first argument.
    Rewritten at every start, so a password file changed for rotation takes effect then."""
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, acl_config(passwords).encode())
    finally:
        os.close(handle)
    os.replace(staging, path)
    return path


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` logging in as `user` with `password` (any credentials it had are replaced)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def authenticated_url(settings: Settings) -> str:
    """The URL every Redis client and Celery connect with: `redis_url` itself when it carries a
    password, else completed with the process's user (the URL's, else `redis_user`) and its
    password (`redis_password`, else the user's file in `secrets_dir`, generated there if the
    process starts before Redis's launcher has). So `realty` beside `make run` needs no flags.

    The result holds the password in clear: pass it to a client, never to a log (Celery and
    kombu print a broker URL with its password masked)."""
    parts = urlsplit(settings.redis_url)
    if parts.password is not None:
        return settings.redis_url
    user = unquote(parts.username) if parts.username else settings.redis_user
    if settings.redis_password is not None:
        password = settings.redis_password.get_secret_value()
    else:
        password = _read_or_create_password(settings.secrets_dir, user)
    return with_credentials(settings.redis_url, user, password)
