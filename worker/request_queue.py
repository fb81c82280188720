"""A version's single predictions, taken so that none is lost and none is answered twice.

A micro-batcher moves the requests it takes from the version's request list into a processing
list of its own, and holds a lease (a key with an expiry) while it lives. Its replies go out and
its processing list is deleted in one script: a batch is either answered or still held, never
both. If the process dies (SIGKILL, OOM), its lease lapses and any live micro-batcher of the
version puts the held requests back at the head of the request list (`reap`); should the
presumed-dead owner still answer afterwards, its commit finds its list gone and sends nothing,
so the requeued copy is the one answered.

Each call also reads Redis's clock, so a request's deadline (set on Redis's clock by the API)
is checked without trusting this host's clock.
"""

import os
import socket
import uuid
from dataclasses import dataclass

import redis

from shared.wire import names
from shared.wire.messages import AnyReply, PredictRequest
from shared.wire.replies import by_inbox
from worker.records import BUFFER_KEYS, PUSH_FRAGMENT

# KEYS: request list, processing list, lease, owners set, the record buffer's three keys
# (worker/records.py), then one inbox per reply group. ARGV: commit ('1': send the replies and
# the records, and let go of the held batch), how many to take, lease ms, the lease's value
# (requests/s), owner, inbox TTL s, the records (a JSON array), their count, the buffer's bound,
# then per inbox: count, replies... Returns {committed (1: the held batch was still ours),
# seconds, microseconds, {taken...}, records buffered}.
_EXCHANGE = (
    """
local committed = 0
local buffered = 0
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  local at = 10
  for k = 8, #KEYS do
    local n = tonumber(ARGV[at])
    redis.call('RPUSH', KEYS[k], unpack(ARGV, at + 1, at + n))
    redis.call('EXPIRE', KEYS[k], ARGV[6])
    at = at + n + 1
  end
  redis.call('DEL', KEYS[2])
  committed = 1
"""
    + PUSH_FRAGMENT.format(records=5, rows=6, dropped=7, batch=7, count=8, bound=9)
    + """
  buffered = pushed
end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
local taken = {}
local most = tonumber(ARGV[2])
if most > 0 then
  local items = redis.call('RPOP', KEYS[1], most)
  if items then
    redis.call('RPUSH', KEYS[2], unpack(items))
    taken = items
  end
end
local now = redis.call('TIME')
return {committed, now[1], now[2], taken, buffered}
"""
)

# KEYS: owners set, request list, capacity key. ARGV: lease name prefix, processing list prefix,
# capacity TTL ms. Requeues the batches of owners whose lease lapsed, oldest at the head (the
# right end, taken first), and sums the live owners' rates into the version's capacity.
_REAP = """
local requeued = 0
local rate = 0
for _, owner in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local lease = redis.call('GET', ARGV[1] .. owner)
  if lease then
    rate = rate + (tonumber(lease) or 0)
  else
    local held = ARGV[2] .. owner
    local items = redis.call('LRANGE', held, 0, -1)
    for i = #items, 1, -1 do
      redis.call('RPUSH', KEYS[2], items[i])
    end
    requeued = requeued + #items
    redis.call('DEL', held)
    redis.call('SREM', KEYS[1], owner)
  end
end
redis.call('SET', KEYS[3], tostring(rate), 'PX', ARGV[3])
return requeued
"""


@dataclass(frozen=True)
class Taken:
    """What one exchange brought: the requests now held, Redis's clock, and whether the
    previous batch's replies went out (False: it had been reaped, another process answers)
    with how many of its records the buffer took (the rest were counted as dropped)."""

    items: list[str]
    now_ms: int
    committed: bool
    buffered: int = 0


@dataclass(frozen=True)
class Answered:
    """A batch's replies, each with its request, and the batch's records (worker/records.py)."""

    replies: list[tuple[PredictRequest, AnyReply]]
    records: bytes = b"[]"
    record_count: int = 0


class RequestQueue:
    def __init__(
        self,
        client: redis.Redis,
        version: str,
        lease_s: float,
        reply_ttl_s: int,
        buffer_rows: int,
    ) -> None:
        self.client = client
        self.version = version
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pending = names.requests_list(version)
        self.processing = names.processing_list(version, self.owner)
        self.lease = names.processing_lease(version, self.owner)
        self.owners = names.processing_owners(version)
        self.lease_ms = round(lease_s * 1000)
        self.reply_ttl_s = reply_ttl_s
        self.buffer_rows = buffer_rows
        self._exchange = client.register_script(_EXCHANGE)
        self._reap = client.register_script(_REAP)

    def exchange(self, answered: Answered | None, take: int, rate: float) -> Taken:
        """Send the held batch's replies and records and let go of it (if `answered` is
        given), renew the lease, and take up to `take` more: one round trip per micro-batch."""
        keys = [self.pending, self.processing, self.lease, self.owners, *BUFFER_KEYS]
        args: list[str | int | bytes] = [
            "0" if answered is None else "1",
            take,
            self.lease_ms,
            f"{rate:.1f}",
            self.owner,
            self.reply_ttl_s,
            answered.records if answered else b"[]",
            answered.record_count if answered else 0,
            self.buffer_rows,
        ]
        for inbox, replies in by_inbox(answered.replies if answered else ()).items():
            keys.append(inbox)
            args += [len(replies), *replies]
        committed, seconds, micros, items, buffered = self._exchange(keys=keys, args=args)
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return Taken(list(items), now_ms, bool(committed), int(buffered))

    def wait(self, timeout_s: int) -> str | None:
        """Block until a request arrives and hold it (the lease must be fresh: call `exchange`
        first); None after `timeout_s`."""
        return self.client.blmove(self.pending, self.processing, timeout_s, "RIGHT", "LEFT")

    def reap(self) -> int:
        """Requeue the batches of this version's dead micro-batchers; refresh the version's
        capacity. Returns how many requests were requeued."""
        capacity_ttl_ms = 3 * self.lease_ms
        return self._reap(
            keys=[self.owners, self.pending, names.queue_capacity(self.version)],
            args=[
                names.processing_lease(self.version, ""),
                names.processing_list(self.version, ""),
                capacity_ttl_ms,
            ],
        )

    def release(self) -> None:
        """Leave for good (warm shutdown). A batch still held stays registered, so that the
        reaper requeues it once the lease lapses."""
        if self.client.exists(self.processing):
            return
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.lease)
            pipe.srem(self.owners, self.owner)
            pipe.execute()
