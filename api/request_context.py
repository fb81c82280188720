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
"""

import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import REQUEST_ID_SCOPE_KEY, PayloadTooLargeError, error_response, new_request_id

# 150 houses' worth: room for pretty-printed JSON and long decimals, far too small for a flood.
HOUSE_BODY_BYTES = 64 * 1024
HOUSE_PATHS = ("/v1/predict", "/v1/predict/minimal")

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is echoed into headers and logs, so only a plain token of a sane length.
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def too_large(limit: int) -> str:
    return (
        f"a house is a few hundred bytes of JSON: this body is over the {limit:,}-byte limit "
        "of a single prediction (send many houses to POST /v1/batch)"
    )


class RequestContext:
    """The request id of every HTTP request, and `body_limits` (path: bytes) before parsing."""

    def __init__(self, app: ASGIApp, body_limits: Mapping[str, int]) -> None:
        self.app = app
        self.body_limits = dict(body_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = declared = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value
            elif name == b"content-length":
                declared = value
        if given is not None and _CLIENT_ID.fullmatch(given):
            request_id, raw_id = given.decode("ascii"), given
        else:
            request_id = new_request_id()
            raw_id = request_id.encode("ascii")
        scope[REQUEST_ID_SCOPE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, raw_id)]
            await send(message)

        limit = self.body_limits.get(scope["path"])
        if limit is None:
            await self.app(scope, receive, send_with_id)
            return
        # An ASGI server delivers no more than a declared Content-Length (and refuses a malformed
        # one): only a body without one, chunked, needs counting as it arrives.
        if declared is None:
            await self.app(scope, _counting(receive, limit), send_with_id)
        elif declared.isdigit() and int(declared) <= limit:
            await self.app(scope, receive, send_with_id)
        else:  # refused unread; the server drops the rest of the body with the connection
            answer = error_response(PayloadTooLargeError(too_large(limit)), request_id)
            await answer(scope, receive, send_with_id)


class RequestContextApp(FastAPI):
    """FastAPI with `RequestContext` outside all of its layers, Starlette's own included: their
    answers (a 500 too) carry the id, and a house body is refused before any of them runs.
    (`add_middleware` would put it inside those layers.)"""

    def __init__(self, *args: Any, body_limits: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_limits = body_limits

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContext(super().build_middleware_stack(), self.body_limits)


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
