"""The API's own metrics for Prometheus: requests by route template and status, errors by type,
and what each single prediction's reply says of its trip (time queued, time in the model, size
of the micro-batch that answered it).

Names (all in `/metrics`, beside the gauges read from Redis):
- `realty_http_request_duration_seconds{method,route,status}`: a histogram, so `_count` is the
  request count; `route` is the route's template (`/v1/batch/{job_id}`), never the raw path, and
  `unmatched` for a path no route has, so no client can make new series by inventing paths;
- `realty_api_errors_total{type}`: error answers by their `api.errors` class (`invalid_input`,
  `unauthorized`, `too_many_requests`, `service_unavailable`…; `internal` for a crash);
- `realty_prediction_queued_seconds{version}`, `realty_prediction_model_seconds{version}`,
  `realty_prediction_batch_size{version}`: from each `EstimateReply` (`queued_ms`, `model_ms`,
  `batch_size`), as the API sees them: one observation per answered request.

Several uvicorn processes share them through prometheus-client's multiprocess mode
(shared/multiprocess_metrics.py says why). Cheap on the hot path: there, an observation only
adds to plain numbers of this process (`Tally`: a bucket found by bisection, no lock, since
only the event loop's thread observes), and these are added to prometheus-client's histograms
once a second, before this process answers a scrape, and at exit. Observing each request
directly would cost a lock and two memory-mapped writes per histogram; the measured costs are
in docs/operations.md.
"""

import asyncio
import atexit
import re
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from api.errors import ServiceError
from shared.exposition import exposition
from shared.wire.messages import EstimateReply

REGISTRY = CollectorRegistry(auto_describe=True)
FLUSH_EVERY_S = 1.0
# The 150 ms p99 target is a bound, so the latency alert reads the share under it exactly.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From a queue's usual millisecond to its 2 s wait limit (`queue_wait_s`) and the deadline.
TRIP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

REQUEST_SECONDS = Histogram(
    "realty_http_request_duration_seconds",
    "HTTP requests by method, route template and status: time from the request's arrival "
    "to the end of its answer.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ERRORS = Counter(
    "realty_api_errors",
    "Error answers by type (the api.errors class; internal: a crash).",
    ["type"],
    registry=REGISTRY,
)
QUEUED_SECONDS = Histogram(
    "realty_prediction_queued_seconds",
    "Time single predictions waited in their version's queue (Redis's clock).",
    ["version"],
    buckets=TRIP_BUCKETS,
    registry=REGISTRY,
)
MODEL_SECONDS = Histogram(
    "realty_prediction_model_seconds",
    "Time of the model call that answered each single prediction.",
    ["version"],
    buckets=TRIP_BUCKETS,
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "realty_prediction_batch_size",
    "Size of the micro-batch that answered each single prediction.",
    ["version"],
    buckets=BATCH_SIZE_BUCKETS,
    registry=REGISTRY,
)


class Tally:
    """Observations of one histogram series not yet added to it."""

    __slots__ = ("bounds", "counts", "series", "total")

    def __init__(self, series: Any) -> None:
        self.series = series
        # prometheus-client's own upper bounds, +Inf last; its buckets count apart (not
        # cumulatively) until collected, so a bucket's count adds to the same bucket.
        self.bounds: list[float] = list(series._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        for bucket, count in zip(self.series._buckets, self.counts, strict=True):
            if count:
                bucket.inc(count)
        self.series._sum.inc(self.total)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0


_tallies: dict[tuple[Any, ...], Tally] = {}
_pending: set[Tally] = set()
_flush_due = False


def _tally(metric: Histogram, *labels: str) -> Tally:
    key = (metric, *labels)
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = Tally(metric.labels(*labels))
    return tally


def _observe(tally: Tally, value: float) -> None:
    global _flush_due
    tally.observe(value)
    _pending.add(tally)
    if not _flush_due:
        try:
            asyncio.get_running_loop().call_later(FLUSH_EVERY_S, flush)
        except RuntimeError:  # no event loop: observed outside the server, add it now
            flush()
            return
        _flush_due = True


def flush() -> None:
    """Add what this process observed since the last flush to prometheus-client's series."""
    global _flush_due
    _flush_due = False
    while _pending:
        _pending.pop().flush()


atexit.register(flush)


def route_of(scope: dict[str, Any]) -> str:
    """The template of the route that took the request (also for a 405), else `unmatched`."""
    route = scope.get("route")
    return getattr(route, "path", UNMATCHED) if route is not None else UNMATCHED


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    if method not in METHODS:
        method = "other"
    _observe(_tally(REQUEST_SECONDS, method, route, str(status)), seconds)


def observe_reply(reply: EstimateReply) -> None:
    """The trip of one answered single prediction, as its reply tells it."""
    version = reply.model_version
    _observe(_tally(QUEUED_SECONDS, version), reply.queued_ms / 1000)
    _observe(_tally(MODEL_SECONDS, version), reply.model_ms / 1000)
    _observe(_tally(BATCH_SIZE, version), reply.batch_size)


_type_names: dict[type, str] = {}


def error_type(error: ServiceError) -> str:
    """`InvalidInputError` -> `invalid_input`; the base class (a framework error such as a 405,
    or a crash) by its status: `http_405`, `internal` for a 500."""
    kind = type(error)
    if kind is ServiceError:
        return "internal" if error.status_code == 500 else f"http_{error.status_code}"
    name = _type_names.get(kind)
    if name is None:
        words = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__.removesuffix("Error"))
        name = _type_names[kind] = words.lower()
    return name


def count_error(error: ServiceError) -> None:
    ERRORS.labels(error_type(error)).inc()


def api_exposition() -> bytes:
    """The request metrics of every API process (this one's up to now)."""
    flush()
    return exposition(REGISTRY)
