"""A worker starts only for a version name whose bundle carries this key's signature
(`python -m worker`), and a worker pool starts none for a pointer in Redis that is not a
version name (`worker.pool`)."""

import logging
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.model.signing import KEY_FILE
from shared.settings import Settings
from shared.wire import names
from worker.pool import WorkerPool

REPO = Path(__file__).resolve().parents[3]
NOT_VERSIONS = ["../../x", "v1/../v2", "V1", "v", "v1 "]


def worker(args: list[str], **settings: str) -> subprocess.CompletedProcess:
    """`python -m worker ARGS` with only the given REALTY_ settings; Redis on port 1, where
    nothing listens, since none of these may get as far as Celery."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
    env["REALTY_REDIS_URL"] = "redis://127.0.0.1:1/0"
    env |= {f"REALTY_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", NOT_VERSIONS)
def test_a_worker_refuses_a_model_that_is_not_a_version_name(tmp_path: Path, name: str) -> None:
    run = worker(["--model", name], model_dir=str(tmp_path), secrets_dir=str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "worker not started:" in run.stderr and "is not a version name" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def signed(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A model directory with the session's baseline bundle, and its version."""
    settings, manifest = trained
    model_dir = tmp_path_factory.mktemp("signed-models")
    shutil.copytree(settings.model_dir / manifest.version, model_dir / manifest.version)
    return model_dir, manifest.version


@pytest.mark.parametrize(
    ("key", "refusal"),
    [
        ("none", "no bundle signing key: set REALTY_BUNDLE_SIGNING_KEY"),
        ("another", "does not match its signature"),
    ],
)
def test_a_worker_refuses_at_start_a_bundle_this_key_did_not_sign(
    signed: tuple[Path, str], tmp_path: Path, key: str, refusal: str
) -> None:
    """Before Celery starts: no node is advertised, so a rollout to it never becomes warm."""
    model_dir, version = signed
    settings = {"model_dir": str(model_dir), "secrets_dir": str(tmp_path / "secrets")}
    if key == "another":
        settings["bundle_signing_key"] = secrets.token_urlsafe(32)
    run = worker(["--model", version], **settings)
    assert run.returncode == 1, run.stdout + run.stderr
    assert refusal in run.stderr
    assert not (tmp_path / "secrets" / KEY_FILE).exists()  # a worker never makes a key up


class FakeRedis:
    def __init__(self, active: str | None, target: str | None) -> None:
        self.pointers = {names.ACTIVE_VERSION: active, names.ROLLOUT_TARGET: target}

    def mget(self, *keys: str) -> list[str | None]:
        return [self.pointers[key] for key in keys]


@pytest.mark.parametrize("name", NOT_VERSIONS)
def test_a_pool_ignores_a_pointer_that_is_not_a_version_name_and_says_so_once(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = WorkerPool(Settings(model_dir=tmp_path), concurrency=1, name="n")
    pool.redis = FakeRedis(active="v1", target=name)  # type: ignore[assignment]
    started: list[str] = []
    monkeypatch.setattr(pool, "start", started.append)
    with caplog.at_level(logging.WARNING, logger="worker.pool"):
        for _ in range(3):  # three polls
            pool.step()
    assert set(started) == {"v1"}  # (the fake start leaves no child, so v1 is asked again)
    ignored = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(ignored) == 1
    assert names.ROLLOUT_TARGET in ignored[0] and "is not a version name" in ignored[0]


def test_a_pool_with_only_a_bad_active_pointer_starts_nothing(signed: tuple[Path, str]) -> None:
    """Not even the newest bundle on disk: that fallback is for a fresh system, not this."""
    model_dir, version = signed
    pool = WorkerPool(Settings(model_dir=model_dir), concurrency=1, name="n")
    pool.redis = FakeRedis(active=None, target=None)  # type: ignore[assignment]
    assert pool.wanted() == {version}
    pool.redis = FakeRedis(active="../../x", target=None)  # type: ignore[assignment]
    assert pool.wanted() == set()
