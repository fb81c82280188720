"""Integration fixtures: a whole service on real processes, shared by the tests of a session."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from postgres import Postgres
from sqlalchemy import Engine
from stack import REPO, Stack, bundle_key_env, running_stack

# Small limits so that the 413 and chunking behaviour is exercised with small payloads.
SESSION_SETTINGS = {
    "batch_chunk_rows": 30,
    "max_body_bytes": 2_000_000,
    "max_batch_rows": 5_000,
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("stack"), workers=1, concurrency=2, **SESSION_SETTINGS
    ) as running:
        yield running


@pytest.fixture
def redis_stack(tmp_path: Path) -> Iterator[Stack]:
    """Only a redis-server of its own, for tests of one side of the path to the workers."""
    running = Stack(workdir=tmp_path, env={})
    try:
        running.start_redis()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL of the module's own (the record of estimates), migrated; give a stack
    `**postgres.stack_settings()` to record into it."""
    server = Postgres(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        server.migrate()
        yield server
    except BaseException:
        print(server.log_tail())
        raise
    finally:
        server.stop()


@pytest.fixture(scope="module")
def owner(postgres: Postgres) -> Iterator[Engine]:
    """An engine on the module's PostgreSQL as the record's owner (what migrations run as)."""
    engine = postgres.engine("owner")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[requests.Session]:
    """An HTTP session with the stack's admin key whose relative URLs go to the stack's API."""

    class Session(requests.Session):
        def request(self, method: str, url: str, *args, **kwargs):  # type: ignore[override]
            kwargs.setdefault("timeout", 30)
            url = stack.api_url + url if url.startswith("/") else url
            return super().request(method, url, *args, **kwargs)

    with Session() as session:
        session.headers["Authorization"] = f"Bearer {stack.admin_key}"
        yield session


@pytest.fixture(scope="session")
def two_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory of its own holding two baseline bundles, v1 and v2, for rollouts."""
    model_dir = tmp_path_factory.mktemp("models")
    env = os.environ | {"REALTY_MODEL_DIR": str(model_dir), "REALTY_DATA_DIR": str(REPO / "data")}
    env |= bundle_key_env()  # signed with the key the stacks' workers verify with
    for _ in range(2):
        command = [sys.executable, "-m", "shared.tools.cli", "train", "baseline"]
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith("v")) == ["v1", "v2"]
    return model_dir
