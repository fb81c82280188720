"""Trusted bundles on real processes: a bundle edited after training is never loaded, a rollout
to it fails while the active version keeps serving, and a rollout target that is not a version
name starts nothing."""

import json
import os
import pickle
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, running_stack, wait_for

from shared.model.data import sha256_file
from shared.wire import names

pytestmark = pytest.mark.integration

POLL_S = 0.2  # the pool's poll: "a few polls" stay short


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory, two_bundles: Path) -> Iterator[Stack]:
    """v1 active, served by one worker pool, in a model directory of the module's own (the
    session's `two_bundles` stay as they are)."""
    workdir = tmp_path_factory.mktemp("trusted")
    model_dir = workdir / "models"
    shutil.copytree(two_bundles / "v1", model_dir / "v1")
    with running_stack(
        workdir, workers=0, pools=("pool1",), active="v1", model_dir=model_dir, pool_poll_s=POLL_S
    ) as stack:
        yield stack


class RunsAShellCommand:
    """Unpickling it runs `command`."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def plant_malicious_bundle(model_dir: Path, marker: Path) -> None:
    """v3: a copy of v1 whose manifest no longer lists `model.json` but lists a pickle, with its
    right checksum, that creates `marker` when loaded; the signature left as v1's was."""
    shutil.copytree(model_dir / "v1", model_dir / "v3")
    payload = model_dir / "v3" / "model.joblib"
    payload.write_bytes(pickle.dumps(RunsAShellCommand(f"touch {shlex.quote(str(marker))}")))
    manifest = json.loads((model_dir / "v3" / "manifest.json").read_text())
    del manifest["files"]["model.json"]
    manifest["files"]["model.joblib"] = sha256_file(payload)
    manifest["version"] = "v3"
    (model_dir / "v3" / "manifest.json").write_text(json.dumps(manifest, indent=2))


def predicted_by(stack: Stack, house: dict[str, Any]) -> str:
    answer = stack.http.post(f"{stack.api_url}/v1/predict", json=house, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["model_version"]


def worker_command_lines() -> list[list[str]]:
    """The argv of every `python -m worker …` process on this machine."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # exited meanwhile
            continue
        if "worker" in argv and "-m" in argv:
            found.append(argv)
    return found


def test_a_rollout_to_an_edited_bundle_fails_runs_nothing_and_the_old_version_serves(
    trusted: Stack, house: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    plant_malicious_bundle(Path(trusted.env["REALTY_MODEL_DIR"]), marker)

    run = trusted.realty("rollout", "v3", rollout_warm_timeout_s="8")

    assert run.returncode != 0, run.stdout + run.stderr
    assert "v3 did not become warm" in run.stderr
    pool_log = trusted.workers[0].log_path.read_text()
    assert "worker not started: bundle v3 refused: its manifest.json does not match" in pool_log
    assert not marker.exists()
    assert trusted.redis_client().get(names.ACTIVE_VERSION) == "v1"
    assert trusted.nodes("v3") == []
    assert predicted_by(trusted, house) == "v1"


def test_a_rollout_target_that_is_not_a_version_name_starts_nothing(
    trusted: Stack, house: dict[str, Any]
) -> None:
    pool = trusted.workers[0]
    client = trusted.redis_client()
    client.set(names.ROLLOUT_TARGET, "../../x")
    try:
        wait_for(
            lambda: "ignoring realty:rollout_target: '../../x'" in pool.log_path.read_text(),
            10,
            "the pool's log line",
        )
        time.sleep(5 * POLL_S)  # a few more polls
        assert pool.log_path.read_text().count("ignoring realty:rollout_target") == 1
        assert "starting worker for ../../x" not in pool.log_path.read_text()
        assert not [argv for argv in worker_command_lines() if "../../x" in argv]
        assert [argv for argv in worker_command_lines() if "v1" in argv]  # the check sees some
    finally:
        client.delete(names.ROLLOUT_TARGET)
    assert predicted_by(trusted, house) == "v1"
