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


def test_every_answer_says_its_month_grade_and_spread(
    api: requests.Session, gbm_served: dict, house: dict
):
    body = api.post("/v1/predict", json=house).json()
    # The latest month the model learned from, unless another is asked for.
    assert body["as_of"] == gbm_served["as_of_months"][-1]
    assert body["confidence"] in {"A", "B", "C", "D"} and 0 < body["fsd"] < 1
    assert body["comps"] == []  # off unless asked for


def test_an_earlier_month_prices_the_same_home_in_that_market(
    api: requests.Session, gbm_served: dict, house: dict
):
    first = gbm_served["as_of_months"][0]
    latest = api.post("/v1/predict", json=house).json()
    earlier = api.post("/v1/predict", json=house, params={"as_of": first}).json()
    assert earlier["as_of"] == first
    assert earlier["prediction"] != latest["prediction"]
    _check_ranges(earlier)


def test_a_month_outside_the_models_data_is_a_422_naming_its_months(
    api: requests.Session, gbm_served: dict, house: dict
):
    first, last = gbm_served["as_of_months"]
    answer = api.post("/v1/predict", json=house, params={"as_of": "2030-01"})
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["query", "as_of"]
    assert first in error["msg"] and last in error["msg"]


def test_comps_are_past_sales_near_the_home_most_similar_first(
    api: requests.Session, gbm_served: dict, house: dict
):
    body = api.post("/v1/predict", json=house, params={"comps": 5}).json()
    comps = body["comps"]
    assert len(comps) == 5
    similarity = [c["similarity"] for c in comps]
    assert similarity == sorted(similarity, reverse=True)
    for comp in comps:
        assert comp["sale_date"] < "2015-06" and comp["price"] > 0 and comp["price_as_of"] > 0
        assert comp["distance_miles"] is not None and comp["distance_miles"] < 5
        assert set(comp) >= {"id", "bedrooms", "bathrooms", "sqft_living", "grade"}


def test_the_minimal_form_is_less_certain_than_the_full_one(
    api: requests.Session, gbm_served: dict, future_rows: list[dict]
):
    """Over 20 of the future homes, the 8-field model's ranges are wider on average."""
    spreads = {"full": [], "minimal": []}
    for row in future_rows[:20]:
        spreads["full"].append(api.post("/v1/predict", json=row).json()["fsd"])
        minimal = {k: row[k] for k in MINIMAL_FIELDS}
        spreads["minimal"].append(api.post("/v1/predict/minimal", json=minimal).json()["fsd"])
    assert sum(spreads["minimal"]) > sum(spreads["full"])
