"""Liveness (the process answers) and readiness (it can actually serve estimates)."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.deps import InboxDep, RecordingDep, SettingsDep, VersionsDep
from api.errors import described, request_id_of

router = APIRouter(prefix="/health", tags=["health"])
log = logging.getLogger(__name__)


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


# HEAD, which HTTP allows wherever GET is, for probes that send it; a route of its own, out of
# the document: one route of both methods gives both operations one id, which OpenAPI forbids.
router.head("/live", include_in_schema=False)(live)


@router.get(
    "/ready",
    responses={
        200: {
            "description": "Ready (`status` ready), or `status` degraded with a `reason`: "
            "estimates are answered but their recording is delayed (PostgreSQL unreachable or "
            "behind; they wait in Redis and are written when it is back)."
        },
        503: {
            "description": "Not ready, and why: Redis unreachable, no active version, no warm "
            "worker, or this process reads no replies (with the request id); see Retry-After."
        },
    },
)
async def ready(
    request: Request,
    versions: VersionsDep,
    inbox: InboxDep,
    settings: SettingsDep,
    recording: RecordingDep,
) -> JSONResponse:
    """200 only when Redis answers and a warm worker serves the active version; else 503 and why
    (Redis's address and error only in the log, under the request id the answer carries). A 200
    says "degraded" while the record of estimates lags: predictions still work."""
    retry = {"Retry-After": str(settings.retry_after_s)}
    request_id = request_id_of(request.scope)
    try:
        await versions.ping()
        active = await versions.active()
        workers = await versions.live_workers(active) if active else 0
        durable = await versions.durable()
        delayed = await recording.delayed() if recording is not None else None
    except RedisError as exc:
        log.warning("request %s: readiness: Redis unreachable: %s", request_id, described(exc))
        body = {"status": "unavailable", "redis": "unreachable", "request_id": request_id}
        return JSONResponse(body, 503, retry)
    body = {"status": "ready", "redis": "ok", "active_version": active, "workers": workers}
    if active is None:
        body |= {"status": "unavailable", "reason": "no model version is active yet"}
    elif workers == 0:
        body |= {"status": "unavailable", "reason": f"no worker serves model {active}"}
    elif not durable:
        body |= {"status": "unavailable", "reason": "Redis runs without persistence (AOF)"}
    elif not inbox.reading:
        body |= {"status": "unavailable", "reason": "this API process reads no replies"}
    if body["status"] == "ready" and delayed is not None:
        body |= {"status": "degraded", "reason": delayed}
    if body["status"] in ("ready", "degraded"):
        return JSONResponse(body)
    return JSONResponse(body | {"request_id": request_id}, 503, retry)
