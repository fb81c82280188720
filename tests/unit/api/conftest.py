"""The API in process, on fakes of the collaborators it is built from (`api.deps.Services`):
routes, validation and error answers without Redis or workers. The same routes on real
processes are tested in tests/integration."""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fake_keys import KEYS, bearer
from fake_manifest import manifest
from fastapi.testclient import TestClient

from api.auth import Caller
from api.deps import Services
from api.errors import NotFoundError, UnauthorizedError, VersionNotServedError
from api.job_store import BatchJob
from api.main import create_app
from api.predictions import DEFAULT_OPTIONS, Options
from shared.model.manifest import Manifest
from shared.settings import Settings
from shared.wire.api_keys import Role
from shared.wire.messages import AnyReply, EstimateReply, PriceRange


@dataclass
class FakeVersions:
    """Version v2 active with `workers` live workers."""

    workers: int = 2
    active_version: str | None = "v2"
    fail: Exception | None = None  # raised by every call, e.g. a Redis ConnectionError
    activated: list[str] = field(default_factory=list)
    persistent: bool = True  # Redis's AOF on

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def ping(self) -> None:
        self._maybe_fail()

    async def durable(self) -> bool:
        return self.persistent

    async def active(self) -> str | None:
        self._maybe_fail()
        return self.active_version

    async def known(self) -> list[str]:
        return ["v2"]

    async def live_workers(self, version: str) -> int:
        self._maybe_fail()
        return self.workers

    async def queue_depths(self, version: str) -> dict[str, int]:
        return {"predict": 0, "batch": 3, "requests": 1}

    async def queue_limit(self, version: str) -> int:
        return 64

    async def manifest(self, version: str) -> Manifest:
        return manifest(version)

    async def serving(self, pinned: str | None, caller: Caller) -> Manifest:
        self._maybe_fail()
        return manifest(pinned or "v2")

    async def activate(self, version: str, actor: str) -> str | None:
        if self.workers == 0:
            raise VersionNotServedError(f"no warm worker serves {version}")
        self.activated.append(version)
        return "v1"


def estimate_reply(request_id: str = "abc") -> EstimateReply:
    return EstimateReply(
        request_id=request_id,
        prediction=352937.55,
        model_version="v2",
        model_kind="gbm",
        batch_size=3,
        interval_80=PriceRange(low=296744.48, high=419771.63),
    )


@dataclass
class FakePredictions:
    """Answers every house with `reply`, or raises `fail`; records what it was asked."""

    reply: AnyReply = field(default_factory=estimate_reply)
    fail: Exception | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)

    async def predict(
        self,
        house: dict[str, Any],
        caller: Caller,
        options: Options = DEFAULT_OPTIONS,
        variant: str = "full",
        request_id: str | None = None,
    ):
        self.asked.append(
            {
                "request_id": request_id,
                "house": house,
                "caller": caller.name,
                "pinned": options.pinned,
                "variant": variant,
                "explain": options.explain,
                "as_of": options.as_of,
                "comps": options.comps,
            }
        )
        if self.fail is not None:
            raise self.fail
        return manifest(), self.reply


@dataclass
class FakeBatchJobs:
    submitted: list[list[dict[str, Any]]] = field(default_factory=list)
    statuses: dict[str, BatchJob] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    options: list[tuple[str | None, int]] = field(default_factory=list)  # (as_of, comps) each

    async def submit(
        self, rows, version: str, caller: Caller, as_of: str | None = None, comps: int = 0
    ) -> str:
        self.submitted.append(list(rows))
        self.options.append((as_of, comps))
        job_id = f"job{len(self.submitted)}"
        self.owners[job_id] = caller.name
        return job_id

    async def status(self, job_id: str, caller: Caller) -> BatchJob:
        if job_id not in self.statuses:
            raise NotFoundError(f"no batch job {job_id!r}")
        return self.statuses[job_id]


@dataclass
class FakeInbox:
    reading: bool = True


@dataclass
class FakeAuthenticator:
    def cached(self, key: str) -> Caller | None:
        return KEYS.get(key)

    async def caller(self, key: str | None) -> Caller:
        if key not in KEYS:
            raise UnauthorizedError("the API key is wrong or has been revoked")
        return KEYS[key]


@dataclass
class Fakes:
    versions: FakeVersions = field(default_factory=FakeVersions)
    predictions: FakePredictions = field(default_factory=FakePredictions)
    batch_jobs: FakeBatchJobs = field(default_factory=FakeBatchJobs)
    inbox: FakeInbox = field(default_factory=FakeInbox)
    authenticator: FakeAuthenticator = field(default_factory=FakeAuthenticator)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def settings() -> Settings:
    return Settings(max_batch_rows=150, retry_after_s=7)


@pytest.fixture
def app_on(fakes: Fakes) -> Callable[[Settings], AbstractContextManager[TestClient]]:
    """A client of the app built with `settings` on the fakes, for tests that need their own."""

    @asynccontextmanager
    async def services(built_settings: Settings) -> AsyncIterator[Services]:
        yield Services(settings=built_settings, **vars(fakes))  # type: ignore[arg-type]

    @contextmanager
    def running(settings: Settings) -> Iterator[TestClient]:
        app = create_app(settings, services)
        with TestClient(app, raise_server_exceptions=False) as test_client:
            test_client.headers.update(bearer(Role.BATCH))
            yield test_client

    return running


@pytest.fixture
def client(app_on, settings: Settings) -> Iterator[TestClient]:
    with app_on(settings) as test_client:
        yield test_client
