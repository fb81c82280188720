"""What every request gets before FastAPI sees it: an id, and on the house routes a small body.

One pure ASGI layer, on the hot path of every prediction, so it does only what must happen before
the body is read, with nothing per request but a scan of the headers and one closure (Starlette's
BaseHTTPMiddleware would run each request in a task of its own).

- The id: the client's `X-Request-ID` when it is a plain token, else a fresh one; it is put in
  the scope (error bodies carry it, `api.errors`) and in the answer's `X-Request-ID` header, so a
  client can quote it and an operator find the log line.
- The body limit: a house is about 450 bytes of JSON, so a house route refuses more than
  `HOUSE_BODY_BYTES` before reading it (declared Content-Length) or as it arrives (chunked),
  instead of parsing megabytes to list 300,000 unknown keys on the event loop.
- When the answer is over, its duration and status by route template go to the metrics
  (`api.metrics`) and its one log line (`api.access_log`): here, outside every other layer, the
  timing covers them all and every answer is counted, a 413 refused unread or a crash's 500.
"""

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import log_request
from api.errors import (
    ERROR_SCOPE_KEY,
    REQUEST_ID_SCOPE_KEY,
    PayloadTooLargeError,
    error_response,
    new_request_id,
)
from api.metrics import UNMATCHED, count_error, observe_request, route_of

# 150 houses' worth: room for pretty-printed JSON and long decimals, far too small for a flood.
HOUSE_BODY_BYTES = 64 * 1024
HOUSE_PATHS = ("/v1/predict", "/v1/predict/minimal")

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is echoed into headers and logs, so only a plain token of a sane length.
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
CLIENT_ID_SCOPE_KEY = "realty.client_request_id"  # True when the id is the client's own


def too_large(limit: int) -> str:
    return (
        f"a house is a few hundred bytes of JSON: this body is over the {limit:,}-byte limit "
        "of a single prediction (send many houses to POST /v1/batch)"
    )


def estimate_id_of(scope: Scope) -> str:
    """The id an estimate is recorded and looked up under (GET /v1/estimates/{id}): the
    request's own id, unless the client chose that one: a client's ids need not be unique, and
    the record's must be."""
    if scope.get(CLIENT_ID_SCOPE_KEY):
        return new_request_id()
    return scope.get(REQUEST_ID_SCOPE_KEY) or new_request_id()


class RequestContext:
    """The request id of every HTTP request, and `body_limits` (path: bytes) before parsing."""

    def __init__(self, app: ASGIApp, body_limits: Mapping[str, int]) -> None:
        self.app = app
        self.body_limits = dict(body_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = declared = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value
            elif name == b"content-length":
                declared = value
        if given is not None and _CLIENT_ID.fullmatch(given):
            request_id, raw_id = given.decode("ascii"), given
            scope[CLIENT_ID_SCOPE_KEY] = True
        else:
            request_id = new_request_id()
            raw_id = request_id.encode("ascii")
        scope[REQUEST_ID_SCOPE_KEY] = request_id

        status = 500  # unless an answer starts: a crash that answered nothing

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, raw_id)]
            await send(message)

        # When the answer is over: its metrics and its log line (api.metrics, api.access_log).
        try:
            await self._limited(scope, receive, send_with_id, declared, request_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            if route == UNMATCHED and scope["path"] in self.body_limits:
                route = scope["path"]  # a house body refused before routing: its route's path
            observe_request(scope["method"], route, status, seconds)
            if (error := scope.get(ERROR_SCOPE_KEY)) is not None:
                count_error(error)
            log_request(scope, route, status, seconds)

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, declared: bytes | None, request_id: str
    ) -> None:
        limit = self.body_limits.get(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        # An ASGI server delivers no more than a declared Content-Length (and refuses a malformed
        # one): only a body without one, chunked, needs counting as it arrives.
        if declared is None:
            await self.app(scope, _counting(receive, limit), send)
        elif declared.isdigit() and int(declared) <= limit:
            await self.app(scope, receive, send)
        else:  # refused unread; the server drops the rest of the body with the connection
            error = scope[ERROR_SCOPE_KEY] = PayloadTooLargeError(too_large(limit))
            await error_response(error, request_id)(scope, receive, send)


class RequestContextApp(FastAPI):
    """FastAPI with `RequestContext` outside all of its layers, Starlette's own included: their
    answers (a 500 too) carry the id, and a house body is refused before any of them runs.
    (`add_middleware` would put it inside those layers.) `inner`, if given, goes between the
    two (api.fast_path: valid houses answered without FastAPI's layers)."""

    def __init__(
        self,
        *args: Any,
        body_limits: Mapping[str, int],
        inner: Callable[[ASGIApp, FastAPI], ASGIApp] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.body_limits = body_limits
        self.inner = inner

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.inner is not None:
            stack = self.inner(stack, self)
        return RequestContext(stack, self.body_limits)


def _counting(receive: Receive, limit: int) -> Receive:
    """`receive`, failing once more than `limit` body bytes arrived: a chunked body declares no
    length. Raised as Starlette's HTTPException because FastAPI turns any other exception met
    while reading a body into a 400; the error handler makes it the usual 413 answer."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, too_large(limit))
        return message

    return receive_limited
