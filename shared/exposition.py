"""The text Prometheus reads, in either mode of prometheus-client (shared/multiprocess_metrics.py
says when each applies)."""

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from shared.multiprocess_metrics import ENV


def exposition(registry: CollectorRegistry) -> bytes:
    """In multiprocess mode every process's values from the shared directory; otherwise (one
    process, e.g. an app built in a test) `registry`'s own."""
    path = os.environ.get(ENV)
    if not path:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path)
    return generate_latest(merged)


class _Read(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def read_at_scrape(families: Iterable[Metric]) -> bytes:
    """The text of values read at scrape time (from Redis, PostgreSQL), built as metric
    families (`GaugeMetricFamily`), never as `Gauge` objects: in multiprocess mode a `Gauge`
    writes its value to a file of the shared directory, which every later scrape would report
    again, once per process that wrote it."""
    return generate_latest(_Read(families))
