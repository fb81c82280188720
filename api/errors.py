"""Faults of the service, mapped to clear HTTP answers (never a bare 500 for a known fault)."""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import Settings


class ServiceUnavailableError(Exception):
    """The queue or the workers cannot take the request now; the client should retry."""


class PredictionTimeoutError(Exception):
    def __init__(self, request_id: str, timeout_s: float) -> None:
        self.request_id = request_id
        super().__init__(
            f"no worker answered within {timeout_s:g} s (request {request_id}); "
            "the service is overloaded or a worker was lost, retry shortly"
        )


class VersionNotServedError(Exception):
    """A pinned model version has no running worker."""


def _json_safe(value: Any) -> Any:
    """Echoed inputs may hold NaN or Infinity, which JSON cannot carry: show them as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _explain(error: dict[str, Any]) -> dict[str, Any]:
    """Make every 422 readable by an agent and serialisable whatever the input was."""
    error = {**error, "input": _json_safe(error.get("input"))}
    if error.get("type") == "extra_forbidden":
        field = error["loc"][-1]
        error["msg"] = f"unknown field {field!r}: not a column of the house data (a typo?)"
    return error


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    explained = RequestValidationError([_explain(e) for e in exc.errors()], body=exc.body)
    return await request_validation_exception_handler(request, explained)


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    retry = {"Retry-After": str(settings.retry_after_s)}

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=retry)

    async def redis_down(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job queue (Redis) is unreachable: {exc}"}, 503, headers=retry
        )

    async def redis_refused(_: Request, exc: Exception) -> JSONResponse:
        """Redis answered but refused (out of memory under noeviction, read-only replica…)."""
        return JSONResponse(
            {"detail": f"the job queue (Redis) refused the request: {exc}"}, 503, headers=retry
        )

    async def timeout(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=504, headers=retry)

    async def not_served(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceUnavailableError, unavailable)
    for error in (RedisConnectionError, RedisTimeoutError, OperationalError):
        app.add_exception_handler(error, redis_down)
    app.add_exception_handler(RedisError, redis_refused)
    app.add_exception_handler(PredictionTimeoutError, timeout)
    app.add_exception_handler(VersionNotServedError, not_served)
