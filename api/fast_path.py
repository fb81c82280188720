"""Valid houses answered without FastAPI's layers; everything else goes through FastAPI.

Under load, FastAPI and Starlette's routing, dependency resolution, request object, exception
middleware and body handling were about 30 % of the API's CPU samples (py-spy); without them
the API's samples per answered request fell from 0.243 to 0.141 (docs/performance.md, flame
graphs), for work that a prediction with a valid body and a known key does not
need. This layer takes exactly those requests: POST to a house route, no query string, no
pinned version, a JSON body with a declared length, a key this process checked within
`key_cache_s` (so no Redis call), and a body the route's own schema accepts, parsed and
validated as FastAPI does (`json.loads`, then the model). It then answers through the route's
own `estimate_answer`, and what goes wrong after that (quota, queue, timeout, a worker's
error reply) through the one handler FastAPI's routes use too (`api.errors.answer_to`).

Anything else, and any house the schema refuses, is handed to FastAPI with the body it read, so
every refusal before a house is sent (401, 403, 415, 422 and their wording) is FastAPI's own;
the answers of both paths are the same (tests/unit/api/test_fast_path.py).
`REALTY_API_FAST_PATH=false` turns it off.
"""

import json
from dataclasses import dataclass

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import KEY_NAME_SCOPE_KEY
from api.auth import is_json, presented
from api.errors import answer_to
from api.predictions import DEFAULT_OPTIONS
from api.request_context import HOUSE_PATHS
from api.routes.predict import estimate_answer
from api.schemas import HouseFull, HouseMinimal
from shared.wire.messages import Variant

FULL, MINIMAL = HOUSE_PATHS
HOUSES: dict[str, tuple[type[BaseModel], Variant]] = {
    FULL: (HouseFull, "full"),
    MINIMAL: (HouseMinimal, "minimal"),
}


@dataclass(frozen=True)
class RouteTemplate:
    """What the metrics read of the route that took a request (FastAPI's routing puts its
    route object in the scope; this path has none)."""

    path: str


_ROUTES = {path: RouteTemplate(path) for path in HOUSES}


class HouseFastPath:
    """`app` (FastAPI's stack) for every request but a valid house from a known key."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner  # its `state.services` exist once the lifespan has started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        house = HOUSES.get(scope["path"]) if scope["type"] == "http" else None
        if house is None or scope["method"] != "POST" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        authorization = x_api_key = content_type = None
        for name, value in scope["headers"]:  # the first of a repeated header, as Starlette's
            if name == b"authorization":
                authorization = authorization or value.decode("latin-1")
            elif name == b"x-api-key":
                x_api_key = x_api_key or value.decode("latin-1")
            elif name == b"content-type":
                content_type = content_type or value.decode("latin-1")
            elif name in (b"x-model-version", b"transfer-encoding"):
                await self.app(scope, receive, send)  # pinned, or a body without a length
                return
        key = presented(authorization, x_api_key)
        services = self.owner.state.services
        caller = services.authenticator.cached(key) if key else None
        json_body = content_type is None or is_json(content_type)
        if caller is None or not json_body:  # every role may predict
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive)
        valid = _valid(house[0], body) if body is not None else None
        if valid is None:  # FastAPI answers, reading the same messages
            await self.app(scope, _replay(messages, receive), send)
            return
        scope[KEY_NAME_SCOPE_KEY] = caller.name  # for the request's log line, as `require` does
        scope["route"] = _ROUTES[scope["path"]]  # what `api.metrics.route_of` reads
        try:
            response = await estimate_answer(
                valid, caller, DEFAULT_OPTIONS, house[1], services.predictions, scope
            )
        except Exception as exc:
            response = answer_to(exc, scope, services.settings)
        await response(scope, receive, send)


async def _read(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The body's messages, and the body; None for the body when the client left before it
    was whole (FastAPI is then handed the messages and does what it always does)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            break
    if len(messages) == 1:
        return messages, messages[0].get("body", b"")
    return messages, b"".join(m.get("body", b"") for m in messages)


def _valid(schema: type[BaseModel], body: bytes) -> BaseModel | None:
    """The house if FastAPI would accept `body` for the route of `schema`, else None."""
    try:
        return schema.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):  # JSON and Unicode errors too
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
