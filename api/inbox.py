"""The API process's reply inbox: workers push every reply for this process to one Redis list,
and one reader task hands each to the request awaiting it.

One blocking read serves every request in flight (under load a single BLPOP + LPOP brings
dozens of replies), where a BLPOP per request cost the API a Redis round trip per prediction.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from shared.wire import names
from shared.wire.messages import REPLY, AnyReply

log = logging.getLogger(__name__)

READ_BLOCK_S = 1  # longest blocking read; the reader's Redis client must time out later
_READ_MAX = 1000  # replies taken per LPOP after the blocking read
_RETRY_S = 0.5  # pause after a Redis error before reading again


class ReplyInbox:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.key = names.reply_inbox(uuid.uuid4().hex)
        self.redis = redis
        self._waiting: dict[str, asyncio.Future[AnyReply]] = {}
        self.late_replies = 0
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._reader = asyncio.create_task(self._read(), name=f"reply inbox {self.key}")

    async def stop(self) -> None:
        """Let the reader finish its current read (at most READ_BLOCK_S). It is not cancelled
        mid-read: redis.asyncio can swallow a cancellation there and leave the read hanging."""
        self._stopping = True
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), READ_BLOCK_S + 5)
            except TimeoutError:
                self._reader.cancel()

    @contextmanager
    def expect(self, request_id: str) -> Iterator[asyncio.Future[AnyReply]]:
        """The future the reply to `request_id` will resolve; forgotten on leaving, so a reply
        arriving after its caller gave up is dropped."""
        future: asyncio.Future[AnyReply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            yield future
        finally:
            self._waiting.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: a caller that left early logs no warning

    @property
    def reading(self) -> bool:
        """False once the reader has stopped: no reply can reach this process then."""
        return self._reader is not None and not self._reader.done()

    def _deliver(self, raw: str) -> None:
        try:
            reply = REPLY.validate_json(raw)
        except ValidationError:  # never let one bad message stop the reader
            log.error("reply inbox: dropped a malformed reply: %.200s", raw)
            return
        future = self._waiting.get(reply.request_id)
        if future is None or future.done():
            # Its caller has gone (504) or was answered already: workers should never do this.
            self.late_replies += 1
            log.warning("reply inbox: a reply to %s came after its caller left", reply.request_id)
            return
        future.set_result(reply)

    def _fail_waiting(self, exc: Exception) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(exc)

    async def _read(self) -> None:
        while not self._stopping:
            try:
                first = await self.redis.blpop([self.key], timeout=READ_BLOCK_S)
                if first is None:
                    continue
                self._deliver(first[1])  # its caller need not wait for the others' read
                rest = await self.redis.lpop(self.key, _READ_MAX) or []
            except RedisError as exc:
                # Redis is away: every caller gets its 503 now rather than a 504 later.
                log.warning("reply inbox: %s", exc)
                self._fail_waiting(exc)
                await asyncio.sleep(_RETRY_S)
                continue
            except Exception:  # keep reading whatever happens: this task is the only reader
                log.exception("reply inbox: unexpected error; reading on")
                await asyncio.sleep(_RETRY_S)
                continue
            for raw in rest:
                self._deliver(raw)
