"""Batch jobs: record a job and its rows, publish one Celery task per chunk, report progress.

Chunks go out as Celery tasks (durable, redelivered after a lost worker) to the version's
batch queue, so a whole job is answered by the model it started with; kombu is synchronous, so
they are published from a worker thread.
"""

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from celery import Celery
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.errors import TooManyRequestsError
from api.job_store import BatchJob, JobStore
from api.schemas import BatchStatus
from api.versions import ServedVersions
from shared.settings import Settings
from shared.wire import names
from shared.wire.jobs import chunk_bounds, encode_rows
from shared.wire.messages import CHUNK_ROWS, ChunkTask, JobRecord

# The suffixes that make a job's results and errors keys from its key (shared/wire/names.py).
_RESULTS = names.job_results_key("j").removeprefix(names.job_key("j"))
_ERRORS = names.job_errors_key("j").removeprefix(names.job_key("j"))

# A key's batch quota, checked and its new job reserved in one step. KEYS[1]: the key's jobs
# (sorted set scored by submit time). ARGV: now, most jobs, most rows, the new job's rows and id,
# how long a reserved job may take to appear. Finished or expired jobs leave the set here.
_RESERVE_JOB = f"""
local now, max_jobs, max_rows = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local jobs = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count, rows = 0, 0
for i = 1, #jobs, 2 do
  local id, at = jobs[i], tonumber(jobs[i + 1])
  local job = '{names.job_key("")}' .. id
  local total = redis.call('HGET', job, 'rows_total')
  if not total then
    if now - at > tonumber(ARGV[6]) then redis.call('ZREM', KEYS[1], id) else count = count + 1 end
  else
    local chunks = tonumber(redis.call('HGET', job, 'chunks'))
    local done = redis.call('HLEN', job .. '{_RESULTS}')
    if done >= chunks or redis.call('EXISTS', job .. '{_ERRORS}') == 1 then
      redis.call('ZREM', KEYS[1], id)
    else
      count = count + 1
      rows = rows + tonumber(total)
    end
  end
end
if count + 1 > max_jobs then return 'jobs:' .. count end
if rows + tonumber(ARGV[4]) > max_rows then return 'rows:' .. rows end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('EXPIRE', KEYS[1], 86400 * 2)
return 'ok'
"""
_RESERVE_GRACE_S = 60  # a reserved job whose record never appeared (API killed) is forgotten


class EncodedRows(Sequence[dict[str, Any]]):
    """Validated rows kept as the chunk payloads their tasks will read (`encode_rows`), encoded
    as each chunk fills: a job held as row dicts costs several times its payloads, and a large
    job's upload must cost the API little more than what it stores in Redis
    (tests/unit/api/test_batch_body.py measures it). Reads as a sequence of row dicts (decoded
    again) for whoever needs rows."""

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self._payloads: list[bytes] = []
        self._pending: list[dict[str, Any]] = []
        self._count = 0

    def extend(self, rows: Sequence[dict[str, Any]]) -> None:
        self._pending.extend(rows)
        self._count += len(rows)
        size = self.chunk_rows
        while len(self._pending) >= size:
            self._payloads.append(encode_rows(self._pending[:size]))
            del self._pending[:size]

    def seal(self) -> None:
        """Encode the last, partial chunk."""
        if self._pending:
            self._payloads.append(encode_rows(self._pending))
            self._pending = []

    def clear(self) -> None:
        self._payloads, self._pending, self._count = [], [], 0

    def payloads(self) -> list[bytes]:
        self.seal()
        return self._payloads

    def __len__(self) -> int:
        return self._count

    def _chunk(self, index: int) -> list[dict[str, Any]]:
        columns = CHUNK_ROWS.validate_json(self._payloads[index])
        rows = zip(*columns.values(), strict=True)
        return [dict(zip(columns, values, strict=True)) for values in rows]

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        chunk, offset = divmod(index, self.chunk_rows)
        if chunk < len(self._payloads):
            return self._chunk(chunk)[offset]
        return self._pending[index - len(self._payloads) * self.chunk_rows]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in range(len(self._payloads)):
            yield from self._chunk(chunk)
        yield from self._pending


class BatchJobs:
    def __init__(
        self, celery: Celery, store: JobStore, versions: ServedVersions, settings: Settings
    ) -> None:
        self.celery = celery
        self.store = store
        self.versions = versions
        self.settings = settings

    async def submit(
        self,
        rows: Sequence[dict[str, Any]],
        version: str,
        caller: Caller,
        as_of: str | None = None,
        comps: int = 0,
    ) -> str:
        job_id = uuid.uuid4().hex
        await self._reserve(caller, job_id, len(rows))
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
            owner=caller.name,
            as_of=as_of,
            comps=comps,
        )
        if isinstance(rows, EncodedRows) and rows.chunk_rows == chunk_rows:
            payloads = {str(i): payload for i, payload in enumerate(rows.payloads())}
        else:
            payloads = await run_in_threadpool(
                lambda: {
                    str(i): encode_rows(rows[start:stop]) for i, (start, stop) in enumerate(bounds)
                }
            )
        await self.store.create(job, payloads)
        await self._send_chunks(job, range(len(bounds)))
        return job_id

    async def _reserve(self, caller: Caller, job_id: str, rows: int) -> None:
        settings = self.settings
        verdict = await self.store.redis.eval(
            _RESERVE_JOB,
            1,
            names.key_jobs(caller.name),
            time.time(),
            settings.max_jobs_per_key,
            settings.max_rows_queued_per_key,
            rows,
            job_id,
            _RESERVE_GRACE_S,
        )
        if verdict.startswith("jobs:"):
            raise TooManyRequestsError(
                f"key {caller.name!r} has {settings.max_jobs_per_key} batch job(s) queued or "
                "running, its most at once: wait for one to finish",
                settings.retry_after_s,
            )
        if verdict.startswith("rows:"):
            queued = int(verdict.removeprefix("rows:"))
            raise TooManyRequestsError(
                f"key {caller.name!r} has {queued:,} rows queued; {rows:,} more would pass its "
                f"limit of {settings.max_rows_queued_per_key:,}",
                settings.retry_after_s,
            )

    async def _send_chunks(self, job: JobRecord | BatchStatus, chunks: Iterable[int]) -> None:
        def publish() -> None:
            for chunk in chunks:
                task = ChunkTask(job_id=job.job_id, chunk=chunk, as_of=job.as_of, comps=job.comps)
                self.celery.send_task(
                    names.PREDICT_CHUNK_TASK,
                    kwargs=task.model_dump(),
                    queue=names.batch_queue_name(job.model_version),
                    # Chunks outliving their job are dropped unread.
                    expires=self.settings.job_ttl_s,
                )

        await run_in_threadpool(publish)

    async def status(self, job_id: str, caller: Caller) -> BatchJob:
        """The job's status; a job that made no progress for `batch_stall_s` gets its unfinished
        chunks sent again. A message can be lost between Redis handing it to a worker and the
        worker recording it (Redis killed at that instant); re-sending is safe because chunk
        results are idempotent, and a chunk already done finds no rows and does nothing."""
        job = await self.store.status(job_id, caller)
        status = job.status
        if status.status not in ("queued", "running"):
            return job
        pending = await self.store.stalled_chunks(job_id, self.settings.batch_stall_s)
        if pending and await self.versions.live_workers(status.model_version) == 0:
            # Its version no longer runs (drained or gone): say so rather than wait 24 h.
            message = f"model {status.model_version} stopped running; submit the job again"
            await self.store.fail(job_id, message)
            return await self.store.status(job_id, caller)
        if pending:
            await self._send_chunks(status, pending)
        return job
