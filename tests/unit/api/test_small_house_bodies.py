"""Small requests stay small, in process: a house body past HOUSE_BODY_BYTES is a 413 before it
is read or parsed, a flood of unknown fields is refused in one error without pydantic walking it,
and no single prediction lists more than twenty errors. The same on real processes, with timings
under load, is tests/integration/test_small_requests.py."""

import itertools
import json
import string
import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from api.errors import MAX_REPORTED_ERRORS
from api.request_context import HOUSE_BODY_BYTES, HOUSE_PATHS
from api.schemas import MAX_HOUSE_FIELDS, HouseFull, validate_rows

JSON = {"content-type": "application/json"}


def chunks_of(body: bytes, size: int = 8_192) -> Iterator[bytes]:
    """`body` sent without a Content-Length, as a streaming client sends it."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("path", HOUSE_PATHS)
def test_a_house_body_over_the_limit_is_a_413_naming_the_limit(client, fakes, house, path):
    body = house | {"padding": "x" * HOUSE_BODY_BYTES}
    answer = client.post(path, json=body)
    assert answer.status_code == 413
    assert f"{HOUSE_BODY_BYTES:,}-byte limit" in answer.json()["detail"]
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert fakes.predictions.asked == []


@pytest.mark.parametrize("path", HOUSE_PATHS)
def test_a_streamed_house_body_is_counted_as_it_arrives(client, fakes, path):
    answer = client.post(path, content=chunks_of(b" " * (HOUSE_BODY_BYTES + 1)), headers=JSON)
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]
    assert fakes.predictions.asked == []


def test_a_house_body_at_the_limit_is_read_and_validated(client, house):
    """The limit refuses only what is over it: a valid house padded to the limit is estimated."""
    body = json.dumps(house).encode().ljust(HOUSE_BODY_BYTES)
    assert len(body) == HOUSE_BODY_BYTES
    assert client.post("/v1/predict", content=body, headers=JSON).status_code == 200
    streamed = client.post("/v1/predict", content=chunks_of(body), headers=JSON)
    assert streamed.status_code == 200


def test_a_large_declared_body_is_refused_without_being_sent(client):
    """Content-Length alone decides: the test client sends the declared header, and a 413 comes
    back although only a few bytes follow (the server never waits for the rest)."""
    headers = JSON | {"content-length": str(2_000_000)}
    answer = client.post("/v1/predict", content=b"{}", headers=headers)
    assert answer.status_code == 413


def test_the_batch_route_keeps_its_own_larger_limit(client, house):
    body = json.dumps({"rows": [house | {"zipcode": "98118"}] * 150}, indent=4).encode()
    assert len(body) > HOUSE_BODY_BYTES
    assert client.post("/v1/batch", content=body, headers=JSON).status_code == 202


def test_a_flood_of_unknown_fields_is_one_error_without_walking_them(house):
    flood = house | {f"k{i}": 0 for i in range(300_000)}
    started = time.perf_counter()
    with pytest.raises(ValidationError) as raised:
        HouseFull.model_validate(flood)
    assert time.perf_counter() - started < 0.5  # 8-16 ms; walked one by one, 1-2 s here
    (error,) = raised.value.errors()
    assert error["type"] == "too_many_unknown_fields" and "300,000 fields" in error["msg"]
    assert error["input"] == ["k0", "k1", "k2"]  # not the 300,000 echoed back


def test_a_batch_row_with_a_flood_is_named_by_its_row(house):
    with pytest.raises(ValidationError) as raised:
        validate_rows([house, house | {f"k{i}": 0 for i in range(MAX_HOUSE_FIELDS)}])
    (error,) = raised.value.errors()
    assert error["loc"] == (1,) and error["type"] == "too_many_unknown_fields"


def test_a_few_unknown_fields_are_named_one_by_one_twenty_at_most(client, house):
    unknown = MAX_HOUSE_FIELDS - len(house)
    body = house | {f"unknown_{i}": i for i in range(unknown)}
    answer = client.post("/v1/predict", json=body)
    detail = answer.json()["detail"]
    assert answer.status_code == 422 and len(detail) == MAX_REPORTED_ERRORS + 1
    assert all(e["type"] == "extra_forbidden" for e in detail[:-1])
    assert detail[-1]["type"] == "too_many_errors"
    assert f"{unknown} errors" in detail[-1]["msg"]


def shortest_keys() -> Iterator[str]:
    letters = string.ascii_letters + string.digits
    for length in itertools.count(1):
        yield from map("".join, itertools.product(letters, repeat=length))


def test_a_flood_within_the_body_limit_is_a_small_quick_422(client):
    """The most unknown keys 64 KiB holds (about 8,700, shortest first): one short error, not
    twenty and a note (the timing is test_small_requests.py's on real processes)."""
    keys, size = [], 2
    for key in shortest_keys():
        size += len(key) + 5  # "key":0,
        if size > HOUSE_BODY_BYTES:
            break
        keys.append(key)
    body = json.dumps(dict.fromkeys(keys, 0), separators=(",", ":")).encode()
    assert len(body) <= HOUSE_BODY_BYTES and len(keys) > 8_000
    answer = client.post("/v1/predict", content=body, headers=JSON)
    assert answer.status_code == 422 and len(answer.content) < 1_000
    assert answer.json()["detail"][0]["type"] == "too_many_unknown_fields"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe\xfd", "JSON"),
        (b"[" * 50_000, "nested too deeply"),
        (b'{"bedrooms": ' + b"9" * 5_000 + b"}", "digits"),
    ],
    ids=["not-utf8", "deep-nesting", "huge-integer"],
)
def test_an_unreadable_body_is_a_422_saying_why(client, body, words):
    answer = client.post("/v1/predict", content=body, headers=JSON)
    assert answer.status_code == 422
    assert words in answer.text and "request_id" in answer.json()
