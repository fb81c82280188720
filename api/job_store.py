"""Batch job records in Redis, as the API reads and writes them (see `shared.wire.jobs`)."""

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.errors import NotFoundError
from api.schemas import BatchStatus
from shared.settings import Settings
from shared.wire import names
from shared.wire.api_keys import Role
from shared.wire.jobs import assemble_results, derive_state, rows_done
from shared.wire.messages import JobRecord


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

    async def status(self, job_id: str, caller: Caller) -> BatchStatus:
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
        raw_results = None
        if derive_state(job, len(done), errors) == "succeeded":
            raw_results = await self.redis.hgetall(names.job_results_key(job_id))
        # Assembling up to 100,000 rows is CPU work: keep it off the event loop.
        return await run_in_threadpool(_build_status, job, ttl, done, errors, raw_results)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Python's cyclic collector paused while a job's results are built: 100,000 rows are a few
    hundred thousand new objects, none of them in a cycle, and the collections their creation
    set off took 1.5 of the 1.9 s of validating them (measured in process: a TypeAdapter of
    list[BatchRowResult] on 100,000 rows, 1.87 s with the collector, 0.33 s without). Another
    thread ending its own pause early only makes this one slower, never wrong."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _build_status(
    job: JobRecord,
    ttl: int,
    done: list[str],
    errors: dict[str, str],
    raw_results: dict[str, str] | None,
) -> BatchStatus:
    with _no_cyclic_gc():
        return BatchStatus(
            job_id=job.job_id,
            status=derive_state(job, len(done), errors),
            model_version=job.model_version,
            rows_total=job.rows_total,
            rows_done=rows_done(job, [int(i) for i in done]),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.created_at)),
            expires_in_s=max(int(ttl), 0),
            error="; ".join(errors.values()) or None,
            as_of=job.as_of,
            comps=job.comps,
            results=None if raw_results is None else assemble_results(job, raw_results),
        )
