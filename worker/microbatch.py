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

Requests are `PredictRequest` messages in a Redis list, taken with RPOP: a process killed
mid-batch loses the few requests it held, whose callers get a 504 at their deadline and may
retry. That trade is made for the sync path only; batch jobs stay durable Celery tasks.
"""

import logging
import threading
import time
from collections import defaultdict

import pandas as pd
import redis
from pydantic import ValidationError

from shared.model.demographics import UnknownZipcodeError
from shared.model.predictor import Predictor
from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import (
    PREDICT_REQUEST,
    AnyReply,
    ErrorCode,
    ErrorReply,
    EstimateReply,
    PredictRequest,
    Variant,
)
from shared.wire.replies import push_replies

log = logging.getLogger(__name__)


def answer(predictor: Predictor, requests: list[PredictRequest]) -> list[AnyReply]:
    """Replies in request order, from one model call per (variant, explain) group; each reply's
    `batch_size` is the size of the call that answered it."""
    replies: list[AnyReply | None] = [None] * len(requests)
    groups: dict[tuple[Variant, bool], list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        groups[request.variant, request.explain].append(index)
    for (variant, explain), indexes in groups.items():
        group = _answer_group(predictor, [requests[i] for i in indexes], variant, explain)
        for index, reply in zip(indexes, group, strict=True):
            replies[index] = reply
    return replies  # type: ignore[return-value]  # every index belongs to one group


def _answer_group(
    predictor: Predictor, requests: list[PredictRequest], variant: Variant, explain: bool
) -> list[AnyReply]:
    houses = pd.DataFrame([request.house for request in requests])
    try:
        estimates = predictor.estimate(houses, variant, explain=explain)
    except UnknownZipcodeError as exc:
        if len(requests) == 1:
            return [_error(requests[0], ErrorCode.UNKNOWN_ZIPCODE, str(exc), exc.zipcodes)]
        # One bad row must not fail its batch-mates: answer each on its own.
        return [
            reply
            for request in requests
            for reply in _answer_group(predictor, [request], variant, explain)
        ]
    except Exception as exc:  # the callers get an answer now, not a timeout later
        log.exception(
            "prediction failed for a batch of %d (requests %s)",
            len(requests),
            ", ".join(r.request_id for r in requests),
        )
        return [_error(r, ErrorCode.INTERNAL, type(exc).__name__) for r in requests]
    return [
        EstimateReply.model_construct(  # from the predictor's typed estimate, not revalidated
            **dict(estimate),
            request_id=request.request_id,
            model_version=predictor.version,
            model_kind=predictor.kind.name,
            batch_size=len(requests),
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


class MicroBatcher(threading.Thread):
    def __init__(self, predictor: Predictor, client: redis.Redis, settings: Settings) -> None:
        super().__init__(name="realty-microbatch", daemon=True)
        self.predictor = predictor
        self.client = client
        self.queue = names.requests_list(predictor.version)
        self.max_size = settings.microbatch_max_size
        self.max_wait_s = settings.microbatch_max_wait_ms / 1000
        self.reply_ttl_s = settings.reply_ttl_s
        self.stopping = threading.Event()
        self.last_size = 0

    def take(self) -> list[str]:
        """Block for the first request, then gather what else is waiting."""
        first = self.client.brpop([self.queue], timeout=1)
        if first is None:
            return []
        items = [first[1]]
        give_up = time.monotonic() + (self.max_wait_s if self.last_size > 1 else 0)
        while len(items) < self.max_size:
            more = self.client.rpop(self.queue, self.max_size - len(items))
            if more:
                items.extend(more)
            elif time.monotonic() >= give_up:
                break
            else:
                time.sleep(0.0002)
        return items

    def serve(self, items: list[str]) -> None:
        now = time.time()
        requests = [r for r in _decode(items) if r.deadline > now]  # else: its 504 was sent
        if not requests:
            return
        replies = answer(self.predictor, requests)
        push_replies(self.client, zip(requests, replies, strict=True), self.reply_ttl_s)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                items = self.take()
                if items:
                    self.serve(items)
                self.last_size = len(items)
            except redis.RedisError as exc:  # Redis away: the API answers 503 meanwhile
                log.warning("micro-batcher: %s", exc)
                self.stopping.wait(1)
            except Exception:  # never die silently while the heartbeat says "ready"
                log.exception("micro-batcher: unexpected error; continuing")
                self.stopping.wait(0.1)

    def stop(self) -> None:
        self.stopping.set()
