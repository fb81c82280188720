"""Which worker nodes count as live, judged on Redis's own clock.

Heartbeats are scored with Redis server time (no clock skew between hosts), and a heartbeat
written before Redis last started does not count: the AOF restores it, but it says nothing
about a consumer that still has to reconnect.
"""

from typing import Any

import redis
from redis import asyncio as aioredis

from shared.wire import names


def live_nodes(
    scored: list[tuple[str, float]], server_time: tuple[int, int], info: dict[str, Any], ttl: float
) -> list[str]:
    now = server_time[0] + server_time[1] / 1e6
    # uptime is whole seconds; the extra second keeps a beat from the restart's first second
    since = max(now - ttl, now - int(info["uptime_in_seconds"]) - 1)
    return [node for node, score in scored if score >= since]


def _queue(pipe: Any, version: str) -> None:
    pipe.zrange(names.workers_key(version), 0, -1, withscores=True)
    pipe.time()
    pipe.info("server")


def live_nodes_sync(client: redis.Redis, version: str, ttl: float) -> list[str]:
    with client.pipeline(transaction=False) as pipe:
        _queue(pipe, version)
        return live_nodes(*pipe.execute(), ttl=ttl)


async def live_nodes_async(client: aioredis.Redis, version: str, ttl: float) -> list[str]:
    async with client.pipeline(transaction=False) as pipe:
        _queue(pipe, version)
        return live_nodes(*await pipe.execute(), ttl=ttl)
