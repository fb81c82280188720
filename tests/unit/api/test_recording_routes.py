"""The record of estimates in the API, in process: readiness says "degraded" (a 200) while
recording is delayed, without hiding any reason to be unready; GET /v1/estimates needs a key,
refuses a malformed id, and answers 503 when PostgreSQL cannot be reached (a real engine on a
port nobody listens on)."""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass

import pytest
from fake_keys import bearer
from fastapi.testclient import TestClient

from api.deps import Services
from api.main import create_app
from shared.records.database import async_engine
from shared.settings import Settings
from shared.tools.procs import free_port
from shared.wire.api_keys import Role

DELAYED = "recording delayed: PostgreSQL is unreachable; 12 estimates wait in Redis"


@dataclass
class FakeRecording:
    reason: str | None = None

    async def delayed(self) -> str | None:
        return self.reason


@pytest.fixture
def app_with(fakes, tmp_path) -> Callable[..., AbstractContextManager[TestClient]]:
    """A client of the app on the fakes, with this recorder state and a real engine on a
    closed port."""

    @contextmanager
    def running(recording: FakeRecording | None) -> Iterator[TestClient]:
        settings = Settings(
            secrets_dir=tmp_path,
            redis_user="api",
            database_url=f"postgresql+psycopg://127.0.0.1:{free_port()}/realty",
            database_timeout_s=1,
            retry_after_s=7,
        )

        @asynccontextmanager
        async def services(built: Settings) -> AsyncIterator[Services]:
            engine = async_engine(built)
            yield Services(settings=built, **vars(fakes), database=engine, recording=recording)
            await engine.dispose()

        with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
            yield client

    return running


def test_delayed_recording_is_a_200_that_says_degraded_and_why(app_with):
    with app_with(FakeRecording(DELAYED)) as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["reason"]) == ("degraded", DELAYED)


def test_without_delay_or_without_a_recorder_it_is_ready(app_with):
    for recording in (FakeRecording(None), None):
        with app_with(recording) as client:
            assert client.get("/health/ready").json()["status"] == "ready"


def test_every_reason_to_be_unready_still_wins_over_degraded(app_with, fakes):
    fakes.versions.workers = 0
    with app_with(FakeRecording(DELAYED)) as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
    assert answer.json()["reason"] == "no worker serves model v2"


def test_a_past_estimate_needs_a_key_and_a_well_formed_id(app_with):
    with app_with(None) as client:
        assert client.get("/v1/estimates/abc").status_code == 401
        malformed = client.get("/v1/estimates/a%20b", headers=bearer(Role.AGENT))
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "request_id"]


def test_an_unreachable_record_is_a_503_that_says_so_without_an_address(app_with):
    with app_with(None) as client:
        answer = client.get("/v1/estimates/abc", headers=bearer(Role.AGENT))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "7"
    assert "PostgreSQL is unreachable" in answer.json()["detail"]
    assert "127.0.0.1" not in answer.text
