"""Faults of the service, mapped to clear HTTP answers (never a bare 500 for a known fault)."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
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


class BodyTooLargeError(Exception):
    pass


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    retry = {"Retry-After": str(settings.retry_after_s)}

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=retry)

    async def redis_down(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job queue (Redis) is unreachable: {exc}"}, 503, headers=retry
        )

    async def timeout(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=504, headers=retry)

    async def not_served(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    app.add_exception_handler(ServiceUnavailableError, unavailable)
    for error in (RedisConnectionError, RedisTimeoutError, OperationalError):
        app.add_exception_handler(error, redis_down)
    app.add_exception_handler(PredictionTimeoutError, timeout)
    app.add_exception_handler(VersionNotServedError, not_served)
    app.add_exception_handler(BodyTooLargeError, too_large)
