"""The API process's request outbox: single predictions waiting to be queued are sent to Redis
together, in one script call per event-loop turn, instead of one round trip each.

Under load an API process has dozens of requests arriving between two Redis calls; a round trip
through redis.asyncio costs more API CPU than the rest of the request's own Redis work, so
coalescing them is what lets one API core feed the model workers. With one request in flight
it costs a single event-loop hop.

Each request's version is read and its request queued inside the one script, so a request
can never land on the old version's list after a flip.
"""

import asyncio

from redis import asyncio as aioredis

from shared.wire import names

# ARGV: pinned version ('' for the active one) and request, pair after pair. Returns, per
# request, the version it was queued for, or false when no version is active. The list name is
# built in the script: fine for one Redis, not for Redis Cluster.
ROUTE_REQUESTS = f"""
local active = redis.call('GET', KEYS[1])
local versions = {{}}
for i = 1, #ARGV, 2 do
  local version = ARGV[i]
  if version == '' then version = active end
  if version then
    redis.call('LPUSH', '{names.requests_list("")}' .. version, ARGV[i + 1])
    versions[#versions + 1] = version
  else
    versions[#versions + 1] = false
  end
end
return versions
"""

_MAX_PER_CALL = 500  # bounds the script's run time: Redis does nothing else meanwhile
_Waiting = tuple[str, str, asyncio.Future[str | None]]


class RequestOutbox:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._route = redis.register_script(ROUTE_REQUESTS)
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None

    async def send(self, request: str, pinned: str | None = None) -> str | None:
        """Queue `request` for `pinned`'s (else the active version's) micro-batchers; the
        version it went to, or None when no version is active (nothing is queued then)."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((pinned or "", request, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        return await future

    async def _send_waiting(self) -> None:
        """One script call for everything waiting, again until nothing waits: while a call is
        in flight, the requests arriving meanwhile gather for the next."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:_MAX_PER_CALL], self._waiting[_MAX_PER_CALL:]
                args = [value for pinned, request, _ in batch for value in (pinned, request)]
                try:
                    versions = await self._route(keys=[names.ACTIVE_VERSION], args=args)
                    results = list(zip(batch, versions, strict=True))
                except Exception as exc:  # every caller of this call gets the error (a 503)
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), version in results:
                    if not future.done():
                        future.set_result(version or None)
        finally:
            self._sender = None
