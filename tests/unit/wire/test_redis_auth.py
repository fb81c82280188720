"""The Redis URL every process connects with: completed with the process's user and password
when it has none, left alone when it has one, and never shown with the password."""

import logging
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.settings import Settings
from shared.wire.celery_app import make_celery
from shared.wire.redis_auth import (
    USERS,
    acl_config,
    authenticated_url,
    local_passwords,
    password_file,
    with_credentials,
    write_acl_config,
)
from shared.wire.redis_client import async_client, sync_client

URL = "redis://127.0.0.1:6379/0"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(secrets_dir=tmp_path / "secrets", **values)  # type: ignore[arg-type]


def test_the_password_from_the_environment_is_inserted(tmp_path: Path) -> None:
    given = settings(tmp_path, redis_url=URL, redis_user="api", redis_password=SecretStr("s3cr"))
    assert authenticated_url(given) == "redis://api:s3cr@127.0.0.1:6379/0"
    assert not (tmp_path / "secrets").exists()  # a password given is never looked up


def test_without_one_the_users_file_is_read_or_created_and_then_reused(tmp_path: Path) -> None:
    first = authenticated_url(settings(tmp_path, redis_url=URL, redis_user="worker"))
    path = tmp_path / "secrets" / password_file("worker")
    password = path.read_text()
    assert first == f"redis://worker:{password}@127.0.0.1:6379/0"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert authenticated_url(settings(tmp_path, redis_url=URL, redis_user="worker")) == first


def test_the_default_user_is_the_operators(tmp_path: Path) -> None:
    given = settings(tmp_path, redis_url=URL, redis_password=SecretStr("pw"))
    assert authenticated_url(given).startswith("redis://admin:pw@")


def test_a_url_with_a_password_is_left_alone(tmp_path: Path) -> None:
    url = "rediss://someone:given@redis.example:6380/2"
    given = settings(tmp_path, redis_url=url, redis_user="api", redis_password=SecretStr("x"))
    assert authenticated_url(given) == url


def test_a_url_naming_only_a_user_gets_that_users_password(tmp_path: Path) -> None:
    given = settings(tmp_path, redis_url="redis://worker@127.0.0.1:6379/0", redis_user="api")
    url = authenticated_url(given)
    password = (tmp_path / "secrets" / password_file("worker")).read_text()
    assert url == f"redis://worker:{password}@127.0.0.1:6379/0"


def test_characters_of_a_given_password_are_quoted() -> None:
    url = with_credentials("redis://h:1/0", "api", "p@ss:w/rd")
    assert url == "redis://api:p%40ss%3Aw%2Frd@h:1/0"


def test_every_client_logs_in(tmp_path: Path) -> None:
    given = settings(tmp_path, redis_url=URL, redis_user="api", redis_password=SecretStr("pw1"))
    for client in (sync_client(given), async_client(given)):
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"]) == ("api", "pw1")


def test_the_password_is_never_rendered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "never-shown-3f9a"
    given = settings(tmp_path, redis_url=URL, redis_user="api", redis_password=SecretStr(secret))
    app = make_celery(given)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("settings %r, broker %s", given, app.connection().as_uri())
    shown = [
        repr(given),
        str(given),
        repr(sync_client(given)),
        app.connection().as_uri(),  # what Celery's banner and errors print
        app.conf.humanize(with_defaults=False, censored=True),  # `celery report`
        caplog.text,
    ]
    for text in shown:
        assert secret not in text
    assert "api:**@" in app.connection().as_uri()


def test_local_passwords_are_one_per_role_and_kept(tmp_path: Path) -> None:
    passwords = local_passwords(tmp_path / "secrets")
    assert set(passwords) == set(USERS) == {"api", "worker", "admin"}
    assert len(set(passwords.values())) == 3
    assert local_passwords(tmp_path / "secrets") == passwords
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_the_acl_config_holds_hashes_only(tmp_path: Path) -> None:
    passwords = {"api": "a" * 43, "worker": "w" * 43, "admin": "x" * 43}
    text = acl_config(passwords)
    assert text.splitlines()[0] == "user default off resetpass -@all"
    assert "user api on #" in text and "-@dangerous" in text
    assert not any(password in text for password in passwords.values())
    path = write_acl_config(tmp_path / "users.conf", passwords)
    assert path.read_text() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
