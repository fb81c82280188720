"""The `realty` command's expected failures (no data, an unknown version, Redis down) end with one
line naming the problem and exit status 1: a traceback there would read as a bug in realty.

Each case runs the real command in a child process, as a person or `make` does, so the exit
status and exactly what reaches the terminal are what is checked.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    run = realty(["rollback"], redis_url="redis://127.0.0.1:1/0")
    assert_one_line_error(run, "Redis did not answer", "127.0.0.1:1")


@pytest.mark.parametrize("args", [["--help"], ["rollback", "--help"]])
def test_help_still_exits_0(args: list[str]) -> None:
    run = realty(args)
    assert run.returncode == 0, run.stderr
