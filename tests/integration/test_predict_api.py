"""POST /v1/predict and /v1/predict/minimal: answers, and clear 4xx for bad input."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from stack import as_rows, streamed

from shared.model.contract import MINIMAL_FIELDS, MODEL_KINDS


def test_full_house_gets_a_price_with_version_and_request_id(api: requests.Session, house: dict):
    response = api.post("/v1/predict", json=house)
    assert response.status_code == 200, response.text
    body = response.json()
    assert 50_000 < body["prediction"] < 5_000_000
    assert body["model_version"].startswith("v")
    served = next(m for m in api.get("/v1/models").json() if m["version"] == body["model_version"])
    assert body["model_kind"] == served["kind"] in MODEL_KINDS
    assert len(body["request_id"]) == 32
    assert body["currency"] == "USD"


def test_minimal_endpoint_needs_only_the_model_fields_and_agrees(
    api: requests.Session, house: dict
):
    """The baseline's minimal variant is its full model; a gbm bundle has a separate minimal
    estimator (trained on these fields only), so its answer differs but stays close."""
    full = api.post("/v1/predict", json=house).json()
    minimal = api.post("/v1/predict/minimal", json={k: house[k] for k in MINIMAL_FIELDS})
    assert minimal.status_code == 200, minimal.text
    answer = minimal.json()
    assert answer["model_version"] == full["model_version"]
    if full["model_kind"] == "baseline":
        assert answer["prediction"] == full["prediction"]
    else:
        assert 0.5 < answer["prediction"] / full["prediction"] < 2


def test_known_columns_an_endpoint_does_not_use_are_ignored(api: requests.Session, house: dict):
    response = api.post("/v1/predict/minimal", json=house | {"price": 1, "id": "7", "date": "x"})
    assert response.status_code == 200, response.text


def test_zipcode_may_be_a_number(api: requests.Session, house: dict):
    response = api.post("/v1/predict", json=house | {"zipcode": int(house["zipcode"])})
    assert response.status_code == 200, response.text


def _locations(response: requests.Response) -> list[tuple]:
    return [tuple(error["loc"]) for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bedrooms": None}, "bedrooms"),
        ({"bedrooms": "three"}, "bedrooms"),
        ({"bathrooms": "2"}, "bathrooms"),
        ({"bedrooms": 2.5}, "bedrooms"),
        ({"sqft_lot": -5}, "sqft_lot"),
        ({"sqft_living": 10_000_000, "sqft_above": 10_000_000}, "sqft_living"),
        ({"floors": 40}, "floors"),
        ({"zipcode": "981"}, "zipcode"),
        ({"zipcode": "90210"}, "zipcode"),
        ({"bedroomz": 3}, "bedroomz"),
    ],
)
def test_bad_field_gets_422_naming_it(api: requests.Session, house: dict, change: dict, field: str):
    response = api.post("/v1/predict", json=house | change)
    assert response.status_code == 422, response.text
    assert ("body", field) in _locations(response)


def test_missing_field_gets_422_naming_it(api: requests.Session, house: dict):
    del house["grade"]
    response = api.post("/v1/predict", json=house)
    assert response.status_code == 422
    assert ("body", "grade") in _locations(response)
    assert "required" in response.text.lower()


def test_non_finite_number_gets_422_not_500(api: requests.Session, house: dict):
    body = requests.models.complexjson.dumps(house).replace('"lat": 47.5354', '"lat": NaN')
    assert "NaN" in body
    response = api.post("/v1/predict", data=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert ("body", "lat") in _locations(response)


def test_unknown_zipcode_is_named_not_filled(api: requests.Session, house: dict):
    response = api.post("/v1/predict", json=house | {"zipcode": "10001"})
    assert response.status_code == 422
    assert "10001" in response.json()["detail"][0]["msg"]


def test_impossible_house_is_rejected_naming_the_field(api: requests.Session, house: dict):
    response = api.post("/v1/predict", json=house | {"sqft_above": house["sqft_living"] + 500})
    assert response.status_code == 422
    assert ("body", "sqft_living") in _locations(response)
    assert "sqft_above" in response.text


def test_unknown_field_message_says_it_is_not_a_house_column(api: requests.Session, house: dict):
    response = api.post("/v1/predict/minimal", json=house | {"sqft_livng": 1})
    assert response.status_code == 422
    assert "unknown field 'sqft_livng'" in response.text


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"a house"'])
def test_malformed_body_gets_422(api: requests.Session, body: str):
    response = api.post("/v1/predict", data=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_oversized_body_gets_413(api: requests.Session, house: dict):
    response = api.post("/v1/predict", json=house | {"padding": "x" * 3_000_000})
    assert response.status_code == 413


def test_oversized_streamed_body_gets_413_not_400(api: requests.Session):
    response = api.post(
        "/v1/predict", data=streamed(3_000_000), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "text/csv", "application/xml"])
def test_a_house_in_another_format_gets_415(api: requests.Session, content_type: str):
    response = api.post("/v1/predict", data="bedrooms=3", headers={"content-type": content_type})
    assert response.status_code == 415
    assert content_type in response.json()["detail"]


def test_service_keeps_working_after_bad_input(api: requests.Session, house: dict):
    api.post("/v1/predict", data="{", headers={"content-type": "application/json"})
    api.post("/v1/predict", json=house | {"zipcode": "00000"})
    assert api.post("/v1/predict", json=house).status_code == 200


def test_concurrent_requests_are_answered_together_by_micro_batching(
    api: requests.Session, future_examples
):
    rows = as_rows(future_examples)
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda row: api.post("/v1/predict", json=row), rows * 2))
    assert all(a.status_code == 200 for a in answers)
    assert max(a.json()["batch_size"] for a in answers) > 1
