"""Who is calling: every route but /health/* needs an API key (`Authorization: Bearer KEY`, or
`X-API-Key: KEY`), and each route asks for the least role it needs.

A checked key is trusted for `key_cache_s` in this process, so a prediction costs no key
lookup of its own; its quota is applied by the routing script (`api.outbox`). A revoked key
stops working within that time.
"""

import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from redis import asyncio as aioredis

from api.access_log import KEY_NAME_SCOPE_KEY
from api.errors import ForbiddenError, UnauthorizedError, UnsupportedMediaTypeError
from api.outbox import Sender
from shared.scrape_token import bearer
from shared.settings import Settings
from shared.wire import names
from shared.wire.api_keys import KeyRecord, Role, matches, parse


@dataclass(frozen=True)
class Caller:
    key_id: str
    name: str
    role: Role
    rate_per_s: float
    burst: int

    @cached_property  # the same for every request of this (cached) caller
    def sender(self) -> Sender:
        return Sender(self.key_id, self.role >= Role.ADMIN, self.rate_per_s, self.burst)


class Authenticator:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._callers: dict[str, tuple[Caller, float]] = {}  # key -> caller, trusted until

    async def _record(self, key_id: str) -> KeyRecord | None:
        raw = await self.redis.hget(names.API_KEYS, key_id)
        return None if raw is None else KeyRecord.model_validate_json(raw)

    def cached(self, key: str) -> Caller | None:
        """The key's caller if it was checked within `key_cache_s`, without a Redis call (the
        fast path of `api.fast_path` takes nothing else); None otherwise."""
        cached = self._callers.get(key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        return None

    async def caller(self, key: str | None) -> Caller:
        """The key's caller; a key checked within `key_cache_s` costs one dict lookup."""
        if not key:
            raise UnauthorizedError("this service needs an API key: Authorization: Bearer KEY")
        if (known := self.cached(key)) is not None:
            return known
        parsed = parse(key)
        record = await self._record(parsed[0]) if parsed else None
        if parsed is None or record is None or not matches(record, parsed[1]):
            raise UnauthorizedError("the API key is wrong or has been revoked")
        rate = self.settings.rate_per_s if record.rate_per_s is None else record.rate_per_s
        burst = max(1, math.ceil(rate * self.settings.rate_burst_s))
        who = Caller(record.key_id, record.name, record.level, rate, burst)
        self._callers[key] = (who, time.monotonic() + self.settings.key_cache_s)
        return who


def presented(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request presents, by either header (Authorization wins, Bearer only)."""
    return bearer(authorization) if authorization else x_api_key


def is_json(content_type: str) -> bool:
    """What a house route accepts as its body's Content-Type (none at all counts as JSON)."""
    return content_type.split(";")[0].strip().lower() == "application/json"


def require(role: Role, *, json_body: bool = False):
    """A dependency giving the caller, once its key is checked and its role is at least `role`;
    with `json_body`, it also asks for a JSON body (415 otherwise). One dependency for both, and
    headers read directly rather than declared: each dependency and each declared parameter
    costs every prediction FastAPI's resolution."""

    async def caller(request: Request) -> Caller:
        headers = request.headers
        if json_body:
            content_type = headers.get("content-type", "application/json")
            if not is_json(content_type):
                raise UnsupportedMediaTypeError(
                    f"send the house as application/json, not {content_type!r}"
                )
        authenticator: Authenticator = request.app.state.services.authenticator
        key = presented(headers.get("authorization"), headers.get("x-api-key"))
        who = await authenticator.caller(key)
        request.scope[KEY_NAME_SCOPE_KEY] = who.name  # for the request's log line
        if who.role < role:
            raise ForbiddenError(
                f"this needs a key of role {role.label}; {who.name!r} is {who.role.label}"
            )
        return who

    return caller


AgentCaller = Annotated[Caller, Depends(require(Role.AGENT))]
HouseCaller = Annotated[Caller, Depends(require(Role.AGENT, json_body=True))]
BatchCaller = Annotated[Caller, Depends(require(Role.BATCH))]
AdminCaller = Annotated[Caller, Depends(require(Role.ADMIN))]


async def same_origin(request: Request) -> None:
    """Refuse a browser's cross-site request: a page elsewhere must not drive admin actions with
    an operator's browser. Clients that are not browsers send no Origin."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin.rstrip("/") != own:
        raise ForbiddenError(f"cross-site request from {origin} refused")


KEY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (rk_…)."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def declare_keys(app: FastAPI) -> None:
    """Say in the OpenAPI document what `require` enforces: every route but /health/* takes a
    key, by either header. Declared here rather than with FastAPI's security dependencies,
    which would cost every request another dependency to resolve."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = KEY_SCHEMES
            for path, operations in schema["paths"].items():
                if not path.startswith("/health/"):
                    for operation in operations.values():
                        operation["security"] = [{name: []} for name in KEY_SCHEMES]
        return app.openapi_schema  # type: ignore[return-value]  # set by build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
