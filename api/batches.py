"""Batch jobs: record a job and its rows, publish one Celery task per chunk, report progress.

Chunks go out as Celery tasks (durable, redelivered after a lost worker) to the version's
batch queue, so a whole job is answered by the model it started with; kombu is synchronous, so
they are published from a worker thread.
"""

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery
from starlette.concurrency import run_in_threadpool

from api.job_store import JobStore
from api.schemas import BatchStatus
from api.versions import ServedVersions
from shared.settings import Settings
from shared.wire import names
from shared.wire.jobs import chunk_bounds, encode_rows
from shared.wire.messages import ChunkTask, JobRecord


class BatchJobs:
    def __init__(
        self, celery: Celery, store: JobStore, versions: ServedVersions, settings: Settings
    ) -> None:
        self.celery = celery
        self.store = store
        self.versions = versions
        self.settings = settings

    async def submit(self, rows: Sequence[dict[str, Any]], version: str) -> str:
        job_id = uuid.uuid4().hex
        chunk_rows = self.settings.batch_chunk_rows
        bounds = chunk_bounds(len(rows), chunk_rows)
        now = time.time()
        job = JobRecord(
            job_id=job_id,
            model_version=version,
            rows_total=len(rows),
            chunk_rows=chunk_rows,
            chunks=len(bounds),
            created_at=now,
            progress_at=now,
        )
        payloads = await run_in_threadpool(
            lambda: {
                str(i): encode_rows(rows[start:stop]) for i, (start, stop) in enumerate(bounds)
            }
        )
        await self.store.create(job, payloads)
        await self._send_chunks(job_id, version, range(len(bounds)))
        return job_id

    async def _send_chunks(self, job_id: str, version: str, chunks: Iterable[int]) -> None:
        def publish() -> None:
            for chunk in chunks:
                self.celery.send_task(
                    names.PREDICT_CHUNK_TASK,
                    kwargs=ChunkTask(job_id=job_id, chunk=chunk).model_dump(),
                    queue=names.batch_queue_name(version),
                    # Chunks outliving their job are dropped unread.
                    expires=self.settings.job_ttl_s,
                )

        await run_in_threadpool(publish)

    async def status(self, job_id: str) -> BatchStatus:
        """The job's status; a job that made no progress for `batch_stall_s` gets its unfinished
        chunks sent again. A message can be lost between Redis handing it to a worker and the
        worker recording it (Redis killed at that instant); re-sending is safe because chunk
        results are idempotent, and a chunk already done finds no rows and does nothing."""
        status = await self.store.status(job_id)
        if status.status not in ("queued", "running"):
            return status
        pending = await self.store.stalled_chunks(job_id, self.settings.batch_stall_s)
        if pending and await self.versions.live_workers(status.model_version) == 0:
            # Its version no longer runs (drained or gone): say so rather than wait 24 h.
            message = f"model {status.model_version} stopped running; submit the job again"
            await self.store.fail(job_id, message)
            return await self.store.status(job_id)
        if pending:
            await self._send_chunks(job_id, status.model_version, pending)
        return status
