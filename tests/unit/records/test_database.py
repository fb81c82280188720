"""How a process reaches PostgreSQL: as its own role, with its own password (given, or read
from its file, made there once), never shown; and failures told in words without addresses."""

import stat
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError, ProgrammingError

from shared.records.database import (
    API_ROLE,
    OWNER,
    WORKER_ROLE,
    database_url,
    failure_words,
    password,
    password_file,
    process_user,
)
from shared.settings import Settings

URL = "postgresql+psycopg://127.0.0.1:5432/realty"


def settings(tmp_path: Path, **values: object) -> Settings:
    values = {"database_url": URL} | values
    return Settings(secrets_dir=tmp_path / "secrets", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("redis_user", "role"), [("api", API_ROLE), ("worker", WORKER_ROLE), ("admin", OWNER)]
)
def test_each_process_logs_in_as_the_role_of_its_redis_user(tmp_path, redis_user, role):
    assert process_user(settings(tmp_path, redis_user=redis_user)) == role


def test_a_process_of_no_known_role_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="REALTY_REDIS_USER='flower'"):
        process_user(settings(tmp_path, redis_user="flower"))


def test_a_given_password_completes_the_url_and_no_file_is_made(tmp_path):
    given = settings(tmp_path, redis_user="api", database_password=SecretStr("s3cr"))
    url = database_url(given)
    assert (url.username, url.password) == (API_ROLE, "s3cr")
    assert "s3cr" not in str(url)  # SQLAlchemy masks it wherever the URL is shown
    assert not (tmp_path / "secrets").exists()


def test_without_one_the_role_s_file_is_made_privately_once_and_reused(tmp_path):
    first = database_url(settings(tmp_path, redis_user="worker"))
    path = tmp_path / "secrets" / password_file(WORKER_ROLE)
    assert first.password == path.read_text() and len(first.password) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert database_url(settings(tmp_path, redis_user="worker")).password == first.password


def test_the_owner_sets_the_service_roles_passwords_from_their_own_settings(tmp_path):
    owner = settings(
        tmp_path,
        database_password=SecretStr("owner"),
        database_api_password=SecretStr("api"),
        database_worker_password=SecretStr("worker"),
    )
    assert [password(owner, role) for role in (OWNER, API_ROLE, WORKER_ROLE)] == [
        "owner",
        "api",
        "worker",
    ]


def test_a_url_with_its_own_login_is_used_as_it_is(tmp_path):
    managed = "postgresql+psycopg://app:pw@db.example:5432/realty"
    url = database_url(settings(tmp_path, database_url=managed, redis_user="api"))
    assert (url.username, url.password, url.host) == ("app", "pw", "db.example")


def wrapped(error: Exception, kind: type = ProgrammingError) -> Exception:
    return kind("SELECT 1", {}, error)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (wrapped(psycopg.errors.UndefinedTable()), "tables are missing: run `realty db upgrade`"),
        (wrapped(psycopg.errors.InsufficientPrivilege()), "lacks a privilege"),
        (wrapped(psycopg.errors.QueryCanceled(), OperationalError), "did not answer"),
        (wrapped(psycopg.errors.DiskFull(), OperationalError), "out of a resource"),
        (
            wrapped(
                psycopg.OperationalError(
                    'connection failed: connection to server at "10.0.0.7", port 5432 failed: '
                    "Connection refused"
                ),
                OperationalError,
            ),
            "PostgreSQL is unreachable",
        ),
        (
            wrapped(
                psycopg.OperationalError(
                    'connection to server at "10.0.0.7" failed: FATAL:  password '
                    'authentication failed for user "realty_worker"'
                ),
                OperationalError,
            ),
            "refused the login (wrong password",
        ),
    ],
    ids=["no-tables", "privilege", "timeout", "disk-full", "refused", "wrong-password"],
)
def test_failures_are_told_in_words_without_addresses_or_users(error, words):
    told = failure_words(error)
    assert words in told
    assert "10.0.0.7" not in told and "realty_worker" not in told
