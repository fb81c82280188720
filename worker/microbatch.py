"""Adaptive micro-batching of single predictions, inside each Celery worker process.

A waiting API request costs the model one row, but a model call costs the same fixed overhead
(DataFrame, demographics join, derived features, estimator dispatch) whatever its size: one call
on 64 rows takes about as long as a few calls on one row. So each pool process runs this loop
next to its Celery task loop: it takes every request waiting in its version's request list (up to
`microbatch_max_size`), answers them with one `Predictor.estimate` call per variant, and pushes
the replies to their API processes' inboxes.

Adaptive: with one request in flight it answers at once (no added latency); under load the
requests that arrive while one batch is computed form the next, so batches grow with the load
by themselves. Once the last batch held more than one request it can also wait up to
`microbatch_max_wait_ms` for more; off by default, since on the measured machine every extra
wait cost more throughput than the larger batches saved (docs/operations.md, Tuning).

Requests are `PredictRequest` messages in a Redis list, taken through `worker.request_queue`: a
process killed mid-batch has its requests put back for another (none lost, none answered
twice), and deadlines are judged on Redis's clock, not this host's.

The estimates' record (worker/records.py) goes out with the replies, in the same script call, so
a batch is answered and recorded together or not at all; each model call is announced to Flower
(worker/flower_events.py) from a thread of its own, after the fact.
"""

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import pandas as pd
import redis
from pydantic import ValidationError

from shared.model.demographics import UnknownZipcodeError
from shared.model.market import AsOfError
from shared.model.predictor import Predictor
from shared.settings import Settings
from shared.wire.messages import (
    PREDICT_REQUEST,
    AnyReply,
    ErrorCode,
    ErrorReply,
    EstimateReply,
    PredictRequest,
    Variant,
)
from worker import metrics
from worker.flower_events import ModelCallEvents
from worker.records import records_of
from worker.request_queue import Answered, RequestQueue, Taken

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Call:
    """What one model call is asked: requests that differ in any of these are answered apart."""

    variant: Variant
    explain: bool
    as_of: str | None
    comps: int

    @classmethod
    def of(cls, request: PredictRequest) -> "_Call":
        return cls(request.variant, request.explain, request.as_of, request.comps)


@dataclass(frozen=True)
class ModelCall:
    """One call of the model, as Flower and the metrics show it."""

    size: int
    seconds: float
    variant: Variant
    error: str | None = None  # the error code when it failed for every request in it


def answer(
    predictor: Predictor,
    requests: list[PredictRequest],
    now_ms: int = 0,
    calls: list[ModelCall] | None = None,
) -> list[AnyReply]:
    """Replies in request order, from one model call per kind of call; each reply's
    `batch_size` is the size of the call that answered it, `model_ms` its time and
    `queued_ms` its request's wait up to `now_ms` (Redis's clock, when it was taken). Each
    model call made is appended to `calls`."""
    replies: list[AnyReply | None] = [None] * len(requests)
    groups: dict[_Call, list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        groups[_Call.of(request)].append(index)
    for call, indexes in groups.items():
        group = _answer_group(predictor, [requests[i] for i in indexes], call, now_ms, calls)
        for index, reply in zip(indexes, group, strict=True):
            replies[index] = reply
    return replies  # type: ignore[return-value]  # every index belongs to one group


def _answer_group(
    predictor: Predictor,
    requests: list[PredictRequest],
    call: _Call,
    now_ms: int,
    calls: list[ModelCall] | None,
) -> list[AnyReply]:
    started = time.perf_counter()

    def made(error: ErrorCode | None = None) -> float:
        seconds = time.perf_counter() - started
        if calls is not None:
            calls.append(ModelCall(len(requests), seconds, call.variant, error))
        return seconds

    houses = pd.DataFrame([request.house for request in requests])
    try:
        estimates = predictor.estimate(
            houses, call.variant, explain=call.explain, as_of=call.as_of, comps=call.comps
        )
    except AsOfError as exc:  # the month, not a house, is wrong: the same for every request
        made(ErrorCode.INVALID_AS_OF)
        return [_error(r, ErrorCode.INVALID_AS_OF, str(exc)) for r in requests]
    except UnknownZipcodeError as exc:
        if len(requests) == 1:
            made(ErrorCode.UNKNOWN_ZIPCODE)
            return [_error(requests[0], ErrorCode.UNKNOWN_ZIPCODE, str(exc), exc.zipcodes)]
        # One bad row must not fail its batch-mates: answer each on its own.
        return [
            reply
            for request in requests
            for reply in _answer_group(predictor, [request], call, now_ms, calls)
        ]
    except Exception as exc:  # the callers get an answer now, not a timeout later
        made(ErrorCode.INTERNAL)
        ids = [r.request_id for r in requests]
        log.exception(  # the ids as a field too: `jq 'select(.request_ids | index("…"))'`
            "prediction failed for a batch of %d (requests %s)",
            len(requests),
            ", ".join(ids),
            extra={"request_ids": ids} | ({"request_id": ids[0]} if len(ids) == 1 else {}),
        )
        return [_error(r, ErrorCode.INTERNAL, type(exc).__name__) for r in requests]
    model_ms = round(made() * 1000, 3)
    return [
        EstimateReply.model_construct(  # from the predictor's typed estimate, not revalidated
            **dict(estimate),
            request_id=request.request_id,
            model_version=predictor.version,
            model_kind=predictor.kind.name,
            batch_size=len(requests),
            queued_ms=float(max(0, now_ms - request.sent_ms)) if request.sent_ms else 0.0,
            model_ms=model_ms,
        )
        for request, estimate in zip(requests, estimates, strict=True)
    ]


def _error(
    request: PredictRequest, code: ErrorCode, detail: str, zipcodes: list[str] | None = None
) -> ErrorReply:
    return ErrorReply(
        request_id=request.request_id, error=code, detail=detail, zipcodes=zipcodes or []
    )


def _decode(items: list[str]) -> list[PredictRequest]:
    """The valid requests among `items`; a malformed one is logged and dropped (its caller, if
    any, gets its 504), never allowed to stop the loop."""
    requests = []
    for raw in items:
        try:
            requests.append(PREDICT_REQUEST.validate_json(raw))
        except ValidationError as exc:
            log.error("micro-batcher: dropped a malformed request (%s): %.200s", exc, raw)
    return requests


@dataclass
class ServiceRate:
    """Requests per second this micro-batcher answers while busy (a moving average over
    batches): what the API bounds the version's queue by. Batches grow with the load, so the
    rate seen under load is the one that matters, and it is reached within a few batches."""

    per_s: float = 0.0
    weight: float = 0.2

    def add(self, requests: int, seconds: float) -> None:
        if requests and seconds > 0:
            rate = requests / seconds
            self.per_s = rate if not self.per_s else self.per_s + self.weight * (rate - self.per_s)


class MicroBatcher(threading.Thread):
    def __init__(
        self,
        predictor: Predictor,
        client: redis.Redis,
        settings: Settings,
        events: ModelCallEvents | None = None,
    ) -> None:
        super().__init__(name="realty-microbatch", daemon=True)
        self.predictor = predictor
        self.queue = RequestQueue(
            client,
            predictor.version,
            settings.processing_lease_s,
            settings.reply_ttl_s,
            settings.records_buffer_rows,
        )
        self.events = events
        self.max_size = settings.microbatch_max_size
        self.max_wait_s = settings.microbatch_max_wait_ms / 1000
        self.reap_every_s = settings.processing_lease_s / 3
        self.rate = ServiceRate()
        self.stopping = threading.Event()
        self.last_size = 0
        self._answered: Answered | None = None
        self._redis_ms, self._redis_ms_at = 0, time.monotonic()  # Redis's TIME, when read
        self._next_reap = 0.0

    def take(self) -> Taken:
        """Send the last batch's replies and take what waits; when nothing does, block for the
        first request, then gather what else is waiting."""
        taken = self._exchange(self.max_size)
        if taken.items:
            return self._gather(taken)
        first = self.queue.wait(timeout_s=1)
        if first is None:
            return taken
        if self.last_size <= 1:  # idle until now: answer it at once, one round trip fewer
            return Taken([first], self._redis_now_ms(), committed=True)
        more = self._exchange(self.max_size - 1)
        return self._gather(Taken([first, *more.items], more.now_ms, more.committed))

    def _exchange(self, take: int) -> Taken:
        # Timed from before the call: a stall between Redis reading its clock and this process
        # reading the answer (SIGSTOP, a swapped-out host) must make `_redis_now_ms` run ahead,
        # never behind, or a request past its deadline would be judged alive (and computed for
        # a caller who has had its 504).
        sent = time.monotonic()
        taken = self.queue.exchange(self._answered, take, self.rate.per_s)
        if self._answered is not None and not taken.committed:
            log.warning("micro-batcher: a held batch was requeued before it was answered")
        elif self._answered is not None:
            recorded = self._answered.record_count
            metrics.count_records(taken.buffered, recorded - taken.buffered)
        self._answered = None
        self._redis_ms, self._redis_ms_at = taken.now_ms, sent
        return taken

    def _redis_now_ms(self) -> int:
        """Redis's time now, from its last reading plus the time elapsed since that reading was
        asked for (at most a second ago): still Redis's clock, not this host's, and never
        behind it."""
        return self._redis_ms + round((time.monotonic() - self._redis_ms_at) * 1000)

    def _gather(self, taken: Taken) -> Taken:
        """With `microbatch_max_wait_ms`, and only under load, wait a little for more."""
        if self.last_size <= 1 or not self.max_wait_s:
            return taken
        items, now_ms = list(taken.items), taken.now_ms
        give_up = time.monotonic() + self.max_wait_s
        while len(items) < self.max_size and time.monotonic() < give_up:
            time.sleep(0.0002)
            more = self._exchange(self.max_size - len(items))
            items += more.items
            now_ms = more.now_ms
        return Taken(items, now_ms, taken.committed)

    def _reap_if_due(self) -> None:
        if time.monotonic() >= self._next_reap:
            self._next_reap = time.monotonic() + self.reap_every_s
            if requeued := self.queue.reap():
                log.warning("micro-batcher: requeued %d requests of a lost process", requeued)

    def serve(self, taken: Taken) -> None:
        """Answer the held requests; the replies go out with the next exchange. A request past
        its deadline is dropped unanswered: its caller has had (or is about to get) its 504."""
        started = time.perf_counter()
        # Judged now, not when Redis handed them over: the process may have stalled between.
        now_ms = max(taken.now_ms, self._redis_now_ms())
        requests = [r for r in _decode(taken.items) if r.deadline_ms > now_ms]
        calls: list[ModelCall] = []
        answers = answer(self.predictor, requests, now_ms, calls)
        replies = list(zip(requests, answers, strict=True))
        self._answered = self._with_records(replies)
        self.rate.add(len(taken.items), time.perf_counter() - started)
        for call in calls:
            if call.error is None:
                metrics.observe_microbatch(call.size, call.seconds)
            else:
                metrics.count_error(call.error, call.size)
        if self.events is not None:
            self.events.send(calls)

    def _with_records(self, replies: list[tuple[PredictRequest, AnyReply]]) -> Answered:
        """The replies and the record of their estimates, to go out together."""
        estimated = [(r, reply) for r, reply in replies if isinstance(reply, EstimateReply)]
        if not estimated:
            return Answered(replies)
        records = records_of(
            [reply for _, reply in estimated],
            [request.house for request, _ in estimated],
            [request.request_id for request, _ in estimated],
            keys=[request.key for request, _ in estimated],
            variants=[request.variant for request, _ in estimated],
            at_ms=self._redis_now_ms(),
            model_version=self.predictor.version,
            model_kind=self.predictor.kind.name,
        )
        return Answered(replies, records, len(estimated))

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                taken = self.take()
                if taken.items:
                    self.serve(taken)
                self.last_size = len(taken.items)
                self._reap_if_due()
            except redis.RedisError as exc:  # Redis away: the API answers 503 meanwhile
                log.warning("micro-batcher: %s", exc)
                self.stopping.wait(1)
            except Exception:  # never die silently while the heartbeat says "ready"
                log.exception("micro-batcher: unexpected error; continuing")
                self._answered = Answered([])  # let the held batch go (callers get 504)
                self.stopping.wait(0.1)
        try:  # the last batch's replies, then leave
            self._exchange(0)
            self.queue.release()
        except redis.RedisError as exc:  # the reaper requeues what is held
            log.warning("micro-batcher: could not hand over on stopping: %s", exc)

    def stop(self) -> None:
        self.stopping.set()
