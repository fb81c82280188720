"""The Prometheus rules and the Grafana dashboard (ops/) read only metrics the service exports:
what the API's /metrics, the record's gauges and the workers' port can hold, collected from the
running code's registries and metric families, and the recording rules' own names."""

import json
import re
from pathlib import Path

import pytest
import yaml
from fake_keys import bearer
from prometheus_client import generate_latest

from api.recording_metrics import families_of
from shared.exposition import read_at_scrape
from shared.wire.api_keys import Role
from shared.wire.messages import RecorderState
from worker import metrics as worker_metrics

REPO = Path(__file__).resolve().parents[3]
RULES = yaml.safe_load((REPO / "ops/prometheus/rules.yml").read_text())
DASHBOARD = json.loads((REPO / "ops/grafana/realty.json").read_text())
NAME = re.compile(r"\b(realty_[a-z0-9_]+|realty:[a-z0-9_:]+)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def names_in(exposition: bytes) -> set[str]:
    """Every series name an exposition can hold, from its TYPE lines (families without samples
    yet included)."""
    found = set()
    for line in exposition.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            found |= {name + suffix for suffix in SUFFIXES[kind]}
    return found


@pytest.fixture
def exported(client) -> set[str]:
    """What the API's /metrics (Redis gauges, live figures, request metrics), the record's
    gauges and the workers' port can hold."""
    api = client.get("/metrics", headers=bearer(Role.ADMIN)).content
    state = RecorderState(recorder="r", at_ms=1, backlog_rows=3, backlog_age_s=2.0, error="x")
    recording = read_at_scrape(families_of(3, state, 100))
    return names_in(api) | names_in(recording) | names_in(generate_latest(worker_metrics.REGISTRY))


def rules() -> list[dict]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def test_the_rules_read_only_exported_metrics_and_recorded_ones(exported):
    assert {"realty_queue_depth", "realty_worker_batch_rows_total"} <= exported
    for rule in rules():
        for name in NAME.findall(rule["expr"]):
            assert name in (recorded() if ":" in name else exported), (name, rule)


def test_the_dashboard_reads_only_exported_metrics_and_recorded_ones(exported):
    exprs = [t["expr"] for panel in DASHBOARD["panels"] for t in panel.get("targets", [])]
    names = {name for expr in exprs for name in NAME.findall(expr)}
    assert names
    for name in names:
        assert name in (recorded() if ":" in name else exported), name
