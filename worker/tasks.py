"""The worker's Celery tasks: a chunk of a batch job, and the ping a rollout sends.

Chunks are idempotent (a fixed result field per chunk), which is what makes late acks and
redelivery after a lost worker safe. A chunk's rows are recorded (worker/records.py) in the
transaction that stores its result: a redelivered chunk records them again under the same ids
(`<job id>-<row>`), which the record keeps once. Single predictions do not come as tasks:
the micro-batcher answers them (worker/microbatch.py).
"""

import logging
import time

import pandas as pd
import redis
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from shared.model.demographics import UnknownZipcodeError
from shared.model.market import AsOfError
from shared.settings import get_settings
from shared.wire import names
from shared.wire.jobs import encode_result
from shared.wire.messages import CHUNK_ROWS, ChunkTask, ErrorCode, PingReply
from worker import metrics, serving
from worker.app import celery_app
from worker.records import BUFFER_KEYS, PUSH_RECORDS, records_of

log = logging.getLogger(__name__)


# A chunk that kills its worker every time would be redelivered forever (late acks plus
# reject-on-worker-lost); after this many starts the job is failed instead.
MAX_CHUNK_ATTEMPTS = 3

# Mark the job started and count this attempt, but only while the job exists: a chunk that runs
# after its job expired must not recreate a half-empty job record.
_START_CHUNK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'attempts:' .. ARGV[2], 1)
"""

# Note progress without recreating a job that expired meanwhile.
_PROGRESS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'progress_at', ARGV[1]) end
"""


# A chunk that computed its rows while Redis restarted waits for it rather than failing: a failed
# task is acked, and its rows would be lost. Within the soft time limit.
_until_redis_returns = retry(
    retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
    wait=wait_fixed(0.5),
    stop=stop_after_delay(15),
    reraise=True,
)


@_until_redis_returns
def _start(job_id: str, chunk: int) -> int:
    return serving.current().redis.eval(
        _START_CHUNK, 1, names.job_key(job_id), str(time.time()), chunk
    )


@_until_redis_returns
def _rows(job_id: str, chunk: int) -> tuple[str | None, str, int]:
    """The chunk's rows (None once done), the job's owner and its rows per chunk."""
    with serving.current().redis.pipeline(transaction=False) as pipe:
        pipe.hget(names.job_chunks_key(job_id), str(chunk))
        pipe.hmget(names.job_key(job_id), "owner", "chunk_rows")
        payload, (owner, chunk_rows) = pipe.execute()
    return payload, owner or "", int(chunk_rows or 0)


@_until_redis_returns
def _store(
    job_id: str,
    chunk: int,
    *,
    result: bytes | None = None,
    records: tuple[bytes, int] | None = None,
    error: str | None = None,
) -> None:
    """Record a chunk's outcome and retire its rows, in one transaction; its estimates go to
    the record's buffer in the same one (worker/records.py)."""
    settings = get_settings()
    target = names.job_results_key(job_id) if result is not None else names.job_errors_key(job_id)
    with serving.current().redis.pipeline() as pipe:
        pipe.hset(target, str(chunk), result if result is not None else str(error))
        pipe.expire(target, settings.job_ttl_s)
        pipe.hdel(names.job_chunks_key(job_id), str(chunk))
        pipe.eval(_PROGRESS, 1, names.job_key(job_id), str(time.time()))
        if records is not None:
            batch, count = records
            pipe.eval(PUSH_RECORDS, 3, *BUFFER_KEYS, batch, count, settings.records_buffer_rows)
        done = pipe.execute()
    if records is not None:
        metrics.count_records(done[-1], records[1] - done[-1])


def decode_rows(payload: str) -> pd.DataFrame:
    """A chunk's rows, as stored by the API (`shared.wire.jobs.encode_rows`)."""
    return pd.DataFrame(CHUNK_ROWS.validate_json(payload))


def houses_of(rows: pd.DataFrame) -> list[dict[str, object]]:
    """Each row's fields as decoded, for its record: built column by column (`tolist` gives
    Python values), not row by row through pandas, which cost 3.5 times as much
    (docs/operations.md, What recording costs). A missing value stays NaN, which the record's
    JSON writes as null."""
    columns = rows.columns.tolist()
    values = zip(*(rows[column].tolist() for column in columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in values]


@celery_app.task(name=names.PREDICT_CHUNK_TASK)
def predict_chunk(**message: object) -> None:
    """Its keyword arguments are a `ChunkTask`, checked here: a malformed message fails now."""
    task = ChunkTask.model_validate(message)
    job_id, chunk = task.job_id, task.chunk
    state = serving.current()
    attempt = _start(job_id, chunk)
    if attempt < 0:
        log.info("job %s is gone (expired); chunk %s skipped", job_id, chunk)
        return
    payload, owner, chunk_rows = _rows(job_id, chunk)
    if payload is None:  # done already: this was a redelivery or a re-sent duplicate
        return
    if attempt > MAX_CHUNK_ATTEMPTS:
        message = f"chunk {chunk} failed {MAX_CHUNK_ATTEMPTS} times: its worker died each time"
        _store(job_id, chunk, error=message)
        return
    started = time.perf_counter()
    try:
        rows = decode_rows(payload)
        estimates = state.predictor.estimate(
            rows, "full", explain=False, as_of=task.as_of, comps=task.comps
        )
        first_row = chunk * chunk_rows
        encoded = encode_result(estimates, first_row, state.predictor.version)
        records = records_of(
            estimates,
            houses_of(rows),
            [f"{job_id}-{row}" for row in range(first_row, first_row + len(estimates))],
            keys=[owner] * len(estimates),
            variants=["full"] * len(estimates),
            at_ms=round(time.time() * 1000),
            model_version=state.predictor.version,
            model_kind=state.predictor.kind.name,
            job_id=job_id,
            first_row=first_row,
        )
    except (UnknownZipcodeError, AsOfError) as exc:
        unknown = isinstance(exc, UnknownZipcodeError)
        metrics.count_error(ErrorCode.UNKNOWN_ZIPCODE if unknown else ErrorCode.INVALID_AS_OF)
        _store(job_id, chunk, error=str(exc))
        return
    except Exception as exc:  # the job reports failed rather than staying "running" forever
        log.exception("chunk %s of job %s failed", chunk, job_id)
        metrics.count_error(ErrorCode.INTERNAL)
        _store(job_id, chunk, error=f"chunk {chunk}: {type(exc).__name__}")
        return
    metrics.observe_chunk(len(estimates), time.perf_counter() - started)
    _store(job_id, chunk, result=encoded, records=(records, len(estimates)))


@celery_app.task(name=names.PING_TASK)
def ping(reply_to: str) -> None:
    """A round trip through a version's queue: proof for a rollout that the version answers."""
    state = serving.current()
    with state.redis.pipeline() as pipe:
        pipe.rpush(reply_to, PingReply(model_version=state.predictor.version).model_dump_json())
        pipe.expire(reply_to, get_settings().reply_ttl_s)
        pipe.execute()
