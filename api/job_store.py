"""Batch job records in Redis, as the API reads and writes them (see `shared.wire.jobs`)."""

import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.errors import NotFoundError
from api.schemas import BatchStatus
from shared.settings import Settings
from shared.wire import names
from shared.wire.api_keys import Role
from shared.wire.jobs import JobResults, derive_state, job_results, rows_done
from shared.wire.messages import JobRecord


@dataclass(frozen=True)
class BatchJob:
    """A job's status, and its results once it has succeeded (kept apart from the status:
    they are answered as the workers wrote them, never validated into 100,000 objects)."""

    status: BatchStatus
    results: JobResults | None = None


class JobStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.ttl_s = settings.job_ttl_s

    async def create(self, job: JobRecord, payloads: Mapping[str, bytes]) -> None:
        record = job.model_dump(exclude_none=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(names.job_chunks_key(job.job_id), mapping=payloads)
            pipe.expire(names.job_chunks_key(job.job_id), self.ttl_s)
            pipe.hset(names.job_key(job.job_id), mapping=record)
            pipe.expire(names.job_key(job.job_id), self.ttl_s)
            await pipe.execute()

    async def fail(self, job_id: str, message: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(names.job_errors_key(job_id), "job", message)
            pipe.expire(names.job_errors_key(job_id), self.ttl_s)
            await pipe.execute()

    async def stalled_chunks(self, job_id: str, stall_s: float) -> list[int]:
        """Chunks still waiting when the job has not progressed for `stall_s`; the clock
        restarts, so they are sent again once per stall, not on every poll."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(names.job_key(job_id), "progress_at")
            pipe.hkeys(names.job_chunks_key(job_id))
            progress_at, waiting = await pipe.execute()
        if progress_at is None or now - float(progress_at) < stall_s or not waiting:
            return []
        await self.redis.hset(names.job_key(job_id), "progress_at", now)
        return sorted(int(chunk) for chunk in waiting)

    async def status(self, job_id: str, caller: Caller) -> BatchJob:
        """Progress, and the results once the job has succeeded. Another key's job is unknown
        to a caller (404, like an id never issued), except to an admin."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(names.job_key(job_id))
            pipe.ttl(names.job_key(job_id))
            pipe.hkeys(names.job_results_key(job_id))
            pipe.hgetall(names.job_errors_key(job_id))
            record, ttl, done, errors = await pipe.execute()
        job = JobRecord.model_validate(record) if "model_version" in record else None
        if job is None or (job.owner not in (None, caller.name) and caller.role < Role.ADMIN):
            kept = f"{self.ttl_s / 3600:g} h" if self.ttl_s >= 3600 else f"{self.ttl_s} s"
            raise NotFoundError(
                f"no batch job {job_id!r} of yours: the id is unknown, or it was submitted more "
                f"than {kept} ago and its results were deleted"
            )
        state = derive_state(job, len(done), errors)
        status = BatchStatus(
            job_id=job.job_id,
            status=state,
            model_version=job.model_version,
            rows_total=job.rows_total,
            rows_done=rows_done(job, [int(i) for i in done]),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.created_at)),
            expires_in_s=max(int(ttl), 0),
            error="; ".join(errors.values()) or None,
            as_of=job.as_of,
            comps=job.comps,
        )
        if state != "succeeded":
            return BatchJob(status)
        chunks = await self.redis.hgetall(names.job_results_key(job_id))
        # Rows written by workers from before the final form are converted: CPU work.
        return BatchJob(status, await run_in_threadpool(job_results, job, chunks))
