"""Sending work to the model workers and waiting for answers, without blocking the event loop.

A single prediction is pushed to its version's request list by this process's outbox
(`api.outbox`) and the API awaits the worker's reply, which arrives in its reply inbox
(`api.inbox`): thousands of waiting
requests cost one coroutine each, not one thread or one Redis connection each. Batch jobs go
out as Celery tasks (durable, redelivered after a lost worker), published from a worker thread
since kombu is synchronous.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from celery import Celery
from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from api.errors import PredictionTimeoutError, ServiceUnavailableError, VersionNotServedError
from api.inbox import ReplyInbox
from api.job_store import JobStore
from api.outbox import RequestOutbox
from shared import keys
from shared.bundles import Manifest
from shared.jobs import chunk_bounds, encode_rows
from shared.liveness import live_nodes_async
from shared.schemas import BatchStatus
from shared.settings import Settings


class Dispatcher:
    def __init__(
        self,
        celery: Celery,
        redis: aioredis.Redis,
        outbox: RequestOutbox,
        inbox: ReplyInbox,
        settings: Settings,
    ) -> None:
        self.celery = celery
        self.redis = redis
        self.outbox = outbox
        self.inbox = inbox
        self.settings = settings
        self.jobs = JobStore(redis, settings)
        # Bundles are immutable, so a version's manifest can be cached for the process's life.
        self._manifests: dict[str, Manifest] = {}
        # version -> monotonic time until which it is known to have a live worker
        self._served_until: dict[str, float] = {}

    async def live_workers(self, version: str) -> int:
        return len(await live_nodes_async(self.redis, version, self.settings.heartbeat_ttl_s))

    async def is_served(self, version: str) -> bool:
        """Whether a live worker serves `version`. A yes is trusted for `served_cache_s` (the
        check costs more API CPU than the prediction's own Redis traffic); a no is always
        checked again, so a version whose workers just started is served at once."""
        if time.monotonic() < self._served_until.get(version, 0):
            return True
        if await self.live_workers(version) == 0:
            return False
        self._served_until[version] = time.monotonic() + self.settings.served_cache_s
        return True

    async def check_served(self, version: str | None, pinned: str | None) -> None:
        """Raise the right error for the caller unless a warm worker serves `version`."""
        if version is None:
            raise ServiceUnavailableError("no model version is active yet: start a worker")
        # A pinned version is checked every time: it may be draining.
        served = await self.live_workers(version) > 0 if pinned else await self.is_served(version)
        if not served:
            if pinned:
                raise VersionNotServedError(f"no worker serves model version {pinned!r} now")
            raise ServiceUnavailableError(f"no worker is serving the active model {version}")

    async def serving_version(self, pinned: str | None = None) -> Manifest:
        """The version a batch job goes to (the active one, or a pinned one) once we know a warm
        worker serves it."""
        version = pinned or await self.redis.get(keys.ACTIVE_VERSION)
        await self.check_served(version, pinned)
        return await self.manifest(version)

    async def manifest(self, version: str) -> Manifest:
        if version not in self._manifests:
            raw = await self.redis.get(keys.manifest_key(version))
            if raw is None:
                raise ServiceUnavailableError(
                    f"model {version} has not been registered by a worker"
                )
            self._manifests[version] = Manifest.model_validate_json(raw)
        return self._manifests[version]

    async def predict(
        self,
        house: dict[str, Any],
        pinned: str | None = None,
        variant: str = "full",
        explain: bool = False,
    ) -> tuple[Manifest, dict[str, Any]]:
        """Queue one house for the micro-batchers of the active (or pinned) version and await
        the reply: no thread, no Celery message and no Redis round trip of its own on the hot
        path (the outbox and the inbox carry many requests per Redis call)."""
        request_id = uuid.uuid4().hex
        timeout = self.settings.predict_timeout_s
        request = json.dumps(
            {
                "request_id": request_id,
                "reply_to": self.inbox.key,
                "house": house,
                "variant": variant,
                "explain": explain,
                "pinned": pinned is not None,
                # A worker that reaches the request after the caller gave up skips it.
                "deadline": time.time() + timeout,
            }
        )
        with self.inbox.expect(request_id) as answer:
            version = await self.outbox.send(request, pinned)
            try:
                await self.check_served(version, pinned)
                manifest = await self.manifest(version)
            except (ServiceUnavailableError, VersionNotServedError):
                if version is not None:  # nobody would answer it
                    await self.redis.lrem(keys.requests_list(version), 1, request)
                raise
            try:
                async with asyncio.timeout(timeout):  # unlike wait_for, no task per request
                    reply = await answer
            except TimeoutError:
                raise PredictionTimeoutError(request_id, timeout) from None
        return manifest, reply

    async def submit_batch(self, rows: list[dict[str, Any]], version: str) -> str:
        """Record the job and its chunks' rows, then enqueue one small task per chunk; the
        chunks go to the version's batch queue, so the whole job is answered by the model it
        started with."""
        job_id = uuid.uuid4().hex
        chunk_rows = self.settings.batch_chunk_rows
        bounds = chunk_bounds(len(rows), chunk_rows)
        meta = {
            "job_id": job_id,
            "model_version": version,
            "rows_total": len(rows),
            "chunk_rows": chunk_rows,
            "chunks": len(bounds),
            "created_at": time.time(),
        }
        payloads = await run_in_threadpool(
            lambda: {
                str(i): encode_rows(rows[start:stop]) for i, (start, stop) in enumerate(bounds)
            }
        )
        await self.jobs.create(meta, payloads)
        await self.send_chunks(job_id, version, range(len(bounds)))
        return job_id

    async def send_chunks(self, job_id: str, version: str, chunks: Iterable[int]) -> None:
        def publish() -> None:
            for chunk in chunks:
                self.celery.send_task(
                    keys.PREDICT_CHUNK_TASK,
                    args=[job_id, chunk],
                    queue=keys.batch_queue_name(version),
                    # Chunks outliving their job are dropped unread.
                    expires=self.settings.job_ttl_s,
                )

        await run_in_threadpool(publish)

    async def batch_status(self, job_id: str) -> BatchStatus:
        """The job's status; a job that made no progress for `batch_stall_s` gets its unfinished
        chunks sent again. A message can be lost between Redis handing it to a worker and the
        worker recording it (Redis killed at that instant); re-sending is safe because chunk
        results are idempotent, and a chunk already done finds no rows and does nothing."""
        status = await self.jobs.status(job_id)
        if status.status in ("queued", "running"):
            pending = await self.jobs.stalled_chunks(job_id, self.settings.batch_stall_s)
            if pending and await self.live_workers(status.model_version) == 0:
                # Its version no longer runs (drained or gone): say so rather than wait 24 h.
                message = f"model {status.model_version} stopped running; submit the job again"
                await self.jobs.fail(job_id, message)
                return await self.jobs.status(job_id)
            if pending:
                await self.send_chunks(job_id, status.model_version, pending)
        return status
