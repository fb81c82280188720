"""One model call answers a whole micro-batch, in request order, and one bad row fails alone."""

import time
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from shared.model.bundles import load_bundle
from shared.model.market import AsOfError
from shared.model.predictor import Predictor
from shared.settings import Settings
from shared.wire.messages import (
    REPLY,
    ErrorCode,
    ErrorReply,
    Estimate,
    EstimateReply,
    PredictRequest,
    Variant,
)
from worker.microbatch import MicroBatcher, ServiceRate, answer
from worker.request_queue import Taken


@pytest.fixture(scope="module")
def predictor(trained, bundle_key: SecretStr) -> Predictor:
    settings, manifest = trained
    return Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))


def request(house: dict[str, Any], variant: Variant = "full", n: int = 0) -> PredictRequest:
    return PredictRequest(
        request_id=f"r{n}", reply_to="inbox", house=house, variant=variant, deadline_ms=0
    )


def estimates(replies: list[Any]) -> list[EstimateReply]:
    assert all(isinstance(r, EstimateReply) for r in replies), replies
    return replies


def test_replies_come_in_request_order_and_equal_single_answers(predictor, future_rows):
    rows = future_rows[:10]
    replies = estimates(answer(predictor, [request(row, n=i) for i, row in enumerate(rows)]))
    singles = estimates([answer(predictor, [request(row)])[0] for row in rows])
    assert [r.prediction for r in replies] == [s.prediction for s in singles]
    assert [r.request_id for r in replies] == [f"r{i}" for i in range(10)]
    assert {r.batch_size for r in replies} == {10}
    assert {r.model_version for r in replies} == {predictor.version}


def test_variants_in_one_batch_are_answered_by_their_own_model_call(predictor, future_rows):
    replies = answer(predictor, [request(future_rows[0]), request(future_rows[1], "minimal", 1)])
    assert [r.batch_size for r in estimates(replies)] == [1, 1]


def test_an_unknown_zipcode_fails_only_its_own_row(predictor, future_rows):
    bad = future_rows[1] | {"zipcode": "00000"}
    replies = answer(
        predictor, [request(future_rows[0]), request(bad, n=1), request(future_rows[2], n=2)]
    )
    assert isinstance(replies[1], ErrorReply)
    assert replies[1].error is ErrorCode.UNKNOWN_ZIPCODE and replies[1].zipcodes == ["00000"]
    assert isinstance(replies[0], EstimateReply) and isinstance(replies[2], EstimateReply)


def test_a_reply_survives_the_wire_as_the_same_typed_message(predictor, future_rows):
    reply = answer(predictor, [request(future_rows[0])])[0]
    assert REPLY.validate_json(reply.model_dump_json()) == reply


def test_the_service_rate_starts_at_the_first_batch_and_follows_larger_ones():
    rate = ServiceRate()
    rate.add(1, 0.004)  # one request alone: 250 a second
    assert rate.per_s == pytest.approx(250)
    for _ in range(30):  # under load, batches of 30 in 15 ms: 2,000 a second
        rate.add(30, 0.015)
    assert rate.per_s == pytest.approx(2000, rel=0.01)
    rate.add(0, 0.0)  # an empty round changes nothing
    assert rate.per_s == pytest.approx(2000, rel=0.01)


class RecordingPredictor:
    """Answers every row with its position in the call; refuses the month 2099-01 as a bundle
    that never learned it would. Records each call's options and size."""

    version, kind = "v9", type("Kind", (), {"name": "gbm"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str | None, int, int]] = []

    def estimate(self, houses, variant, explain, as_of=None, comps=0):
        self.calls.append((variant, explain, as_of, comps, len(houses)))
        if as_of == "2099-01":
            raise AsOfError("as_of 2099-01 is outside the months this model learned from")
        return [Estimate(prediction=float(i), as_of=as_of or "2015-05") for i in range(len(houses))]


def test_requests_asking_other_months_or_comps_get_model_calls_of_their_own(future_rows):
    predictor = RecordingPredictor()
    asks = [(None, 0), ("2014-12", 0), (None, 5), (None, 0), ("2014-12", 0)]
    requests = [
        request(future_rows[i], n=i).model_copy(update={"as_of": as_of, "comps": comps})
        for i, (as_of, comps) in enumerate(asks)
    ]
    replies = estimates(answer(predictor, requests))  # type: ignore[arg-type]
    assert predictor.calls == [  # in the order each kind of call first appears
        ("full", False, None, 0, 2),
        ("full", False, "2014-12", 0, 2),
        ("full", False, None, 5, 1),
    ]
    assert [r.as_of for r in replies] == ["2015-05", "2014-12", "2015-05", "2015-05", "2014-12"]
    assert [r.batch_size for r in replies] == [2, 2, 1, 2, 2]


def test_a_month_the_bundle_does_not_know_fails_only_the_requests_asking_it(future_rows):
    requests = [
        request(future_rows[0]),
        request(future_rows[1], n=1).model_copy(update={"as_of": "2099-01"}),
    ]
    ok, refused = answer(RecordingPredictor(), requests)  # type: ignore[arg-type]
    assert isinstance(ok, EstimateReply)
    assert isinstance(refused, ErrorReply) and refused.error is ErrorCode.INVALID_AS_OF
    assert "2099-01" in refused.detail and refused.request_id == "r1"


class StallingQueue:
    """A request queue whose exchange stalls after Redis has read its clock (the process
    stopped or swapped out while the answer was on its way), handing over `items` once."""

    def __init__(self, redis_ms: int, stall_s: float, items: list[str] | None = None) -> None:
        self.redis_ms, self.stall_s, self.items = redis_ms, stall_s, items or []

    def exchange(self, answered: Any, take: int, rate: float) -> Taken:
        time.sleep(self.stall_s)
        items, self.items = self.items, []
        return Taken(items, self.redis_ms, committed=True)

    def wait(self, timeout_s: int) -> str | None:
        return None


def test_a_stall_after_redis_read_its_clock_makes_the_clock_run_ahead_never_behind(predictor):
    batcher = MicroBatcher(predictor, redis.Redis(port=9), Settings())
    batcher.queue = StallingQueue(redis_ms=1_000_000, stall_s=0.3)  # type: ignore[assignment]
    batcher.take()
    # Redis read 1,000,000 ms, then the stall: it is now at least 300 ms later on its clock,
    # so a request whose deadline fell in the stall must be judged late.
    assert batcher._redis_now_ms() >= 1_000_000 + 300


def test_a_request_whose_deadline_passed_in_a_stall_is_not_computed(predictor, future_rows):
    """Taken before a stall, judged after it: Redis's reading came before the stall, the
    judgement must not."""
    late, alive = (
        PredictRequest(
            request_id=name, reply_to="inbox", house=future_rows[0], deadline_ms=1_000_000 + ms
        ).model_dump_json()
        for name, ms in (("late", 100), ("alive", 60_000))
    )
    batcher = MicroBatcher(predictor, redis.Redis(port=9), Settings())
    batcher.queue = StallingQueue(1_000_000, 0.3, [late, alive])  # type: ignore[assignment]
    batcher.serve(batcher.take())
    assert batcher._answered is not None
    assert [request.request_id for request, _ in batcher._answered.replies] == ["alive"]


class FailingPredictor(RecordingPredictor):
    def estimate(self, houses, variant, explain, as_of=None, comps=0):
        raise RuntimeError("a bug of ours")


def test_a_failed_model_call_is_logged_with_its_request_ids_as_a_field(future_rows, caplog):
    requests = [request(house, n=n) for n, house in enumerate(future_rows[:3])]
    with caplog.at_level("ERROR", logger="worker.microbatch"):
        replies = answer(FailingPredictor(), requests)  # type: ignore[arg-type]
    assert {r.error for r in replies} == {ErrorCode.INTERNAL}
    (line,) = [r for r in caplog.records if "prediction failed" in r.getMessage()]
    assert line.request_ids == ["r0", "r1", "r2"]  # what `jq` selects on in the JSON line
