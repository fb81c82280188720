"""Batch job records in Redis, as the API reads and writes them (see `shared.jobs`)."""

import time
from typing import Any

from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from shared import keys
from shared.jobs import assemble_results, derive_state, rows_done
from shared.schemas import BatchStatus
from shared.settings import Settings


class JobNotFoundError(LookupError):
    pass


class JobStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    async def create(self, meta: dict[str, Any], payloads: dict[str, str]) -> None:
        job_id, ttl = meta["job_id"], self.settings.job_ttl_s
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.job_chunks_key(job_id), mapping=payloads)
            pipe.expire(keys.job_chunks_key(job_id), ttl)
            pipe.hset(keys.job_key(job_id), mapping=meta | {"progress_at": meta["created_at"]})
            pipe.expire(keys.job_key(job_id), ttl)
            await pipe.execute()

    async def fail(self, job_id: str, message: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.job_errors_key(job_id), "job", message)
            pipe.expire(keys.job_errors_key(job_id), self.settings.job_ttl_s)
            await pipe.execute()

    async def stalled_chunks(self, job_id: str, stall_s: float) -> list[int]:
        """Chunks still waiting when the job has not progressed for `stall_s`; the clock
        restarts, so they are sent again once per stall, not on every poll."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.job_key(job_id), "progress_at")
            pipe.hkeys(keys.job_chunks_key(job_id))
            progress_at, waiting = await pipe.execute()
        if progress_at is None or now - float(progress_at) < stall_s or not waiting:
            return []
        await self.redis.hset(keys.job_key(job_id), "progress_at", now)
        return sorted(int(chunk) for chunk in waiting)

    async def status(self, job_id: str) -> BatchStatus:
        """Progress, and the results once the job has succeeded."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.job_key(job_id))
            pipe.ttl(keys.job_key(job_id))
            pipe.hkeys(keys.job_results_key(job_id))
            pipe.hgetall(keys.job_errors_key(job_id))
            meta, ttl, done, errors = await pipe.execute()
        if "model_version" not in meta:
            ttl_s = self.settings.job_ttl_s
            kept = f"{ttl_s / 3600:g} h" if ttl_s >= 3600 else f"{ttl_s} s"
            raise JobNotFoundError(
                f"no batch job {job_id!r}: the id is unknown, or it was submitted more than "
                f"{kept} ago and its results were deleted"
            )
        raw_results = None
        if derive_state(meta, len(done), errors) == "succeeded":
            raw_results = await self.redis.hgetall(keys.job_results_key(job_id))
        # Assembling up to 100,000 rows is CPU work: keep it off the event loop.
        return await run_in_threadpool(_build_status, job_id, meta, ttl, done, errors, raw_results)


def _build_status(
    job_id: str,
    meta: dict[str, str],
    ttl: int,
    done: list[str],
    errors: dict[str, str],
    raw_results: dict[str, str] | None,
) -> BatchStatus:
    return BatchStatus(
        job_id=job_id,
        status=derive_state(meta, len(done), errors),
        model_version=meta["model_version"],
        rows_total=int(meta["rows_total"]),
        rows_done=rows_done(meta, [int(i) for i in done]),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(meta["created_at"]))),
        expires_in_s=max(int(ttl), 0),
        error="; ".join(errors.values()) or None,
        results=None if raw_results is None else assemble_results(meta, raw_results),
    )
