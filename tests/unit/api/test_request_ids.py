"""Nothing internal leaks, in process: every answer carries a request id (X-Request-ID, the
client's own when it is a plain token), every error body carries the same id, and what the client
is not told (a Redis address, a trace) is in the log line under that id."""

import logging
import re

import pytest
from fake_keys import bearer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from api.errors import PredictionTimeoutError, ServiceUnavailableError, VersionNotServedError
from shared.wire.api_keys import Role
from shared.wire.messages import ErrorCode, ErrorReply

REDIS_DOWN = RedisConnectionError(
    "Error 111 connecting to redis.internal:6379. Connection refused."
)
INTERNAL = re.compile(r"redis\.internal|6379|Traceback|/work/|\.py\b")


def test_every_answer_carries_a_fresh_request_id(client, house):
    ids = [
        client.post("/v1/predict", json=house).headers["x-request-id"],
        client.post("/v1/predict", json=house).headers["x-request-id"],
        client.get("/health/live").headers["x-request-id"],
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3


def test_a_client_s_own_request_id_is_kept(client, house):
    answer = client.post(
        "/v1/predict", json=house | {"bedroom": 3}, headers={"X-Request-ID": "crm-42.a"}
    )
    assert answer.headers["x-request-id"] == "crm-42.a" == answer.json()["request_id"]


def test_an_estimate_is_recorded_under_the_request_s_own_id(client, fakes, house):
    answer = client.post("/v1/predict", json=house)
    assert fakes.predictions.asked[-1]["request_id"] == answer.headers["x-request-id"]


def test_a_client_s_own_id_is_not_the_estimate_s_id(client, fakes, house):
    """A client's ids need not be unique; the record's (GET /v1/estimates/{id}) must be."""
    client.post("/v1/predict", json=house, headers={"X-Request-ID": "crm-42.a"})
    client.post("/v1/predict", json=house, headers={"X-Request-ID": "crm-42.a"})
    first, second = (asked["request_id"] for asked in fakes.predictions.asked[-2:])
    assert first != second and "crm-42.a" not in (first, second)
    assert re.fullmatch(r"[0-9a-f]{32}", first)


@pytest.mark.parametrize("given", ["x" * 65, "has space", "<script>", "a,b", ""])
def test_a_client_s_id_that_is_not_a_plain_token_is_replaced(client, given):
    answer = client.get("/health/live", headers={"X-Request-ID": given})
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def _reply(code: ErrorCode) -> ErrorReply:
    return ErrorReply(request_id="r1", error=code, detail="x")


# Each way a request can fail, as (what the fakes do, request, status).
ERROR_PATHS = {
    "401-no-key": ({}, ("POST", "/v1/predict", {"Authorization": ""}), 401),
    "403-role": ({}, ("POST", "/v1/batch", bearer(Role.AGENT)), 403),
    "404-route": ({}, ("GET", "/v1/nothing", {}), 404),
    "404-job": ({}, ("GET", "/v1/batch/nojob", {}), 404),
    "405-method": ({}, ("DELETE", "/v1/predict", {}), 405),
    "409-pinned": ({"fail": VersionNotServedError("no worker serves 'v1'")}, None, 409),
    "413-body": ({}, ("POST", "/v1/predict", {"content-length": "100000"}), 413),
    "415-type": ({}, ("POST", "/v1/predict", {"content-type": "text/plain"}), 415),
    "422-zipcode": ({"reply": _reply(ErrorCode.UNKNOWN_ZIPCODE)}, None, 422),
    "500-model": ({"reply": _reply(ErrorCode.INTERNAL)}, None, 500),
    "503-redis": ({"fail": REDIS_DOWN}, None, 503),
    "503-redis-refused": ({"fail": ResponseError("OOM at redis.internal:6379")}, None, 503),
    "503-workers": ({"fail": ServiceUnavailableError("no worker serves v2")}, None, 503),
    "504-deadline": ({"fail": PredictionTimeoutError("r1", 10)}, None, 504),
    "500-crash": ({"fail": RuntimeError("bug in /work/main/api/x.py:12")}, None, 500),
}


@pytest.mark.parametrize(("fake", "request_", "status"), ERROR_PATHS.values(), ids=ERROR_PATHS)
def test_every_error_body_carries_the_id_and_nothing_internal(
    client, fakes, house, fake, request_, status
):
    for name, value in fake.items():
        setattr(fakes.predictions, name, value)
    method, path, headers = request_ or ("POST", "/v1/predict", {})
    body = b"{}" if status == 413 else None  # declared larger than it is: refused unread
    answer = client.request(
        method, path, json=None if body else house, content=body, headers=headers
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert answer.json()["detail"] and not INTERNAL.search(answer.text)


def test_the_log_line_of_a_fault_holds_what_the_answer_does_not(client, fakes, house, caplog):
    fakes.predictions.fail = REDIS_DOWN
    with caplog.at_level(logging.WARNING, logger="api.errors"):
        answer = client.post("/v1/predict", json=house)
    assert answer.status_code == 503 and "unreachable" in answer.json()["detail"]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "api.errors"]
    assert answer.headers["x-request-id"] in line and "redis.internal:6379" in line


def test_a_crash_is_logged_with_its_trace_under_the_id(client, fakes, house, caplog):
    fakes.predictions.fail = RuntimeError("bug in /work/main/api/x.py:12")
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        answer = client.post("/v1/predict", json=house)
    assert answer.status_code == 500 and "internal error" in answer.json()["detail"]
    (record,) = [r for r in caplog.records if r.name == "api.errors"]
    assert answer.headers["x-request-id"] in record.getMessage()
    assert record.exc_info and "api/x.py:12" in str(record.exc_info[1])


def test_client_errors_are_not_logged_as_faults(client, house, caplog):
    with caplog.at_level(logging.WARNING, logger="api.errors"):
        assert client.post("/v1/predict", json=house | {"bedrooms": -1}).status_code == 422
    assert not [r for r in caplog.records if r.name == "api.errors"]


def test_readiness_without_redis_says_so_without_its_address(client, fakes, caplog):
    fakes.versions.fail = REDIS_DOWN
    with caplog.at_level(logging.WARNING):
        answer = client.get("/health/ready")
    assert answer.status_code == 503 and answer.json()["redis"] == "unreachable"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert not INTERNAL.search(answer.text)
    assert any("redis.internal:6379" in r.getMessage() for r in caplog.records)


def test_a_not_ready_answer_carries_the_id_too(client, fakes):
    fakes.versions.workers = 0
    answer = client.get("/health/ready")
    assert answer.status_code == 503 and "no worker serves model v2" in answer.json()["reason"]
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
