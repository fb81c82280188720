"""The fast path for valid houses (api/fast_path.py): it answers exactly what FastAPI's route
answers, takes only valid houses from known keys, and hands everything else to FastAPI with
the body intact."""

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import Fakes
from fake_keys import KEY_OF, bearer
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from api import fast_path
from api.errors import PredictionTimeoutError
from api.fast_path import HouseFastPath
from api.routes.predict import estimate_answer
from shared.settings import Settings
from shared.wire.api_keys import Role
from shared.wire.messages import ErrorCode, ErrorReply

# Answers that differ by nature between two runs.
VARYING = ("request_id", "elapsed_ms")


def _comparable(answer: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = answer.json()
    if isinstance(body, dict):  # a crash's words quote the request id too
        said = answer.text.replace(answer.headers["x-request-id"], "<id>")
        body = {k: v for k, v in json.loads(said).items() if k not in VARYING}
    headers = {k: v for k, v in answer.headers.items() if k != "x-request-id"}
    if "elapsed_ms" in answer.json():  # its digits vary, so the length does too
        headers.pop("content-length")
    return answer.status_code, body, headers


JSON = {"content-type": "application/json"}
REQUESTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "valid house": lambda h: {"json": h},
    "valid minimal house": lambda h: {"json": h, "url": "/v1/predict/minimal"},
    "a field missing": lambda h: {"json": {k: v for k, v in h.items() if k != "bedrooms"}},
    "a field misspelt": lambda h: {"json": h | {"bedroms": 3}},
    "out of range": lambda h: {"json": h | {"sqft_living": -1}},
    "not JSON": lambda h: {
        "content": b"{bedrooms",
        "headers": {"content-type": "application/json"},
    },
    "a list": lambda h: {"json": [h]},
    "empty body": lambda h: {"content": b"", "headers": JSON},
    "text/plain": lambda h: {"content": json.dumps(h), "headers": {"content-type": "text/plain"}},
    "no key": lambda h: {"json": h, "headers": {"Authorization": ""}},
    "a wrong key": lambda h: {"json": h, "headers": {"Authorization": "Bearer rk_nope"}},
    "a key by X-API-Key": lambda h: {
        "json": h,
        "headers": {"Authorization": "", "X-API-Key": KEY_OF[Role.AGENT]},
    },
    "two keys, a wrong one first": lambda h: {
        "json": h,
        "headers": [("Authorization", "Bearer rk_nope"), *bearer(Role.AGENT).items()],
    },
    "two content types, CSV first": lambda h: {
        "content": json.dumps(h),
        "headers": [("content-type", "text/csv"), ("content-type", "application/json")],
    },
    "options": lambda h: {"json": h, "url": "/v1/predict?explain=true&comps=2"},
    "a bad option": lambda h: {"json": h, "url": "/v1/predict?comps=99"},
    "pinned": lambda h: {"json": h, "headers": {"X-Model-Version": "v1"}},
}


@pytest.fixture
def both(
    app_on: Callable[[Settings], AbstractContextManager[TestClient]],
) -> Iterator[dict[bool, TestClient]]:
    with (
        app_on(Settings(api_fast_path=True)) as fast,
        app_on(Settings(api_fast_path=False)) as slow,
    ):
        yield {True: fast, False: slow}


def _post(client: TestClient, request: dict[str, Any]) -> Any:
    request = dict(request)
    return client.post(request.pop("url", "/v1/predict"), **request)


# The requests the fast path answers itself; FastAPI answers every other one.
TAKEN = {"valid house", "valid minimal house", "a key by X-API-Key"}


@pytest.mark.parametrize("name", REQUESTS)
def test_every_request_gets_the_same_answer_with_or_without_the_fast_path(
    both: dict[bool, TestClient],
    fakes: Fakes,
    house: dict[str, Any],
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered = []

    async def spied(*args: Any) -> Any:
        answered.append(args[0])
        return await estimate_answer(*args)

    monkeypatch.setattr(fast_path, "estimate_answer", spied)
    request = REQUESTS[name](house)
    fast, slow = (_comparable(_post(both[on], request)) for on in (True, False))
    assert fast == slow
    assert len(answered) == (name in TAKEN)  # and FastAPI took the others
    asked = fakes.predictions.asked
    assert len(asked) in (0, 2) and (
        not asked or asked[0] == asked[1] | {"request_id": asked[0]["request_id"]}
    )


@pytest.mark.parametrize(
    "fault",
    [
        RedisConnectionError("10.0.0.5:6379 refused"),
        PredictionTimeoutError("r1", 5),
        RuntimeError("a bug of ours"),
    ],
)
def test_faults_after_the_house_is_sent_get_the_one_handler_s_answers(
    both: dict[bool, TestClient], fakes: Fakes, house: dict[str, Any], fault: Exception
) -> None:
    fakes.predictions.fail = fault
    fast, slow = (_comparable(both[on].post("/v1/predict", json=house)) for on in (True, False))
    assert fast == slow
    assert fast[0] in (500, 503, 504) and "10.0.0.5" not in json.dumps(fast[1])


def test_error_replies_of_the_workers_get_the_same_answers(
    both: dict[bool, TestClient], fakes: Fakes, house: dict[str, Any]
) -> None:
    fakes.predictions.reply = ErrorReply(
        request_id="r1", error=ErrorCode.UNKNOWN_ZIPCODE, detail="zipcode"
    )
    fast, slow = (_comparable(both[on].post("/v1/predict", json=house)) for on in (True, False))
    assert fast == slow and fast[0] == 422


# --- the layer alone -------------------------------------------------------------------------


@dataclass
class Behind:
    """FastAPI's stack as the layer sees it: records what it was handed."""

    bodies: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Owner:
    state: Any


def _call(layer: HouseFastPath, body: bytes, headers: dict[str, str], chunks: int = 1) -> int:
    import asyncio

    size = -(-len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/predict",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(layer(scope, receive, send))
    return sent[0]["status"]


@pytest.fixture
def layer(fakes: Fakes) -> tuple[HouseFastPath, Behind]:
    from api.deps import Services

    services = Services(settings=Settings(), **vars(fakes))  # type: ignore[arg-type]
    behind = Behind()
    return HouseFastPath(behind, Owner(type("State", (), {"services": services})())), behind


def test_a_valid_house_from_a_known_key_never_reaches_fastapi(layer, fakes, house) -> None:
    fast, behind = layer
    body = json.dumps(house).encode()
    assert _call(fast, body, bearer(Role.AGENT), chunks=3) == 200
    assert (
        behind.bodies == [] and fakes.predictions.asked[0]["house"]["zipcode"] == house["zipcode"]
    )


@pytest.mark.parametrize("chunks", [1, 4])
def test_anything_else_reaches_fastapi_with_its_body_whole(layer, fakes, house, chunks) -> None:
    fast, behind = layer
    invalid = json.dumps(house | {"bedrooms": "many"}).encode()
    assert _call(fast, invalid, bearer(Role.AGENT), chunks) == 299
    assert _call(fast, invalid[:-1], bearer(Role.AGENT), chunks) == 299
    valid = json.dumps(house).encode()
    assert _call(fast, valid, {"Authorization": "Bearer rk_unknown"}, chunks) == 299
    assert _call(fast, valid, bearer(Role.AGENT) | {"X-Model-Version": "v2"}, chunks) == 299
    assert behind.bodies == [invalid, invalid[:-1], valid, valid]
    assert fakes.predictions.asked == []
