"""Single predictions: queue one house for its version's micro-batchers and await the reply,
without blocking the event loop.

The request goes out through this process's outbox (`api.outbox`, many requests per Redis call)
and its reply comes back through the reply inbox (`api.inbox`, one blocking read for all):
thousands of waiting requests cost one coroutine each, not a thread or a Redis connection each.
"""

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from redis import asyncio as aioredis

from api.auth import Caller
from api.errors import (
    ForbiddenError,
    PredictionTimeoutError,
    ServiceUnavailableError,
    TooManyRequestsError,
    VersionNotServedError,
)
from api.inbox import ReplyInbox
from api.outbox import RequestOutbox
from api.versions import ServedVersions
from shared.model.manifest import Manifest
from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import AnyReply, PredictRequest, Variant

# Longest a micro-batch takes (64 explained rows: about 1 s on the measured machine): a worker
# starts no request later than this before its caller's 504, so none is computed for nobody.
_LONGEST_BATCH_S = 1.0


@dataclass(frozen=True)
class Options:
    """What a prediction asks besides the house."""

    explain: bool = False
    as_of: str | None = None
    comps: int = 0
    pinned: str | None = None


DEFAULT_OPTIONS = Options()


class Predictions:
    def __init__(
        self,
        outbox: RequestOutbox,
        inbox: ReplyInbox,
        versions: ServedVersions,
        redis: aioredis.Redis,
        settings: Settings,
    ) -> None:
        self.outbox = outbox
        self.inbox = inbox
        self.versions = versions
        self.redis = redis
        self.timeout_s = settings.predict_timeout_s
        self.start_by_ms = (settings.predict_timeout_s - _LONGEST_BATCH_S) * 1000

    async def predict(
        self,
        house: dict[str, Any],
        caller: Caller,
        options: Options = DEFAULT_OPTIONS,
        variant: Variant = "full",
        request_id: str | None = None,
    ) -> tuple[Manifest, AnyReply]:
        """The reply of the active (or pinned) version's workers to one house: no thread, no
        Celery message and no Redis round trip of its own on the hot path. `request_id` is the
        estimate's id (unique: the record's key); a fresh one when not given."""
        request_id = request_id or uuid.uuid4().hex
        pinned = options.pinned
        now_ms = self.outbox.clock.now_ms()
        # Built without validating again what the route has just validated; the worker validates it.
        request = PredictRequest.model_construct(
            request_id=request_id,
            reply_to=self.inbox.key,
            house=house,
            variant=variant,
            explain=options.explain,
            as_of=options.as_of,
            comps=options.comps,
            key=caller.name,
            sent_ms=round(now_ms),
            pinned=pinned is not None,
            # A worker that reaches the request after this skips it: on Redis's clock, and early
            # enough that an answer started by then still reaches its caller.
            deadline_ms=round(now_ms + self.start_by_ms),
        ).model_dump_json()
        with self.inbox.expect(request_id) as answer:
            routed = await self.outbox.send(request, caller.sender, pinned)
            if routed.pin_refused:
                raise ForbiddenError(
                    f"only an admin key may pin {pinned!r}: it is not the active version"
                )
            if routed.queue_full:
                raise ServiceUnavailableError(
                    "the model's queue is full: the service is at capacity; retry shortly"
                )
            if routed.retry_after_ms:
                raise TooManyRequestsError(
                    f"key {caller.name!r} is over its {caller.rate_per_s:g} requests per second",
                    routed.retry_after_ms / 1000,
                )
            version = routed.version
            try:
                await self.versions.check_served(version, pinned)
                manifest = await self.versions.manifest(version)  # type: ignore[arg-type]
            except (ServiceUnavailableError, VersionNotServedError):
                if version is not None:  # nobody would answer it
                    await self.redis.lrem(names.requests_list(version), 1, request)
                raise
            try:
                async with asyncio.timeout(self.timeout_s):  # unlike wait_for, no task per request
                    reply = await answer
            except TimeoutError:
                raise PredictionTimeoutError(request_id, self.timeout_s) from None
        return manifest, reply
