"""`GET /metrics` for Prometheus: queue depths and live workers per version, read from Redis at
scrape time (Flower cannot see queue depth with the Redis broker). KEDA or an alert can use the
same numbers."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from api.auth import AdminCaller
from api.deps import VersionsDep

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(_: AdminCaller, versions: VersionsDep) -> Response:
    registry = CollectorRegistry()
    depth = Gauge(
        "realty_queue_depth",
        "Work waiting in a version's list.",
        ["version", "queue"],
        registry=registry,
    )
    workers = Gauge("realty_live_workers", "Live worker nodes.", ["version"], registry=registry)
    active = Gauge("realty_active", "1 for the active version.", ["version"], registry=registry)
    current = await versions.active()
    for version in await versions.known():
        for queue, waiting in (await versions.queue_depths(version)).items():
            depth.labels(version, queue).set(waiting)
        workers.labels(version).set(await versions.live_workers(version))
        active.labels(version).set(1 if version == current else 0)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
