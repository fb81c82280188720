"""Health, readiness, model listing and the OpenAPI document."""

from pathlib import Path

import requests
from stack import Stack

from shared.model.bundles import read_manifest


def test_live_answers_ok(api: requests.Session):
    assert api.get("/health/live").json() == {"status": "ok"}


def test_ready_names_the_active_version_and_its_workers(api: requests.Session):
    body = api.get("/health/ready").json()
    assert body["status"] == "ready"
    assert body["active_version"].startswith("v")
    assert body["workers"] == 1


def test_models_lists_the_active_bundle_with_its_metrics(api: requests.Session, stack: Stack):
    models = api.get("/v1/models").json()
    active = [m for m in models if m["active"]]
    assert len(active) == 1
    on_disk = read_manifest(Path(stack.env["REALTY_MODEL_DIR"]) / active[0]["version"])
    assert active[0]["kind"] == on_disk.kind
    assert active[0]["metrics"]["test"]["r2"] == on_disk.metrics["test"]["r2"]
    assert "zipcode" in active[0]["request_fields"]


def test_openapi_documents_every_endpoint(api: requests.Session):
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/predict",
        "/v1/predict/minimal",
        "/v1/batch",
        "/v1/batch/{job_id}",
        "/v1/models",
        "/health/live",
        "/health/ready",
    ):
        assert path in paths
    assert api.get("/docs").status_code == 200


def test_metrics_expose_queue_depth_and_live_workers(api: requests.Session):
    text = api.get("/metrics").text
    active = api.get("/health/ready").json()["active_version"]
    assert f'realty_live_workers{{version="{active}"}} 1.0' in text
    assert f'realty_queue_depth{{queue="requests",version="{active}"}}' in text
    assert f'realty_active{{version="{active}"}} 1.0' in text
