"""POST /v1/predict and /v1/predict/minimal in process: what reaches the workers, and how each
reply and fault becomes an answer."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from api.errors import PredictionTimeoutError, ServiceUnavailableError, VersionNotServedError
from shared.model.contract import MINIMAL_FIELDS
from shared.wire.messages import ErrorCode, ErrorReply


def test_an_estimate_is_the_workers_reply_with_the_api_s_own_timing(client, fakes, house):
    answer = client.post("/v1/predict?explain=true", json=house)
    assert answer.status_code == 200
    body = answer.json()
    assert body["prediction"] == 352937.55 and body["currency"] == "USD"
    assert body["interval_80"] == {"low": 296744.48, "high": 419771.63}
    assert body["model_version"] == "v2" and body["batch_size"] == 3
    assert body["request_id"] == "abc" and body["elapsed_ms"] >= 0
    assert "type" not in body
    (asked,) = fakes.predictions.asked
    assert asked["explain"] is True and asked["variant"] == "full"
    assert asked["house"]["zipcode"] == house["zipcode"]


def test_minimal_requests_send_only_the_minimal_fields(client, fakes, house):
    assert client.post("/v1/predict/minimal", json=house).status_code == 200
    (asked,) = fakes.predictions.asked
    assert asked["variant"] == "minimal"
    assert set(asked["house"]) == set(MINIMAL_FIELDS)


def test_a_pinned_version_is_passed_on(client, fakes, house):
    client.post("/v1/predict", json=house, headers={"X-Model-Version": "v1"})
    assert fakes.predictions.asked[0]["pinned"] == "v1"


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        (ErrorCode.UNKNOWN_ZIPCODE, 422, "outside the area model v2 serves"),
        (ErrorCode.VERSION_GONE, 409, "stopped serving"),
        (ErrorCode.INVALID_AS_OF, 422, "x"),  # the worker's words, about the month
        (ErrorCode.INTERNAL, 500, "the model failed on request r1"),
    ],
)
def test_each_error_reply_has_its_own_answer(client, fakes, house, code, status, words):
    fakes.predictions.reply = ErrorReply(request_id="r1", error=code, detail="x")
    answer = client.post("/v1/predict", json=house)
    assert answer.status_code == status
    assert words in str(answer.json()["detail"])


def test_an_unknown_zipcode_is_located_at_the_zipcode_field(client, fakes, house):
    fakes.predictions.reply = ErrorReply(
        request_id="r1", error=ErrorCode.UNKNOWN_ZIPCODE, detail="x", zipcodes=["98039"]
    )
    (error,) = client.post("/v1/predict", json=house).json()["detail"]
    assert error["loc"] == ["body", "zipcode"] and error["type"] == "zipcode_not_served"


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [
        (ServiceUnavailableError("no worker is serving the active model v2"), 503, "7"),
        (RedisConnectionError("Connection refused"), 503, "7"),
        (PredictionTimeoutError("r1", 10), 504, "7"),
        (VersionNotServedError("no worker serves model version 'v1' now"), 409, None),
    ],
)
def test_faults_are_clear_answers_and_say_when_to_retry(
    client, fakes, house, fault, status, retry_after
):
    fakes.predictions.fail = fault
    answer = client.post("/v1/predict", json=house)
    assert answer.status_code == status
    assert answer.headers.get("retry-after") == retry_after
    assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]


def test_a_misspelt_field_is_named_as_a_likely_typo(client, fakes, house):
    answer = client.post("/v1/predict", json=house | {"bedroom": 3})
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "bedroom"] and "typo" in error["msg"]
    assert fakes.predictions.asked == []


def test_a_body_with_many_errors_lists_twenty_then_says_how_many(client, house):
    body = house | {f"unknown_{i}": i for i in range(50)}
    detail = client.post("/v1/predict", json=body).json()["detail"]
    assert len(detail) == 21
    assert detail[-1]["type"] == "too_many_errors" and "50 errors" in detail[-1]["msg"]


def test_non_finite_input_is_echoed_as_text_not_a_500(client, house):
    body = '{"bedrooms": NaN}'
    answer = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422


def test_anything_but_json_is_a_415(client, house):
    answer = client.post("/v1/predict", content="a=1", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and "application/json" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("query", "headers", "where"),
    [
        ("?explain=maybe", {}, ["query", "explain"]),
        ("?as_of=2015-5", {}, ["query", "as_of"]),
        ("?as_of=2015-05-01", {}, ["query", "as_of"]),
        ("?comps=11", {}, ["query", "comps"]),
        ("?comps=two", {}, ["query", "comps"]),
        ("", {"X-Model-Version": "../../x"}, ["header", "X-Model-Version"]),
    ],
)
def test_a_bad_option_is_a_422_naming_it_and_reaches_no_worker(
    client, fakes, house, query, headers, where
):
    answer = client.post(f"/v1/predict/minimal{query}", json=house, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == where
    assert fakes.predictions.asked == []


@pytest.mark.parametrize(("value", "explain"), [("1", True), ("off", False), ("TRUE", True)])
def test_explain_reads_booleans_as_fastapi_would(client, fakes, house, value, explain):
    assert client.post(f"/v1/predict?explain={value}", json=house).status_code == 200
    assert fakes.predictions.asked[0]["explain"] is explain


def test_a_month_and_comps_are_passed_on_and_default_to_none(client, fakes, house):
    client.post("/v1/predict", json=house)
    client.post("/v1/predict/minimal?as_of=2014-12&comps=5", json=house)
    plain, asked = fakes.predictions.asked
    assert (plain["as_of"], plain["comps"]) == (None, 0)
    assert (asked["as_of"], asked["comps"], asked["variant"]) == ("2014-12", 5, "minimal")


def test_a_month_the_worker_refuses_is_located_at_the_as_of_parameter(client, fakes, house):
    detail = "as_of 2016-01 is outside the months this model learned from: 2014-05 to 2015-05"
    fakes.predictions.reply = ErrorReply(
        request_id="r1", error=ErrorCode.INVALID_AS_OF, detail=detail
    )
    (error,) = client.post("/v1/predict?as_of=2016-01", json=house).json()["detail"]
    assert error["loc"] == ["query", "as_of"] and error["msg"] == detail
