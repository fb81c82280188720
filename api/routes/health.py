"""Liveness (the process answers) and readiness (it can actually serve estimates)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.deps import InboxDep, SettingsDep, VersionsDep

router = APIRouter(prefix="/health", tags=["health"])


@router.api_route("/live", methods=["GET", "HEAD"])
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(versions: VersionsDep, inbox: InboxDep, settings: SettingsDep) -> JSONResponse:
    """200 only when Redis answers and a warm worker serves the active version; else 503 and why."""
    retry = {"Retry-After": str(settings.retry_after_s)}
    try:
        await versions.ping()
        active = await versions.active()
        workers = await versions.live_workers(active) if active else 0
        durable = await versions.durable()
    except RedisError as exc:
        return JSONResponse({"status": "unavailable", "redis": f"unreachable: {exc}"}, 503, retry)
    body = {"status": "ready", "redis": "ok", "active_version": active, "workers": workers}
    if active is None:
        body |= {"status": "unavailable", "reason": "no model version is active yet"}
    elif workers == 0:
        body |= {"status": "unavailable", "reason": f"no worker serves model {active}"}
    elif not durable:
        body |= {"status": "unavailable", "reason": "Redis runs without persistence (AOF)"}
    elif not inbox.reading:
        body |= {"status": "unavailable", "reason": "this API process reads no replies"}
    if body["status"] == "ready":
        return JSONResponse(body)
    return JSONResponse(body, 503, retry)
