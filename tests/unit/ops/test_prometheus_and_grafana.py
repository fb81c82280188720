"""ops/: the thresholds of the Prometheus rules are the ones the rest of the project states, every
alert has a promtool unit test, the Grafana dashboard shows what operators ask for, and compose
wires Prometheus to every replica with the scrape token. (promtool checks the files and runs the
alerts' tests: `make rules`; tests/unit/api/test_metric_names.py checks the metric names.)"""

import json
import re
from pathlib import Path

import yaml

from api.metrics import LATENCY_BUCKETS
from shared.monitoring.monitor import COVERAGE_80, bands

REPO = Path(__file__).resolve().parents[3]
RULES = yaml.safe_load((REPO / "ops/prometheus/rules.yml").read_text())
CONFIG = yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text())
DASHBOARD = json.loads((REPO / "ops/grafana/realty.json").read_text())
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def rules() -> list[dict]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def alert(name: str) -> dict:
    return next(rule for rule in rules() if rule.get("alert") == name)


def test_every_alert_has_a_unit_test():
    tested = yaml.safe_load((REPO / "ops/prometheus/rules_test.yml").read_text())["tests"]
    names = {t["alertname"] for test in tested for t in test.get("alert_rule_test", [])}
    assert names == {rule["alert"] for rule in rules() if "alert" in rule}


def test_the_latency_alert_is_the_150_ms_target_on_a_histogram_bound():
    expr = alert("RealtyPredictLatencyHigh")["expr"]
    assert expr.endswith("> 0.15") and 0.15 in LATENCY_BUCKETS


def test_the_live_accuracy_bands_are_realty_monitor_s_for_the_report():
    report = json.loads((REPO / "docs/model_report.json").read_text())
    band = bands(report, "gbm", "full")
    accuracy = alert("RealtyLiveAccuracyOutOfBand")["expr"]
    ppe10 = float(re.search(r"realty_live_ppe10\{[^}]*\}\) < ([0-9.]+)", accuracy).group(1))
    median = float(re.search(r"realty_live_median_ape\{[^}]*\}\) > ([0-9.]+)", accuracy).group(1))
    assert ppe10 == round(band["ppe10"].low, 3)
    assert median == round(band["median_ape"].high, 3)
    coverage = alert("RealtyLiveCoverageOutOfBand")["expr"]
    assert f"< {COVERAGE_80[0]}" in coverage and f"> {COVERAGE_80[1]}" in coverage


def test_the_dashboard_shows_what_operators_ask_for():
    exprs = " ".join(t["expr"] for panel in DASHBOARD["panels"] for t in panel.get("targets", []))
    for wanted in (
        "realty:http_requests:rate5m",  # request rate
        "realty:http_request_duration_seconds:p50_5m",
        "realty:http_request_duration_seconds:p99_5m",
        "realty:http_errors:ratio_rate5m",
        "realty:api_errors:rate5m",
        "realty:prediction_queued_seconds:mean5m",  # queue vs model
        "realty:prediction_model_seconds:mean5m",
        "realty_worker_microbatch_size_bucket",
        "realty:worker_batch_rows:rate5m",
        "realty_queue_depth",
        "realty_live_workers",
        "realty_live_ppe10",  # live accuracy
        "realty_drift_psi",
    ):
        assert wanted in exprs, wanted
    panels = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in panels)


def test_prometheus_finds_every_api_and_worker_replica_at_their_ports():
    jobs = {job["job_name"]: job for job in CONFIG["scrape_configs"]}
    worker_port = int(COMPOSE["worker"]["environment"]["REALTY_WORKER_METRICS_PORT"])
    api_port = int(COMPOSE["api"]["ports"][0].rsplit(":", 1)[1])
    for job, port in (("api", api_port), ("worker", worker_port)):
        (lookup,) = jobs[job]["dns_sd_configs"]
        assert lookup == {"names": [job], "type": "A", "port": port, "refresh_interval": "15s"}


def test_prometheus_scrapes_with_the_token_it_writes_at_start():
    prometheus = COMPOSE["prometheus"]
    assert prometheus["image"] == "prom/prometheus:v2.42.0"  # promtool's (Debian 12) version
    jobs = [job for job in CONFIG["scrape_configs"] if job["job_name"] in ("api", "worker")]
    (token_file,) = {job["authorization"]["credentials_file"] for job in jobs}
    script = prometheus["entrypoint"][2]
    assert f"printenv REALTY_METRICS_TOKEN > {token_file}" in script
    assert prometheus["tmpfs"][0].startswith(f"{Path(token_file).parent}:")
    assert prometheus["environment"]["REALTY_METRICS_TOKEN"].startswith("${REALTY_METRICS_TOKEN:?")
    assert "./ops/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])
