"""The workers' metrics for Prometheus: written by each Celery pool process, served for all the
processes of a pool together by the pool itself (worker/metrics_server.py, through
prometheus-client's multiprocess mode: shared/multiprocess_metrics.py).

Names, each labelled with the `version` the process serves:
- `realty_worker_microbatch_size`: histogram, one observation per model call answering single
  predictions (its number of requests);
- `realty_worker_model_seconds{call}`: histogram of the model calls' time, `call` being
  `microbatch` or `chunk` (a batch job's chunk);
- `realty_worker_predictions_total`: single predictions answered;
- `realty_worker_batch_rows_total`: batch-job rows estimated (`rate()` of it: rows per second);
- `realty_worker_errors_total{code}`: requests or chunks the model failed, by `ErrorCode`;
- `realty_records_pushed_total`, `realty_records_dropped_total`: estimates handed to the
  record's buffer in Redis, and those refused because it was full (never expected: an alert).

Called once per model call or chunk, never per request, from the micro-batcher's thread and the
task's: each call is a lock and a few memory-mapped writes, a few µs against milliseconds of
model time.
"""

from functools import cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.settings import get_settings

REGISTRY = CollectorRegistry(auto_describe=True)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# From one row's millisecond to a 10,000-row chunk's second, and the 30 s task time limit.
MODEL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MICROBATCH_SIZE = Histogram(
    "realty_worker_microbatch_size",
    "Requests answered by each model call of single predictions.",
    ["version"],
    buckets=BATCH_SIZE_BUCKETS,
    registry=REGISTRY,
)
MODEL_SECONDS = Histogram(
    "realty_worker_model_seconds",
    "Time of each model call: a micro-batch of single predictions, or a batch job's chunk.",
    ["version", "call"],
    buckets=MODEL_BUCKETS,
    registry=REGISTRY,
)
PREDICTIONS = Counter(
    "realty_worker_predictions", "Single predictions answered.", ["version"], registry=REGISTRY
)
BATCH_ROWS = Counter(
    "realty_worker_batch_rows", "Batch-job rows estimated.", ["version"], registry=REGISTRY
)
ERRORS = Counter(
    "realty_worker_errors",
    "Requests or chunks the model failed, by error code.",
    ["version", "code"],
    registry=REGISTRY,
)
RECORDS_PUSHED = Counter(
    "realty_records_pushed",
    "Estimates handed to the record's buffer in Redis.",
    registry=REGISTRY,
)
RECORDS_DROPPED = Counter(
    "realty_records_dropped",
    "Estimates not recorded because the record's buffer was full (records_buffer_rows).",
    registry=REGISTRY,
)


@cache
def _version() -> str:
    """The bundle this process serves (set by `python -m worker` before the pool starts)."""
    return get_settings().model_version or ""


@cache
def _microbatch_series() -> tuple[Any, Any, Any]:
    version = _version()
    return (
        MICROBATCH_SIZE.labels(version),
        MODEL_SECONDS.labels(version, "microbatch"),
        PREDICTIONS.labels(version),
    )


@cache
def _chunk_series() -> tuple[Any, Any]:
    return MODEL_SECONDS.labels(_version(), "chunk"), BATCH_ROWS.labels(_version())


def observe_microbatch(size: int, seconds: float) -> None:
    """One model call that answered `size` single predictions in `seconds`."""
    sizes, times, answered = _microbatch_series()
    sizes.observe(size)
    times.observe(seconds)
    answered.inc(size)


def observe_chunk(rows: int, seconds: float) -> None:
    """One batch-job chunk of `rows` rows estimated in `seconds`."""
    times, estimated = _chunk_series()
    times.observe(seconds)
    estimated.inc(rows)


def count_error(code: str, count: int = 1) -> None:
    """`count` requests (or one chunk) failed with `code`, an `ErrorCode` value: a fixed set,
    so the label cannot grow without bound."""
    ERRORS.labels(_version(), code).inc(count)


def count_records(pushed: int, dropped: int) -> None:
    """What one push to the record's buffer did: rows buffered, rows refused."""
    if pushed:
        RECORDS_PUSHED.inc(pushed)
    if dropped:
        RECORDS_DROPPED.inc(dropped)
