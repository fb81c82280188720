"""The API application factory: `python -m api --factory api.main:create_app` (uvicorn)."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from redis import asyncio as aioredis

from api.auth import Authenticator, declare_keys
from api.batches import BatchJobs
from api.deps import Services
from api.errors import install_error_handler
from api.fast_path import HouseFastPath
from api.inbox import READ_BLOCK_S, ReplyInbox
from api.job_store import JobStore
from api.outbox import RequestOutbox
from api.predictions import Predictions
from api.request_context import HOUSE_BODY_BYTES, HOUSE_PATHS, RequestContextApp
from api.routes import batch, estimates, health, metrics, models, page, predict, sales
from api.versions import ServedVersions
from shared.logs import configure_logging
from shared.logs import flush as flush_log_lines
from shared.records.database import async_engine
from shared.records.status import RecordingStatus
from shared.scrape_token import scrape_token
from shared.secrets import read_or_create
from shared.settings import Settings, get_settings
from shared.wire import names
from shared.wire.api_keys import ADMIN_KEY_NAME, Role, new_key, record_of
from shared.wire.celery_app import make_celery
from shared.wire.redis_client import async_client

DESCRIPTION = """
House-price estimates for Sound Realty. Send a house, get an estimated sale price in USD and the
model version that produced it. Estimates are computed by model workers behind a queue.
"""

ServicesFactory = Callable[[Settings], AbstractAsyncContextManager[Services]]


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Services]:
    """The process's collaborators on a real Redis, closed in reverse order at shutdown."""
    # Two pools: quick commands fail fast when Redis stalls (a prompt 503), while the reply
    # inbox's blocking read waits up to READ_BLOCK_S at a time.
    redis = async_client(settings)
    replies = async_client(settings, read_timeout_s=READ_BLOCK_S + settings.redis_socket_timeout_s)
    inbox = ReplyInbox(replies)
    inbox.start()
    celery = make_celery(settings)
    versions = ServedVersions(redis, settings)
    await _register_admin_key(redis, settings)
    scrape_token(settings)  # generated at first start, for Prometheus to be given
    outbox = RequestOutbox(redis, settings)
    await outbox.sync_clock()
    # Connects only when a route needs it: the API starts and predicts without PostgreSQL.
    database = async_engine(settings)
    try:
        yield Services(
            settings=settings,
            versions=versions,
            predictions=Predictions(outbox, inbox, versions, redis, settings),
            batch_jobs=BatchJobs(celery, JobStore(redis, settings), versions, settings),
            inbox=inbox,
            authenticator=Authenticator(redis, settings),
            database=database,
            recording=RecordingStatus(redis, settings),
        )
    finally:
        await inbox.stop()
        await database.dispose()
        await redis.aclose()
        await replies.aclose()
        celery.close()


async def _register_admin_key(redis: aioredis.Redis, settings: Settings) -> None:
    """The first admin key exists from the first start: given (REALTY_ADMIN_KEY) or generated
    into the secrets directory, and registered (as its digest) under the name `admin`."""
    given = settings.admin_key.get_secret_value() if settings.admin_key else None
    key = given or read_or_create(settings.secrets_dir, "admin-key", create=True, make=new_key)
    assert key is not None
    record = record_of(key, ADMIN_KEY_NAME, Role.ADMIN, rate_per_s=0)
    await redis.hset(names.API_KEYS, record.key_id, record.model_dump_json())


def create_app(settings: Settings | None = None, services: ServicesFactory = connect) -> FastAPI:
    """`services` builds the routes' collaborators; tests pass their own."""
    settings = settings or get_settings()
    configure_logging(settings)  # after uvicorn's own set-up, in each of its processes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services(settings) as built:
            app.state.services = built
            yield
        flush_log_lines()  # the last requests' lines (api/access_log.py), before the exit

    app = RequestContextApp(
        title="Sound Realty price estimates",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # No app-wide body limit: the only routes that read a body enforce their own, as it
        # streams in (house routes: below; batches: api.batch_body), each with a JSON 413.
        # Request ids on every answer; house bodies refused past a few houses' size, unread.
        body_limits=dict.fromkeys(HOUSE_PATHS, HOUSE_BODY_BYTES),
        inner=HouseFastPath if settings.api_fast_path else None,
    )
    install_error_handler(app, settings)
    for module in (predict, batch, estimates, sales, models, health, metrics, page):
        app.include_router(module.router)
    declare_keys(app)
    return app
