"""The bundle signing key (shared/model/signing.py over shared/secrets.py) and the version names
every bundle is verified and loaded by (shared/model/manifest.py `check_version`).

How a signed bundle is refused once edited is in test_bundle_format.py, on real bundles."""

import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.model.bundles import BundleError, load_bundle, verify_bundle
from shared.model.manifest import InvalidVersionError, check_version, version_number
from shared.model.signing import KEY_FILE, SIGNATURE_FILE, signature, signing_key
from shared.settings import Settings

# What the brief names, plus what a looser pattern let through: a trailing newline (`$` of
# re.match) and a non-ASCII digit (`\d`).
NOT_VERSIONS = ["../../x", "v1/../v2", "V1", "v", "v1 ", "", "v1\n", "v\u0661", "/v1"]


def settings(secrets_dir: Path, key: str | None = None) -> Settings:
    return Settings(
        secrets_dir=secrets_dir, bundle_signing_key=SecretStr(key) if key is not None else None
    )


def test_a_missing_key_is_generated_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "run" / "secrets"
    first = signing_key(settings(secrets_dir), create=True)
    assert len(first.get_secret_value()) >= 43
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets_dir / KEY_FILE).stat().st_mode) == 0o600
    assert [p.name for p in secrets_dir.iterdir()] == [KEY_FILE]  # no staging file left
    assert signing_key(settings(secrets_dir), create=True) == first
    assert signing_key(settings(secrets_dir), create=False) == first


def test_without_a_key_a_reader_refuses_and_says_where_one_goes(tmp_path: Path) -> None:
    """Workers and `realty predict` never make a key up: it could only refuse every bundle."""
    with pytest.raises(BundleError, match="no bundle signing key: set REALTY_BUNDLE_SIGNING_KEY"):
        signing_key(settings(tmp_path / "secrets"), create=False)
    assert not (tmp_path / "secrets").exists()


def test_a_key_in_the_environment_wins_and_no_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = secrets.token_urlsafe(32)
    monkeypatch.setenv("REALTY_BUNDLE_SIGNING_KEY", given)
    key = signing_key(Settings(secrets_dir=tmp_path / "secrets"), create=True)
    assert key.get_secret_value() == given
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("short", ["", "correct horse battery staple"])
def test_a_short_key_is_refused_without_being_shown(tmp_path: Path, short: str) -> None:
    with pytest.raises(BundleError, match="shorter than 32 characters") as refused:
        signing_key(settings(tmp_path, short), create=False)
    assert short == "" or short not in str(refused.value)


def test_the_key_is_in_no_bundle_file_refusal_or_settings_repr(
    trained: Any, bundle_key: SecretStr, tmp_path: Path
) -> None:
    trained_settings, manifest = trained
    value = bundle_key.get_secret_value()
    for path in (trained_settings.model_dir / manifest.version).iterdir():
        assert value.encode() not in path.read_bytes(), path.name
    copy = tmp_path / manifest.version
    shutil.copytree(trained_settings.model_dir / manifest.version, copy)
    (copy / SIGNATURE_FILE).write_bytes(signature(SecretStr(secrets.token_urlsafe(32)), b"x"))
    with pytest.raises(BundleError) as refused:
        verify_bundle(tmp_path, manifest.version, key=bundle_key)
    assert value not in str(refused.value) and value not in repr(refused.value)
    assert value not in repr(trained_settings) + str(trained_settings)
    assert value not in repr(settings(tmp_path, value))


@pytest.mark.parametrize("name", ["v1", "v10", "v007"])
def test_version_names_are_v_and_ascii_digits(name: str) -> None:
    assert check_version(name) == name
    assert version_number(name) == int(name[1:])


@pytest.mark.parametrize("name", NOT_VERSIONS)
def test_anything_else_is_not_a_version(name: str) -> None:
    assert version_number(name) is None
    with pytest.raises(InvalidVersionError, match="is not a version name"):
        check_version(name)


def test_a_huge_name_is_refused_quickly_and_shown_shortened() -> None:
    """From Redis, a name can be of any length: refused, not int()-ed (which raises past
    4,300 digits), and not echoed whole."""
    with pytest.raises(InvalidVersionError) as refused:
        check_version("v" + "9" * 10_000 + "x")
    assert len(str(refused.value)) < 120


class _Untouchable:
    """A model directory that fails the test when anything reaches it."""

    def __truediv__(self, other: object) -> Any:
        raise AssertionError(f"the model directory was joined with {other!r}")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the model directory's {name} was used")


@pytest.mark.parametrize("name", NOT_VERSIONS)
def test_verify_and_load_refuse_a_non_version_before_touching_the_file_system(
    name: str, bundle_key: SecretStr
) -> None:
    for entry in (verify_bundle, load_bundle):
        with pytest.raises(InvalidVersionError, match="is not a version name"):
            entry(_Untouchable(), name, key=bundle_key)  # type: ignore[operator,arg-type]


def test_a_valid_bundle_outside_the_model_directory_is_not_reached_by_a_path(
    trained: Any, bundle_key: SecretStr, tmp_path: Path
) -> None:
    """`../../v1` from the model directory names a real, validly signed bundle here: the name
    is refused, not followed."""
    trained_settings, manifest = trained
    shutil.copytree(trained_settings.model_dir / manifest.version, tmp_path / manifest.version)
    model_dir = tmp_path / "models" / "inner"
    model_dir.mkdir(parents=True)
    assert verify_bundle(tmp_path, manifest.version, key=bundle_key).version == manifest.version
    with pytest.raises(InvalidVersionError):
        load_bundle(model_dir, f"../../{manifest.version}", key=bundle_key)
