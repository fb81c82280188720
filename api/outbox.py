"""The API process's request outbox: single predictions waiting to be queued are sent to Redis
together, in one script call per event-loop turn, instead of one round trip each.

Under load an API process has dozens of requests arriving between two Redis calls; a round trip
through redis.asyncio costs more API CPU than the rest of the request's own Redis work, so
coalescing them is what lets one API core feed the model workers. With one request in flight
it costs a single event-loop hop.

The same script applies each key's quota and pinning rule and the queue's depth limit, so they
cost a prediction no Redis round trip of its own; and it reads each request's version and queues
it in one step, so a request can never land on the old version's list after a flip.
"""

import asyncio
import time
from dataclasses import dataclass

from redis import asyncio as aioredis

from api.clock import RedisClock
from shared.settings import Settings
from shared.wire import names

# ARGV: the longest queue wait in ms and the smallest depth limit, then six values per request:
# pinned version ('' for the active one), request, key id, '1' when the key may pin an inactive
# version, the key's requests per second (0: no limit) and its burst. Returns Redis's TIME
# (seconds, microseconds), then per request the version queued for, '' when no version is
# active, 'full' when the version's queue is at its depth limit, 'rate:<ms>' when the key must
# wait that long, or 'pin' when the key may not pin that version. A version's depth limit is the
# rate its micro-batchers answer at (their reaper's sum, worker/request_queue.py) times the
# longest wait. Each key's token bucket is a hash (tokens, at: ms on Redis's clock). Names are
# built in the script: fine for one Redis, not for Redis Cluster.
ROUTE_REQUESTS = f"""
local active = redis.call('GET', KEYS[1])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local longest_wait_ms, least_depth = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = {{}}
local function full(version)
  local limit = limits[version]
  if not limit then
    local rate = tonumber(redis.call('GET', '{names.queue_capacity("")}' .. version)) or 0
    limit = math.max(least_depth, math.floor(rate * longest_wait_ms / 1000))
    limits[version] = limit
  end
  return redis.call('LLEN', '{names.requests_list("")}' .. version) >= limit
end
local function wait_ms(key_id, rate, burst)
  if rate <= 0 then return 0 end
  local bucket = '{names.rate_bucket("")}' .. key_id
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(now - at, 0) * rate / 1000)
  if tokens < 1 then return math.ceil((1 - tokens) * 1000 / rate) end
  redis.call('HSET', bucket, 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', bucket, math.ceil(burst * 1000 / rate) + 1000)
  return 0
end
local results = {{clock[1], clock[2]}}
for i = 3, #ARGV, 6 do
  local version = ARGV[i]
  local result
  if version ~= '' and version ~= active and ARGV[i + 3] ~= '1' then
    result = 'pin'
  else
    if version == '' then version = active end
    if not version then
      result = ''
    elseif full(version) then
      result = 'full'
    else
      local wait = wait_ms(ARGV[i + 2], tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]))
      if wait > 0 then
        result = 'rate:' .. wait
      else
        redis.call('LPUSH', '{names.requests_list("")}' .. version, ARGV[i + 1])
        result = version
      end
    end
  end
  results[#results + 1] = result
end
return results
"""

_MAX_PER_CALL = 500  # bounds the script's run time: Redis does nothing else meanwhile


@dataclass(frozen=True)
class Sender:
    """Whose request it is, as far as routing cares: quota and pinning rights."""

    key_id: str
    may_pin: bool = False
    rate_per_s: float = 0.0
    burst: int = 1


@dataclass(frozen=True)
class Routed:
    """Where a request went: its version, or why it was not queued."""

    version: str | None = None  # None and no other reason: no version is active
    retry_after_ms: int = 0  # > 0: the key is over its rate; nothing was queued
    pin_refused: bool = False  # the key may not pin an inactive version; nothing was queued
    queue_full: bool = False  # the version's queue is at its depth limit; nothing was queued

    @classmethod
    def parse(cls, result: str) -> "Routed":
        if result == "pin":
            return cls(pin_refused=True)
        if result == "full":
            return cls(queue_full=True)
        if result.startswith("rate:"):
            return cls(retry_after_ms=int(result.removeprefix("rate:")))
        return cls(version=result or None)


@dataclass
class _Waiting:
    args: tuple[str, ...]
    future: asyncio.Future[Routed]


class RequestOutbox:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._route = redis.register_script(ROUTE_REQUESTS)
        # At least one full micro-batch, also before any rate is measured (a cold start).
        self._limits = (round(settings.queue_wait_s * 1000), settings.microbatch_max_size)
        self.clock = RedisClock()
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None

    async def sync_clock(self) -> None:
        """Measure Redis's clock before the first request (then every routing call does)."""
        sent = time.time()
        seconds, micros = await self._redis.time()
        self.clock.observe(seconds, micros, sent, time.time())

    async def send(self, request: str, sender: Sender, pinned: str | None = None) -> Routed:
        """Queue `request` for `pinned`'s (else the active version's) micro-batchers, within
        `sender`'s quota and rights; nothing is queued unless the result names a version."""
        future: asyncio.Future[Routed] = asyncio.get_running_loop().create_future()
        args = (
            pinned or "",
            request,
            sender.key_id,
            "1" if sender.may_pin else "0",
            repr(sender.rate_per_s),
            str(sender.burst),
        )
        self._waiting.append(_Waiting(args, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        return await future

    async def _send_waiting(self) -> None:
        """One script call for everything waiting, again until nothing waits: while a call is
        in flight, the requests arriving meanwhile gather for the next."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:_MAX_PER_CALL], self._waiting[_MAX_PER_CALL:]
                args = [*self._limits, *(value for waiting in batch for value in waiting.args)]
                try:
                    sent = time.time()
                    seconds, micros, *results = await self._route(
                        keys=[names.ACTIVE_VERSION], args=args
                    )
                    self.clock.observe(int(seconds), int(micros), sent, time.time())
                    routed = list(zip(batch, results, strict=True))
                except Exception as exc:  # every caller of this call gets the error (a 503)
                    for waiting in batch:
                        if not waiting.future.done():
                            waiting.future.set_exception(exc)
                    continue
                for waiting, result in routed:
                    if not waiting.future.done():
                        waiting.future.set_result(Routed.parse(result))
        finally:
            self._sender = None
