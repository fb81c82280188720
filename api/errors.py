"""Every error answer of the API comes from one base class and one handler.

A route raises a `ServiceError` subclass (or lets FastAPI's validation, Redis or kombu raise);
`handle_error` turns it into the same JSON shape every time: `{"detail": ...}` with the class's
status and headers. Anchor: MLServer's one `MLServerError(status_code)` with one handler.
"""

import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.settings import Settings

MAX_REPORTED_ERRORS = 20


class ServiceError(Exception):
    """An answer other than success: its status, its message (text or a list of field errors)
    and whether the client should retry later."""

    status_code: int = 500
    retry: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | list[dict[str, Any]],
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail if isinstance(detail, str) else "invalid input")
        self.detail = detail
        self.status_code = status_code or type(self).status_code
        self.headers = headers or {}


class InvalidInputError(ServiceError):
    """Field errors in FastAPI's own format (`loc`, `msg`, `type`, `input`)."""

    status_code = 422

    @classmethod
    def at(cls, loc: Sequence[str | int], message: str, kind: str = "body") -> "InvalidInputError":
        return cls([{"type": kind, "loc": tuple(loc), "msg": message}])


class UnauthorizedError(ServiceError):
    status_code = 401


class ForbiddenError(ServiceError):
    status_code = 403


class TooManyRequestsError(ServiceError):
    """A key over its quota; `retry_after_s` says when it may try again."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class NotFoundError(ServiceError):
    status_code = 404


class VersionNotServedError(ServiceError):
    """A pinned model version has no running worker."""

    status_code = 409


class PayloadTooLargeError(ServiceError):
    status_code = 413


class UnsupportedMediaTypeError(ServiceError):
    status_code = 415


class ModelFailedError(ServiceError):
    """A fault of ours in the model; the worker logged it under the request id."""

    status_code = 500


class ServiceUnavailableError(ServiceError):
    """The queue or the workers cannot take the request now; the client should retry."""

    status_code = 503
    retry = True


class PredictionTimeoutError(ServiceError):
    status_code = 504
    retry = True

    def __init__(self, request_id: str, timeout_s: float) -> None:
        super().__init__(
            f"no worker answered within {timeout_s:g} s (request {request_id}); "
            "the service is overloaded or a worker was lost, retry shortly"
        )


def _json_safe(value: Any) -> Any:
    """Echoed inputs may hold NaN or Infinity, which JSON cannot carry: show them as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _readable(error: dict[str, Any]) -> dict[str, Any]:
    """Make every field error readable by an agent and serialisable whatever the input was."""
    error = {**error, "input": _json_safe(error.get("input"))}
    if error.get("type") == "extra_forbidden":
        error["msg"] = (
            f"unknown field {error['loc'][-1]!r}: not a column of the house data (a typo?)"
        )
    return error


def field_errors(
    errors: Iterable[dict[str, Any]], prefix: Sequence[str | int] = (), total: str = "the request"
) -> InvalidInputError:
    """At most MAX_REPORTED_ERRORS of `errors`, located under `prefix`, then a note of how many
    more there were: a broken 100,000-row file gives a readable answer, not megabytes."""
    errors = list(errors)
    shown = [_readable({**e, "loc": (*prefix, *e["loc"])}) for e in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        shown.append(
            {
                "type": "too_many_errors",
                "loc": tuple(prefix),
                "msg": f"{len(errors)} errors in {total}; the first "
                f"{MAX_REPORTED_ERRORS} are shown",
            }
        )
    return InvalidInputError(shown)


def as_service_error(exc: Exception) -> ServiceError:
    """What the client is told about `exc`."""
    match exc:
        case ServiceError():
            return exc
        case RequestValidationError():
            return field_errors(exc.errors())
        case RedisConnectionError() | RedisTimeoutError() | OperationalError():
            return ServiceUnavailableError(f"the job queue (Redis) is unreachable: {exc}")
        case RedisError():  # answered but refused: out of memory under noeviction, read-only…
            return ServiceUnavailableError(f"the job queue (Redis) refused the request: {exc}")
        case StarletteHTTPException():  # the framework's own: 404 route, 405, 413 body…
            return ServiceError(exc.detail, status_code=exc.status_code, headers=exc.headers)
    raise exc


def install_error_handler(app: FastAPI, settings: Settings) -> None:
    retry_after = {"Retry-After": str(settings.retry_after_s)}

    async def handle_error(_: Request, exc: Exception) -> JSONResponse:
        error = as_service_error(exc)
        return JSONResponse(
            {"detail": jsonable_encoder(error.detail)},
            status_code=error.status_code,
            headers=error.headers | (retry_after if error.retry else {}),
        )

    for kind in (
        ServiceError,
        RequestValidationError,
        RedisError,
        OperationalError,
        StarletteHTTPException,
    ):
        app.add_exception_handler(kind, handle_error)
