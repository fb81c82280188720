"""Faults get clear 503/504 answers, lose nothing, and the service recovers by itself."""

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from stack import Stack, as_rows, running_stack, wait_for

FAST_FAULTS = {
    "heartbeat_interval_s": 0.5,
    "heartbeat_ttl_s": 3,
    "predict_timeout_s": 2,
    "retry_after_s": 7,
}


@pytest.fixture
def fragile(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own per test, since each test breaks it."""
    with running_stack(tmp_path, **FAST_FAULTS) as running:
        yield running


def post_house(stack: Stack, house: dict) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = stack.http.post(f"{stack.api_url}/v1/predict", json=house, timeout=30)
    return response, time.monotonic() - started


def assert_unavailable(response: requests.Response, elapsed: float, mentions: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "7"
    assert mentions in response.json()["detail"]
    assert elapsed < 3, f"503 took {elapsed:.1f} s"


def test_redis_down_gives_fast_503_then_recovers_without_restarts(fragile: Stack, house: dict):
    assert fragile.redis_proc is not None
    fragile.redis_proc.kill()

    assert_unavailable(*post_house(fragile, house), mentions="Redis")
    started = time.monotonic()
    batch = fragile.http.post(f"{fragile.api_url}/v1/batch", json={"rows": [house]}, timeout=30)
    assert_unavailable(batch, time.monotonic() - started, mentions="Redis")
    ready = requests.get(f"{fragile.api_url}/health/ready", timeout=30)
    assert ready.status_code == 503
    assert "unreachable" in ready.json()["redis"]

    fragile.start_redis()  # same port and AOF directory
    fragile.wait_ready()
    response, _ = post_house(fragile, house)
    assert response.status_code == 200, response.text


def test_worker_killed_gives_503_naming_the_version_then_recovers(fragile: Stack, house: dict):
    version = requests.get(f"{fragile.api_url}/health/ready", timeout=5).json()["active_version"]
    fragile.workers[0].kill()  # SIGKILL: no goodbye, the heartbeat simply stops
    wait_for(
        lambda: requests.get(f"{fragile.api_url}/health/ready", timeout=5).status_code == 503,
        10,
        "readiness to notice the lost worker",
    )
    assert version in requests.get(f"{fragile.api_url}/health/ready", timeout=5).json()["reason"]
    assert_unavailable(*post_house(fragile, house), mentions=version)

    fragile.start_worker()
    fragile.wait_ready()
    assert post_house(fragile, house)[0].status_code == 200


def test_stuck_worker_gives_504_at_the_deadline_and_work_is_not_lost(
    fragile: Stack, house: dict, future_examples
):
    worker = fragile.workers[0]
    worker.signal_group(signal.SIGSTOP)  # alive but not answering
    try:
        response, elapsed = post_house(fragile, house)
        assert response.status_code == 504, response.text
        assert 1.9 < elapsed < 4
        assert "retry" in response.json()["detail"]
        accepted = fragile.http.post(
            f"{fragile.api_url}/v1/batch", json={"rows": as_rows(future_examples)}, timeout=30
        )
        assert accepted.status_code == 202, accepted.text
    finally:
        worker.signal_group(signal.SIGCONT)

    status_url = accepted.json()["status_url"]
    wait_for(
        lambda: fragile.http.get(status_url, timeout=5).json()["status"] == "succeeded",
        30,
        "the batch queued while the worker was stuck",
    )
    assert fragile.http.get(status_url, timeout=5).json()["rows_done"] == 100
    assert post_house(fragile, house)[0].status_code == 200


def test_no_worker_at_all_is_reported_not_waited_for(tmp_path: Path, house: dict):
    with running_stack(tmp_path, **FAST_FAULTS) as stack:
        stack.workers[0].stop()  # warm shutdown deregisters at once
        wait_for(
            lambda: requests.get(f"{stack.api_url}/health/ready", timeout=5).status_code == 503,
            10,
            "readiness to drop",
        )
        assert_unavailable(*post_house(stack, house), mentions="no worker")


def test_batch_results_expire_after_the_configured_time(tmp_path: Path, house: dict):
    with running_stack(tmp_path, job_ttl_s=2) as stack:
        accepted = stack.http.post(f"{stack.api_url}/v1/batch", json={"rows": [house]}, timeout=30)
        status_url = accepted.json()["status_url"]
        wait_for(
            lambda: stack.http.get(status_url, timeout=5).json()["status"] == "succeeded", 10, "job"
        )
        time.sleep(2.5)
        gone = stack.http.get(status_url, timeout=5)
        assert gone.status_code == 404
        assert "more than 2 s ago" in gone.json()["detail"]
