"""How every process reaches PostgreSQL: as its own role, with its own password, never logged.

Three roles, least privilege: `realty` owns the schema and migrates it (`realty db upgrade`,
the operator's `realty`); `realty_api` may read estimates and read and add sales;
`realty_worker` may write, read and delete (retention) estimates and read sales. The grants are
in the migrations; the two service roles are created, with their passwords, by
`migrate.upgrade`. A process's role follows its Redis user (the Procfile and docker-compose.yml
name each service's once): api -> realty_api, worker -> realty_worker, admin -> realty.

Passwords come from the environment (`REALTY_DATABASE_PASSWORD`, compose's `.env`) or from the
role's file in `Settings.secrets_dir`, generated there by the first process that needs it
(`make run`), as for Redis (shared/wire/redis_auth.py).
"""

import math
from typing import Any

from pydantic import SecretStr
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.secrets import read_or_create
from shared.settings import Settings

OWNER = "realty"
API_ROLE = "realty_api"
WORKER_ROLE = "realty_worker"
ROLE_OF_REDIS_USER = {"api": API_ROLE, "worker": WORKER_ROLE, "admin": OWNER}


def password_file(user: str) -> str:
    """The name of `user`'s password file in `Settings.secrets_dir`."""
    return f"postgres-{user}-password"


def process_user(settings: Settings) -> str:
    """The role this process logs in as: the URL's user, else its Redis user's role."""
    given = make_url(settings.database_url).username
    if given:
        return given
    try:
        return ROLE_OF_REDIS_USER[settings.redis_user]
    except KeyError:
        raise ValueError(
            f"no database role for REALTY_REDIS_USER={settings.redis_user!r}; "
            f"one of {', '.join(ROLE_OF_REDIS_USER)}"
        ) from None


def password(settings: Settings, user: str) -> str:
    """`user`'s password: the process's own from `database_password`, a service role's from its
    setting (what `realty db upgrade` gives the roles), else the role's file, made if missing."""
    given: SecretStr | None = None
    if user == process_user(settings):
        given = settings.database_password
    given = given or {
        API_ROLE: settings.database_api_password,
        WORKER_ROLE: settings.database_worker_password,
    }.get(user)
    if given is not None:
        return given.get_secret_value()
    value = read_or_create(settings.secrets_dir, password_file(user), create=True)
    assert value is not None  # create=True always yields one
    return value


def database_url(settings: Settings) -> URL:
    """The URL this process connects with: `database_url` as given when it has a password,
    else completed with the process's role and password. Holds the password: give it to an
    engine, never to a log (SQLAlchemy's own str() of a URL masks it)."""
    url = make_url(settings.database_url)
    if url.password is not None:
        return url
    user = process_user(settings)
    return url.set(username=user, password=password(settings, user))


def _connect_args(settings: Settings, application: str, statement_timeout: bool) -> dict[str, Any]:
    """Give up on a PostgreSQL that does not answer, instead of hanging the caller: connecting
    after `database_timeout_s`, a statement after the same (the server cancels it)."""
    args: dict[str, Any] = {
        "connect_timeout": max(1, math.ceil(settings.database_timeout_s)),
        "application_name": application,
    }
    if statement_timeout:
        args["options"] = f"-c statement_timeout={int(settings.database_timeout_s * 1000)}"
    return args


def sync_engine(
    settings: Settings, application: str, *, statement_timeout: bool = True, pool_size: int = 1
) -> Engine:
    """A blocking engine (recorder, `realty`). Pooled connections are checked before use, so a
    restarted PostgreSQL costs one reconnection, not an error. No statement timeout for the
    migrations: building an index on a large table may take minutes."""
    return create_engine(
        database_url(settings),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args=_connect_args(settings, application, statement_timeout),
    )


def async_engine(settings: Settings, application: str = "realty-api") -> AsyncEngine:
    """The API's engine: a few connections per process, made only when a route needs one, so
    an API without a reachable database starts and predicts all the same."""
    return create_async_engine(
        database_url(settings),
        pool_size=5,
        max_overflow=5,
        pool_timeout=settings.database_timeout_s,
        pool_pre_ping=True,
        connect_args=_connect_args(settings, application, statement_timeout=True),
    )


# SQLSTATE classes and codes, in words an operator (and an unauthenticated readiness probe) may
# read: no address, no user, no statement.
_FAILURES = {
    "28P01": "PostgreSQL refused the login (wrong password: run `realty db upgrade`)",
    "28000": "PostgreSQL refused the login (no such role: run `realty db upgrade`)",
    "3D000": "the database does not exist",
    "42P01": "the record's tables are missing: run `realty db upgrade`",
    "42703": "the record's tables are older than this code: run `realty db upgrade`",
    "42501": "a role lacks a privilege on the record: run `realty db upgrade`",
    "57014": "PostgreSQL did not answer within the timeout",
    "57P01": "PostgreSQL is shutting down",
    "57P03": "PostgreSQL is starting up",
}


def failure_words(exc: BaseException) -> str:
    """Why talking to PostgreSQL failed, for the readiness answer and the recorder's state."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(cause, "sqlstate", None)
    if state in _FAILURES:
        return _FAILURES[state]
    if state and state.startswith("53"):
        return "PostgreSQL is out of a resource (disk, memory or connections)"
    # A refused login is told at connection time, in words only (no SQLSTATE reaches libpq).
    text = str(cause)
    if "password authentication failed" in text:
        return _FAILURES["28P01"]
    if "does not exist" in text:
        return _FAILURES["3D000"] if "database" in text else _FAILURES["28000"]
    if state is None and isinstance(exc, SQLAlchemyError | OSError):
        return "PostgreSQL is unreachable"
    return f"PostgreSQL refused the statement (SQLSTATE {state})"
