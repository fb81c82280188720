"""Sending work to the model workers and waiting for answers, without blocking the event loop.

Celery publishes the task (in a worker thread: kombu is synchronous); the API then awaits the
worker's reply on a per-request Redis list with BLPOP through redis.asyncio, so thousands of
waiting requests cost one coroutine each rather than one thread each.
"""

import json
import time
import uuid
from typing import Any

from celery import Celery
from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from api.errors import PredictionTimeoutError, ServiceUnavailableError, VersionNotServedError
from api.job_store import JobStore
from shared import keys
from shared.bundles import Manifest
from shared.jobs import chunk_bounds
from shared.liveness import live_nodes_async
from shared.settings import Settings


class Dispatcher:
    def __init__(self, celery: Celery, redis: aioredis.Redis, settings: Settings) -> None:
        self.celery = celery
        self.redis = redis
        self.settings = settings
        self.jobs = JobStore(redis, settings)
        # Bundles are immutable, so a version's manifest can be cached for the process's life.
        self._manifests: dict[str, Manifest] = {}

    async def live_workers(self, version: str) -> int:
        return len(await live_nodes_async(self.redis, version, self.settings.heartbeat_ttl_s))

    async def serving_version(self, pinned: str | None = None) -> Manifest:
        """The version a request goes to (the active one, or a pinned one) once we know a warm
        worker serves it; raises the right error for the caller otherwise."""
        version = pinned or await self.redis.get(keys.ACTIVE_VERSION)
        if version is None:
            raise ServiceUnavailableError("no model version is active yet: start a worker")
        if await self.live_workers(version) == 0:
            if pinned:
                raise VersionNotServedError(f"no worker serves model version {pinned!r} now")
            raise ServiceUnavailableError(f"no worker is serving the active model {version}")
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

    async def predict(self, house: dict[str, Any], version: str) -> dict[str, Any]:
        """Enqueue one house on the version's queue and await the worker's reply."""
        request_id = uuid.uuid4().hex
        reply_to = keys.reply_key(request_id)
        deadline = time.monotonic() + self.settings.predict_timeout_s
        await run_in_threadpool(
            self.celery.send_task,
            keys.PREDICT_ONE_TASK,
            args=[house, reply_to],
            task_id=request_id,
            queue=keys.queue_name(version),
            # A worker that reaches the message after the caller gave up skips it.
            expires=self.settings.predict_timeout_s,
        )
        remaining = max(deadline - time.monotonic(), 0.01)
        item = await self.redis.blpop([reply_to], timeout=remaining)
        if item is None:
            raise PredictionTimeoutError(request_id, self.settings.predict_timeout_s)
        reply = json.loads(item[1])
        reply["request_id"] = request_id
        return reply

    async def submit_batch(self, rows: list[dict[str, Any]], version: str) -> str:
        """Record the job, then enqueue its chunks; the chunks carry the version so the whole
        job is answered by the model it started with."""
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
        await self.jobs.create(meta)

        def publish() -> None:
            queue = keys.queue_name(version)
            for index, (start, stop) in enumerate(bounds):
                self.celery.send_task(
                    keys.PREDICT_CHUNK_TASK,
                    args=[job_id, index, rows[start:stop]],
                    task_id=f"{job_id}-{index}",
                    queue=queue,
                )

        await run_in_threadpool(publish)
        return job_id
