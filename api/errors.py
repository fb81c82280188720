"""Every error answer of the API comes from one base class and one handler.

A route raises a `ServiceError` subclass (or lets FastAPI's validation, Redis or kombu raise);
`handle_error` turns it into the same JSON shape every time: `{"detail": ..., "request_id": ...}`
with the class's status and headers. Anchor: MLServer's one `MLServerError(status_code)` with one
handler.

Nothing internal reaches the client: a fault of ours (5xx) is told in plain words and the
request id, while the log line under that id holds what went wrong (a Redis address, a trace).
"""

import logging
import math
import random
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
from starlette.types import Scope

from shared.settings import Settings

MAX_REPORTED_ERRORS = 20
# Where `api.request_context.RequestContext` leaves the request's id in the ASGI scope.
REQUEST_ID_SCOPE_KEY = "realty.request_id"
# Where the handlers leave the error answered, for `RequestContext` to count it (api.metrics).
ERROR_SCOPE_KEY = "realty.error"

log = logging.getLogger(__name__)


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


class RecordConflictError(ServiceError):
    """Input valid on its own that the record contradicts (a sale of an estimate that is not on
    record, or already sold); each problem located as InvalidInputError's are."""

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
    errors: Iterable[dict[str, Any]],
    prefix: Sequence[str | int] = (),
    total: str = "the request",
    count: int | None = None,
) -> InvalidInputError:
    """At most MAX_REPORTED_ERRORS of `errors`, located under `prefix`, then a note of how many
    there were (`count`, when `errors` holds only the first ones): a broken 100,000-row file
    gives a readable answer, not megabytes."""
    errors = list(errors)
    count = len(errors) if count is None else count
    shown = [_readable({**e, "loc": (*prefix, *e["loc"])}) for e in errors[:MAX_REPORTED_ERRORS]]
    if count > MAX_REPORTED_ERRORS:
        shown.append(
            {
                "type": "too_many_errors",
                "loc": tuple(prefix),
                "msg": f"{count} errors in {total}; the first {MAX_REPORTED_ERRORS} are shown",
            }
        )
    return InvalidInputError(shown)


def as_service_error(exc: Exception) -> ServiceError:
    """What the client is told about `exc`: never a Redis address or a library's own words,
    which `handle_error` logs instead."""
    match exc:
        case ServiceError():
            return exc
        case RequestValidationError():
            return field_errors(exc.errors())
        case RedisConnectionError() | RedisTimeoutError() | OperationalError():
            return ServiceUnavailableError("the job queue (Redis) is unreachable; retry shortly")
        case RedisError():  # answered but refused: out of memory under noeviction, read-only…
            return ServiceUnavailableError("the job queue (Redis) refused the request; retry soon")
        case StarletteHTTPException(status_code=400) if exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body": say why, as for a JSON syntax error.
            return InvalidInputError.at(("body",), _unreadable(exc.__cause__), "json_invalid")
        case StarletteHTTPException():  # the framework's own: 404 route, 405, 413 body…
            return ServiceError(exc.detail, status_code=exc.status_code, headers=exc.headers)
    raise exc


def _unreadable(cause: BaseException) -> str:
    match cause:
        case UnicodeDecodeError():
            return "the body is not UTF-8 text, so not JSON"
        case RecursionError():
            return "the body's JSON is nested too deeply"
        case ValueError():  # e.g. a number of over 4,300 digits
            return f"the body could not be read as JSON: {cause}"
    return "the body could not be read as JSON"


def new_request_id() -> str:
    """128 random bits as hex, the form of the prediction ids, at a tenth of uuid4's cost: an id
    needs to be unique, not secret (a client may choose its own), and `random` is reseeded in
    each forked process."""
    return random.randbytes(16).hex()


def request_id_of(scope: Scope) -> str:
    """The id `RequestContext` gave the request (a fresh one for an app built without it)."""
    return scope.get(REQUEST_ID_SCOPE_KEY) or new_request_id()


def error_response(
    error: ServiceError, request_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one shape of every error answer: what went wrong, and the id to quote about it."""
    return JSONResponse(
        {"detail": jsonable_encoder(error.detail), "request_id": request_id},
        status_code=error.status_code,
        headers=error.headers | (headers or {}),
    )


def described(exc: BaseException) -> str:
    """An exception as the log needs it: its type and its own words (redis's repr omits them)."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def _log_fault(scope: Scope, status: int, exc: Exception) -> None:
    """A fault of ours, with what the client was not told, under the id it was told."""
    cause = exc.__cause__ or exc.__context__
    log.warning(
        "request %s: %s %s answered %d: %s%s",
        request_id_of(scope),
        scope["method"],
        scope["path"],
        status,
        described(exc),
        f" (caused by {described(cause)})" if cause is not None else "",
    )


def answer_to(exc: Exception, scope: Scope, settings: Settings) -> JSONResponse:
    """The one handler: the answer to `exc`, raised while serving the request of `scope`.
    FastAPI calls it (`install_error_handler`), and so does `api.fast_path`, which answers valid
    houses without FastAPI; an exception that is not a `ServiceError` or one `as_service_error`
    knows is a crash: the same shape, the trace only in the log, under the request's id."""
    request_id = request_id_of(scope)
    try:
        error = as_service_error(exc)
    except Exception:  # as_service_error re-raises what it does not know
        log.error(
            "request %s: %s %s crashed", request_id, scope["method"], scope["path"], exc_info=exc
        )
        error = ServiceError(f"internal error; quote request id {request_id} when reporting it")
    else:
        if error.status_code >= 500:
            _log_fault(scope, error.status_code, exc)
    scope[ERROR_SCOPE_KEY] = error
    retry_after = {"Retry-After": str(settings.retry_after_s)} if error.retry else None
    return error_response(error, request_id, retry_after)


def install_error_handler(app: FastAPI, settings: Settings) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return answer_to(exc, request.scope, settings)

    # Starlette's last resort for any other exception, and each kind the handler knows.
    for kind in (
        Exception,
        ServiceError,
        RequestValidationError,
        RedisError,
        OperationalError,
        StarletteHTTPException,
    ):
        app.add_exception_handler(kind, handle)
