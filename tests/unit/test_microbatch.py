"""One model call answers a whole micro-batch, in request order, and one bad row fails alone."""

from typing import Any

import pytest

from shared.bundles import load_bundle
from shared.predictor import Predictor
from worker.microbatch import answer


@pytest.fixture(scope="module")
def predictor(trained) -> Predictor:
    settings, manifest = trained
    return Predictor(load_bundle(settings.model_dir, manifest.version))


def request(house: dict[str, Any], variant: str = "full") -> dict[str, Any]:
    return {"house": house, "variant": variant, "reply_to": "r", "deadline": 0}


def test_replies_come_in_request_order_and_equal_single_answers(predictor, future_rows):
    rows = future_rows[:10]
    replies = answer(predictor, [request(row) for row in rows])
    singles = [answer(predictor, [request(row)])[0]["prediction"] for row in rows]
    assert [r["prediction"] for r in replies] == singles
    assert {r["batch_size"] for r in replies} == {10}
    assert {r["model_version"] for r in replies} == {predictor.version}


def test_variants_in_one_batch_are_answered_by_their_own_model_call(predictor, future_rows):
    replies = answer(predictor, [request(future_rows[0]), request(future_rows[1], "minimal")])
    assert all("prediction" in r for r in replies)


def test_an_unknown_zipcode_fails_only_its_own_row(predictor, future_rows):
    bad = future_rows[1] | {"zipcode": "00000"}
    replies = answer(predictor, [request(future_rows[0]), request(bad), request(future_rows[2])])
    assert replies[1]["error"] == "unknown_zipcode"
    assert "prediction" in replies[0] and "prediction" in replies[2]
