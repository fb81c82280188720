"""The one way every process builds its Redis client, so timeouts and decoding agree.

Every client decodes replies to text and has both a connect and a read timeout: a Redis that
stalls becomes a prompt error (the API's 503) instead of a hung process. Every client logs in as
the process's Redis user (`shared.wire.redis_auth`).
"""

import redis
from redis import asyncio as aioredis

from shared.settings import Settings
from shared.wire.redis_auth import authenticated_url


def _options(settings: Settings, read_timeout_s: float | None) -> dict[str, object]:
    return {
        "decode_responses": True,
        "socket_connect_timeout": settings.redis_socket_timeout_s,
        "socket_timeout": read_timeout_s or settings.redis_socket_timeout_s,
    }


def sync_client(settings: Settings, *, read_timeout_s: float | None = None) -> redis.Redis:
    """`read_timeout_s`: for a client that blocks (BRPOP, BLPOP), longer than its block."""
    return redis.Redis.from_url(authenticated_url(settings), **_options(settings, read_timeout_s))


def async_client(
    settings: Settings, *, read_timeout_s: float | None = None, max_connections: int = 4096
) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        authenticated_url(settings),
        max_connections=max_connections,
        **_options(settings, read_timeout_s),
    )
