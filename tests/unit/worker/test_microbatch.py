"""One model call answers a whole micro-batch, in request order, and one bad row fails alone."""

from typing import Any

import pytest
from pydantic import SecretStr

from shared.model.bundles import load_bundle
from shared.model.predictor import Predictor
from shared.wire.messages import (
    REPLY,
    ErrorCode,
    ErrorReply,
    EstimateReply,
    PredictRequest,
    Variant,
)
from worker.microbatch import ServiceRate, answer


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
