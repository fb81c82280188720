"""`GET /metrics` for Prometheus: queue depths and live workers per version, read from Redis at
scrape time (Flower cannot see queue depth with the Redis broker), then the API processes' own
request metrics (api/metrics.py). KEDA or an alert can use the same numbers.

Read by Prometheus with the scrape token, or by an admin key (api/scrape_access.py). Values
read at scrape time are metric families, never `Gauge` objects (`read_at_scrape` of
shared/exposition.py says why)."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily

from api.deps import VersionsDep, services_of
from api.live_figures import live_figures
from api.metrics import api_exposition
from api.recording_metrics import recording_families
from api.scrape_access import MetricsReader
from shared.exposition import read_at_scrape
from shared.monitoring.live import metric_families

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(_: MetricsReader, versions: VersionsDep, request: Request) -> Response:
    depth = GaugeMetricFamily(
        "realty_queue_depth", "Work waiting in a version's list.", labels=["version", "queue"]
    )
    limit = GaugeMetricFamily(
        "realty_queue_limit",
        "Depth at which a version's request queue refuses more single predictions (503).",
        labels=["version"],
    )
    workers = GaugeMetricFamily("realty_live_workers", "Live worker nodes.", labels=["version"])
    active = GaugeMetricFamily("realty_active", "1 for the active version.", labels=["version"])
    current = await versions.active()
    for version in await versions.known():
        for queue, waiting in (await versions.queue_depths(version)).items():
            depth.add_metric([version, queue], waiting)
        limit.add_metric([version], await versions.queue_limit(version))
        workers.add_metric([version], await versions.live_workers(version))
        active.add_metric([version], 1 if version == current else 0)
    families = [depth, limit, workers, active]
    services = services_of(request)  # the record's buffer (api/recording_metrics.py)
    families += await recording_families(services.recording, services.settings)
    # Live accuracy and drift (shared/monitoring/live.py), cached per process for live_cache_s.
    families += metric_families(await live_figures(request).snapshot())
    return Response(read_at_scrape(families) + api_exposition(), media_type=CONTENT_TYPE_LATEST)
