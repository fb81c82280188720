"""The API application factory: `uvicorn --factory api.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis import asyncio as aioredis

from api.dispatch import Dispatcher
from api.errors import install_error_handlers
from api.inbox import READ_BLOCK_S, ReplyInbox
from api.outbox import RequestOutbox
from api.routes import batch, health, metrics, models, predict
from shared.celery_app import make_celery
from shared.settings import Settings, get_settings

DESCRIPTION = """
House-price estimates for Sound Realty. Send a house, get an estimated sale price in USD and the
model version that produced it. Estimates are computed by model workers behind a queue.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def client(read_timeout: float) -> aioredis.Redis:
            return aioredis.Redis.from_url(
                settings.redis_url,
                decode_responses=True,
                socket_connect_timeout=settings.redis_socket_timeout_s,
                socket_timeout=read_timeout,
                max_connections=4096,
            )

        # Two pools: quick commands fail fast when Redis stalls (a prompt 503), while the reply
        # inbox's blocking read waits up to READ_BLOCK_S at a time.
        redis = client(settings.redis_socket_timeout_s)
        replies = client(READ_BLOCK_S + settings.redis_socket_timeout_s)
        inbox = ReplyInbox(replies)
        inbox.start()
        celery = make_celery(settings)
        app.state.settings = settings
        app.state.dispatcher = Dispatcher(celery, redis, RequestOutbox(redis), inbox, settings)
        yield
        await inbox.stop()
        await redis.aclose()
        await replies.aclose()
        celery.close()

    app = FastAPI(
        title="Sound Realty price estimates",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Enforced while the body streams in, declared length or not: 413 past the limit.
        max_body_size=settings.max_body_bytes,
    )
    install_error_handlers(app, settings)
    for module in (predict, batch, models, health, metrics):
        app.include_router(module.router)
    return app
