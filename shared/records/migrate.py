"""`realty db upgrade`: bring the record's schema to the newest revision, as the owner.

Run by `make run` before the worker pool starts and by compose's one-shot `migrate` service.
Several may run at once (replicas started together, an operator beside them): each takes a
PostgreSQL advisory lock first, so one migrates and the others then find nothing to do.

It also creates the service roles (realty_api, realty_worker) and sets their passwords, before
the migrations grant them their privileges. A password is sent as its SCRAM-SHA-256 verifier,
made here: the clear text never reaches the server, nor its log.
"""

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from shared.records.database import API_ROLE, WORKER_ROLE, password, sync_engine
from shared.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number, the same in every process: the key of the migration lock.
MIGRATION_LOCK = 0x7265616C7479  # "realty"
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)
_VERIFIER = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")


def scram_verifier(secret: str, *, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677, as its own
    `pg_authid.rolpassword`): given instead of the password, the server accepts it as is."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, SCRAM_ITERATIONS)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored).decode()}:{b64(server).decode()}"
    )


def ensure_roles(connection: Connection, settings: Settings) -> None:
    """Create the service roles, or set their passwords again (what rotating one takes): login,
    nothing more; their privileges are granted by the migrations."""
    for role in (API_ROLE, WORKER_ROLE):
        verifier = scram_verifier(password(settings, role))
        assert _VERIFIER.fullmatch(verifier)  # nothing but base64 inside the quotes below
        exists = connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        verb = "ALTER" if exists else "CREATE"
        # A utility statement takes no bound parameters: the verifier is written in, past
        # SQLAlchemy's parsing of `:name` (it holds colons).
        connection.exec_driver_sql(f"{verb} ROLE {role} LOGIN PASSWORD '{verifier}'")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _connect_waiting(settings: Settings, wait_s: float) -> Connection:
    engine = sync_engine(settings, "realty-migrate", statement_timeout=False)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return engine.connect()
        except OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def upgrade(settings: Settings, *, wait_s: float = 0.0) -> str | None:
    """Migrate to the newest revision (waiting up to `wait_s` for PostgreSQL to accept
    connections, for a server starting beside it); the revision the database is then at."""
    connection = _connect_waiting(settings, wait_s)
    try:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            with connection.begin():
                ensure_roles(connection, settings)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
            revision = current_revision(connection)
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
    finally:
        connection.close()
        connection.engine.dispose()
    log.info("the record's schema is at revision %s", revision)
    return revision
