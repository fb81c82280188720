"""The served improved model (a `gbm` bundle) answers with price ranges, the factors behind the
price and warnings, through the real API, queue and worker."""

import pytest
import requests

from shared.model.contract import MINIMAL_FIELDS


@pytest.fixture
def gbm_served(api: requests.Session) -> dict:
    active = next(m for m in api.get("/v1/models").json() if m["active"])
    if active["kind"] != "gbm":
        pytest.skip(f"the stack serves a {active['kind']} bundle; `make train` adds the gbm one")
    return active


def _check_ranges(body: dict) -> None:
    price, i80, i95 = body["prediction"], body["interval_80"], body["interval_95"]
    assert i95["low"] < i80["low"] < price < i80["high"] < i95["high"]


def test_full_answer_has_ranges_factors_and_no_warnings(
    api: requests.Session, gbm_served: dict, house: dict
):
    response = api.post("/v1/predict", json=house, params={"explain": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_kind"] == "gbm" and body["model_version"] == gbm_served["version"]
    _check_ranges(body)
    assert 1 <= len(body["factors"]) <= 5
    for factor in body["factors"]:
        assert set(factor) == {"feature", "value", "effect_usd", "text"}
        assert "$" in factor["text"]
    assert body["warnings"] == []


def test_minimal_answer_has_its_own_ranges_and_factors(
    api: requests.Session, gbm_served: dict, house: dict
):
    minimal = {k: house[k] for k in MINIMAL_FIELDS}
    response = api.post("/v1/predict/minimal", json=minimal, params={"explain": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    _check_ranges(body)
    assert body["factors"]
    assert {f["feature"] for f in body["factors"]} <= {
        "living_area",
        "lot",
        "bedrooms",
        "bathrooms",
        "floors",
        "location",
        "census",
    }


def test_factors_come_only_when_asked_for(api: requests.Session, gbm_served: dict, house: dict):
    body = api.post("/v1/predict", json=house).json()
    assert body["factors"] == []
    _check_ranges(body)


def test_input_beyond_the_training_range_is_warned_about(
    api: requests.Session, gbm_served: dict, house: dict
):
    huge = house | {"sqft_living": 30_000, "sqft_above": 30_000, "sqft_basement": 0}
    response = api.post("/v1/predict", json=huge)
    assert response.status_code == 200, response.text
    warnings = response.json()["warnings"]
    assert any(w.startswith("sqft_living 30,000 is above the largest") for w in warnings)
