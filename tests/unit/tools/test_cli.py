"""The `realty` command's expected failures (no data, an unknown version, Redis down) end with one
line naming the problem and exit status 1: a traceback there would read as a bug in realty.

Each case runs the real command in a child process, as a person or `make` does, so the exit
status and exactly what reaches the terminal are what is checked.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.model.bundles import MANIFEST_FILE
from shared.model.signing import SIGNATURE_FILE

REPO = Path(__file__).resolve().parents[3]


def realty(args: list[str], **settings: str) -> subprocess.CompletedProcess:
    """`realty ARGS` with only the given REALTY_ settings, so the developer's own data, bundles
    and Redis are never touched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
    env.pop("FORCE_COLOR", None)
    env |= {f"REALTY_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "shared.tools.cli", *args],
        cwd=REPO,
        env=env | {"NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(run: subprocess.CompletedProcess, *expected: str) -> None:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("realty: ")
    for text in expected:
        assert text in lines[0]


def test_setup_without_the_clients_data_says_which_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "source").mkdir()
    run = realty(
        ["setup"], data_dir=str(tmp_path / "data"), source_data_dir=str(tmp_path / "source")
    )
    assert_one_line_error(run, "kc_house_data.csv is missing", "REALTY_SOURCE_DATA_DIR")


def test_predict_with_an_unknown_version_names_it(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    run = realty(["predict", "x.csv", "--model", "v999"], model_dir=str(tmp_path / "models"))
    assert_one_line_error(run, "no bundle 'v999'")


def test_rollback_without_redis_says_redis_did_not_answer() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    # A password given, so that none is looked up (or generated) in the checkout's .run/secrets.
    run = realty(["rollback"], redis_url="redis://127.0.0.1:1/0", redis_password="unused")
    assert_one_line_error(run, "Redis did not answer", "127.0.0.1:1")


@pytest.mark.parametrize("args", [["--help"], ["rollback", "--help"]])
def test_help_still_exits_0(args: list[str]) -> None:
    run = realty(args)
    assert run.returncode == 0, run.stderr


NOT_VERSIONS = ["../../x", "v1/../v2", "V1", "v", "v1 "]


@pytest.mark.parametrize("name", NOT_VERSIONS)
@pytest.mark.parametrize(
    "command", [["rollout", "{}"], ["drain", "{}"], ["predict", "x.csv", "--model", "{}"]]
)
def test_a_name_that_is_not_a_version_is_refused_before_anything_else(
    tmp_path: Path, command: list[str], name: str
) -> None:
    """Before Redis (nothing listens on port 1: reaching it would say so) or a file."""
    args = [name if arg == "{}" else arg for arg in command]
    run = realty(args, redis_url="redis://127.0.0.1:1/0", model_dir=str(tmp_path))
    assert_one_line_error(run, "is not a version name")


@pytest.fixture
def signed_copy(trained: Any, tmp_path: Path) -> tuple[Path, str]:
    """A model directory of this test's own holding the session's signed baseline bundle."""
    settings, manifest = trained
    shutil.copytree(settings.model_dir / manifest.version, tmp_path / "models" / manifest.version)
    return tmp_path / "models", manifest.version


def test_predict_without_a_signing_key_says_where_it_goes(
    signed_copy: tuple[Path, str], tmp_path: Path
) -> None:
    model_dir, version = signed_copy
    run = realty(
        ["predict", "x.csv", "--model", version],
        model_dir=str(model_dir),
        secrets_dir=str(tmp_path / "no-secrets"),
    )
    assert_one_line_error(run, "no bundle signing key: set REALTY_BUNDLE_SIGNING_KEY")
    assert not (tmp_path / "no-secrets").exists()


def test_predict_with_an_edited_manifest_says_it_is_refused(
    signed_copy: tuple[Path, str], secrets_dir: Path, bundle_key: SecretStr
) -> None:
    model_dir, version = signed_copy
    manifest = model_dir / version / MANIFEST_FILE
    manifest.write_text(manifest.read_text().replace('"kind"', '"kind" ', 1))
    run = realty(
        ["predict", str(REPO / "data" / "future_unseen_examples.csv"), "--model", version],
        model_dir=str(model_dir),
        secrets_dir=str(secrets_dir),
    )
    assert_one_line_error(run, f"bundle {version} refused", "does not match its signature")
    assert bundle_key.get_secret_value() not in run.stderr


def test_train_if_missing_replaces_a_bundle_it_would_not_serve(
    signed_copy: tuple[Path, str], secrets_dir: Path, data_dir: Path
) -> None:
    """An unsigned bundle (from before manifests were signed, or after a key change) does not
    count as present: `make train` leaves a bundle behind that the workers serve."""
    model_dir, version = signed_copy
    (model_dir / version / SIGNATURE_FILE).unlink()
    settings = {"model_dir": str(model_dir), "secrets_dir": str(secrets_dir)}
    first = realty(["train", "baseline", "--if-missing"], data_dir=str(data_dir), **settings)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"not serving {version}" in first.stdout and "is not signed" in first.stdout
    assert sorted(p.name for p in model_dir.iterdir()) == [version, "v2"]
    again = realty(["train", "baseline", "--if-missing"], data_dir=str(data_dir), **settings)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "bundle v2 exists, nothing to train" in again.stdout
