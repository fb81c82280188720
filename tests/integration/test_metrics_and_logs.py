"""Metrics and logs on a real stack (a worker pool with its metrics port, the API, Redis,
PostgreSQL): Prometheus's view with the scrape token, by route and status, the pool's micro-batch
sizes, and the API's and workers' JSON log lines carrying the request ids clients are given."""

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from postgres import Postgres
from prometheus_client.parser import text_string_to_metric_families
from stack import REPO, Process, Stack, running_stack, wait_for

from shared.model.bundles import latest_version
from shared.multiprocess_metrics import SHARED_MEMORY
from shared.tools.procs import free_port

TOKEN = secrets.token_urlsafe(32)
VERSION = latest_version(REPO / "model_artifacts")
PREDICTIONS = 5
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("metrics"),
        workers=0,
        pools=("pool1",),
        active=VERSION,
        worker_metrics_port=free_port(),
        metrics_token=TOKEN,
        **postgres.stack_settings(),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(service: Stack, future_rows: list[dict]) -> dict[str, str]:
    """What the tests look for: PREDICTIONS answered predictions and one refused house (a 422),
    sent before any test reads the metrics; the request ids they were answered under."""
    ids = {}
    for index, row in enumerate(future_rows[:PREDICTIONS]):
        answer = service.http.post(f"{service.api_url}/v1/predict", json=row, timeout=30)
        assert answer.status_code == 200, answer.text
        ids[f"prediction {index}"] = answer.headers["x-request-id"]
    bad = {key: value for key, value in future_rows[0].items() if key != "sqft_living"}
    refused = service.http.post(f"{service.api_url}/v1/predict", json=bad, timeout=30)
    assert refused.status_code == 422
    ids["refused"] = refused.headers["x-request-id"]
    return ids


def scrape(url: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30)


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_port(service: Stack) -> int:
    return int(service.env["REALTY_WORKER_METRICS_PORT"])


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_prometheus_sees_requests_by_route_and_status(service, traffic):
    answer = scrape(f"{service.api_url}/metrics")
    assert answer.status_code == 200
    found = samples(answer.text)
    predict = {"method": "POST", "route": "/v1/predict"}
    count = "realty_http_request_duration_seconds_count"
    assert value(found, count, status="200", **predict) == PREDICTIONS
    assert value(found, count, status="422", **predict) == 1
    assert value(found, "realty_api_errors_total", type="invalid_input") == 1
    # Every answered prediction's trip, from its reply; the refused house never reached a worker.
    for name in ("queued_seconds", "model_seconds", "batch_size"):
        assert value(found, f"realty_prediction_{name}_count", version=VERSION) == PREDICTIONS
    assert value(found, "realty_live_workers", version=VERSION) == 1
    assert value(found, "realty_queue_limit", version=VERSION) >= 1


def test_the_scrape_token_opens_metrics_only_and_a_wrong_one_nothing(service, traffic):
    assert scrape(f"{service.api_url}/v1/models").status_code == 401
    assert scrape(f"{service.api_url}/metrics", token=None).status_code == 401
    assert scrape(f"{service.api_url}/metrics", token=TOKEN[:-2] + "xx").status_code == 401
    assert scrape(f"http://127.0.0.1:{worker_port(service)}/metrics", token=None).status_code == 401


def test_the_worker_pool_serves_its_micro_batch_sizes(service, traffic):
    answer = scrape(f"http://127.0.0.1:{worker_port(service)}/metrics")
    assert answer.status_code == 200
    found = samples(answer.text)
    # Each model call observed its size: together they answered every prediction.
    assert value(found, "realty_worker_microbatch_size_sum", version=VERSION) == PREDICTIONS
    assert value(found, "realty_worker_microbatch_size_count", version=VERSION) >= 1
    assert value(found, "realty_worker_predictions_total", version=VERSION) == PREDICTIONS


def test_the_api_logs_each_request_as_json_under_the_id_it_answered(service, traffic):
    assert service.api_proc is not None
    deadline = time.monotonic() + 5  # lines are written in batches, within 0.2 s
    while time.monotonic() < deadline:
        lines = {
            line["request_id"]: line
            for line in json_lines(service.api_proc.log_path)
            if line["logger"] == "api.access"
        }
        if set(traffic.values()) <= set(lines):
            break
        time.sleep(0.1)
    refused = lines[traffic["refused"]]
    assert refused["status"] == 422 and refused["route"] == "/v1/predict"
    answered = lines[traffic["prediction 0"]]
    assert answered["status"] == 200 and answered["method"] == "POST"
    assert answered["key"] == "admin" and answered["duration_ms"] > 0
    assert answered["level"] == "INFO" and answered["time"].endswith("Z")


def test_a_batch_job_s_worker_lines_carry_its_id(service, future_rows):
    accepted = service.http.post(
        f"{service.api_url}/v1/batch", json={"rows": future_rows[:3]}, timeout=30
    ).json()
    job_id = accepted["job_id"]
    pool_log = service.workers[0].log_path
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [line for line in json_lines(pool_log) if line.get("request_id") == job_id]
        if mine:
            break
        time.sleep(0.2)
    assert mine, "no worker line carries the job's id"
    assert all(line["logger"].startswith("celery") for line in mine)


def test_several_api_processes_add_up_to_one_count(redis_stack: Stack):
    """`python -m api --workers 2`: whichever process answers a scrape reports every process's
    requests (prometheus-client's multiprocess mode), and the directory goes with the API."""
    stack, port = redis_stack, free_port()
    argv = [sys.executable, "-m", "api", "--factory", "api.main:create_app", "--workers", "2"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = stack.env | stack.role_env("api") | {"REALTY_METRICS_TOKEN": TOKEN}
    env |= {"REALTY_REDIS_URL": stack.service_url, "PYTHONUNBUFFERED": "1"}
    api = Process("api", argv, env, stack.workdir / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/health/live", timeout=1).ok, 30, "API")
        sent = 1
        # Until both processes have answered some (each keeps its own file of values).
        while len(list(SHARED_MEMORY.glob(f"realty-api-metrics-{api.pid}-*/histogram_*"))) < 2:
            assert sent < 2_000, "one process answered everything"
            requests.get(f"{url}/health/live", timeout=5)  # a new connection each time
            sent += 1

        def counted() -> float:
            found = samples(scrape(f"{url}/metrics").text)
            labels = {"method": "GET", "route": "/health/live", "status": "200"}
            return value(found, "realty_http_request_duration_seconds_count", **labels)

        # Each process adds its requests to the shared files within a second.
        wait_for(lambda: counted() == sent, 10, f"{sent} requests counted")
        assert counted() == sent  # the same whichever process answers the scrape
    finally:
        api.stop()
    assert not list(SHARED_MEMORY.glob(f"realty-api-metrics-{api.pid}-*"))
