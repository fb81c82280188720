"""FastAPI dependencies: each route asks for the one collaborator it uses, built once per
process by `api.main.create_app` and kept in `app.state.services`.

All are `async def` although none awaits: FastAPI runs a plain `def` dependency in a thread
pool, and two thread hops per request were 14 % of the API's CPU under load (py-spy). The
prediction routes take none: they read `services_of(request)` (api/routes/predict.py says why)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import Authenticator
from api.batches import BatchJobs
from api.errors import ServiceUnavailableError
from api.inbox import ReplyInbox
from api.predictions import Predictions
from api.versions import ServedVersions
from shared.records.status import RecordingStatus
from shared.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything the routes use, for one API process."""

    settings: Settings
    versions: ServedVersions
    predictions: Predictions
    batch_jobs: BatchJobs
    inbox: ReplyInbox
    authenticator: Authenticator
    # The record of estimates (shared/records): PostgreSQL, and the recorder's state in Redis.
    # None where an app is built without them (the route answers 503, readiness says nothing).
    database: AsyncEngine | None = None
    recording: RecordingStatus | None = None


def services_of(request: Request) -> Services:
    return request.app.state.services


async def app_settings(request: Request) -> Settings:
    return services_of(request).settings


async def served_versions(request: Request) -> ServedVersions:
    return services_of(request).versions


async def batch_jobs(request: Request) -> BatchJobs:
    return services_of(request).batch_jobs


async def reply_inbox(request: Request) -> ReplyInbox:
    return services_of(request).inbox


async def database(request: Request) -> AsyncEngine:
    engine = services_of(request).database
    if engine is None:
        raise ServiceUnavailableError("this API process has no record of estimates (PostgreSQL)")
    return engine


async def recording_status(request: Request) -> RecordingStatus | None:
    return services_of(request).recording


SettingsDep = Annotated[Settings, Depends(app_settings)]
VersionsDep = Annotated[ServedVersions, Depends(served_versions)]
BatchJobsDep = Annotated[BatchJobs, Depends(batch_jobs)]
InboxDep = Annotated[ReplyInbox, Depends(reply_inbox)]
DatabaseDep = Annotated[AsyncEngine, Depends(database)]
RecordingDep = Annotated[RecordingStatus | None, Depends(recording_status)]
PinnedVersion = Annotated[
    str | None,
    Header(
        alias="X-Model-Version",
        description="Route this request to a specific model version (409 if none serves it).",
    ),
]
