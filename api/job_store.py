"""Batch job records in Redis, as the API reads and writes them (see `shared.jobs`)."""

import time
from typing import Any

from redis import asyncio as aioredis

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

    async def create(self, meta: dict[str, Any]) -> None:
        key = keys.job_key(meta["job_id"])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=meta)
            pipe.expire(key, self.settings.job_ttl_s)
            await pipe.execute()

    async def status(self, job_id: str, *, with_results: bool) -> BatchStatus:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.job_key(job_id))
            pipe.ttl(keys.job_key(job_id))
            pipe.hkeys(keys.job_results_key(job_id))
            pipe.hgetall(keys.job_errors_key(job_id))
            meta, ttl, done, errors = await pipe.execute()
        if not meta:
            ttl_s = self.settings.job_ttl_s
            kept = f"{ttl_s / 3600:g} h" if ttl_s >= 3600 else f"{ttl_s} s"
            raise JobNotFoundError(
                f"no batch job {job_id!r}: the id is unknown, or it was submitted more than "
                f"{kept} ago and its results were deleted"
            )
        state = derive_state(meta, len(done), errors)
        results = None
        if with_results and state == "succeeded":
            results = assemble_results(meta, await self.redis.hgetall(keys.job_results_key(job_id)))
        return BatchStatus(
            job_id=job_id,
            status=state,
            model_version=meta["model_version"],
            rows_total=int(meta["rows_total"]),
            rows_done=rows_done(meta, [int(i) for i in done]),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(meta["created_at"]))),
            expires_in_s=max(int(ttl), 0),
            error="; ".join(errors.values()) or None,
            results=results,
        )
