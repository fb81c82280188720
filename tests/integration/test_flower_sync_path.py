"""Flower shows every model call: the micro-batcher's calls for single predictions appear as
tasks (`realty.predict_singles`, with their batch size, runtime and worker) beside the batch
chunks, so its task list, rates and failures cover the sync path too."""

import ast
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from stack import Process, Stack

from shared.tools.procs import free_port, wait_for
from shared.wire import names

LOGIN = ("realty", "flower-test-login")


@pytest.fixture(scope="module")
def flower(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Flower as `make run` starts it, watching the session's stack; its base URL."""
    port = free_port()
    env = stack.env | stack.role_env("worker") | {"FLOWER_BASIC_AUTH": ":".join(LOGIN)}
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    argv = [sys.executable, "scripts/flower.py", "--address=127.0.0.1", f"--port={port}"]
    proc = Process("flower", argv, env, tmp_path_factory.mktemp("flower") / "flower.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthcheck", timeout=2).ok, 30, "Flower")
        yield base
    finally:
        proc.stop()


def tasks(flower: str, name: str) -> dict[str, dict[str, Any]]:
    answer = requests.get(f"{flower}/api/tasks", params={"taskname": name}, auth=LOGIN, timeout=10)
    answer.raise_for_status()
    return answer.json()


def batch_sizes(flower: str) -> list[int]:
    return [
        ast.literal_eval(task["kwargs"])["batch_size"]
        for task in tasks(flower, names.PREDICT_SINGLES_TASK).values()
        if task["state"] == "SUCCESS"
    ]


def test_every_single_prediction_is_in_a_task_flower_lists(
    stack: Stack, flower: str, future_rows: list[dict[str, Any]]
) -> None:
    predict = f"{stack.api_url}/v1/predict"
    # Flower's event receiver connects a moment after it answers: wait until it sees a call.
    wait_for(
        lambda: stack.http.post(predict, json=future_rows[0]).ok and batch_sizes(flower),
        30,
        "Flower to show a model call",
    )
    before = sum(batch_sizes(flower))
    for house in future_rows[:20]:
        assert stack.http.post(predict, json=house).status_code == 200
    wait_for(lambda: sum(batch_sizes(flower)) >= before + 20, 15, "all 20 in Flower")
    assert sum(batch_sizes(flower)) == before + 20
    shown = next(iter(tasks(flower, names.PREDICT_SINGLES_TASK).values()))
    assert re.fullmatch(r"v\d+@\S+", shown["worker"]), shown["worker"]  # version@pool
    assert shown["runtime"] is not None and 0 < shown["runtime"] < 5
    assert ast.literal_eval(shown["kwargs"])["variant"] in ("full", "minimal")


def test_a_model_call_that_fails_shows_as_a_failed_task(stack: Stack, flower: str) -> None:
    house = {
        "bedrooms": 3,
        "bathrooms": 2,
        "sqft_living": 1800,
        "sqft_lot": 5000,
        "floors": 1,
        "sqft_above": 1800,
        "sqft_basement": 0,
        "zipcode": "10001",  # outside the model's area: the call fails for its one request
    }
    refused = stack.http.post(f"{stack.api_url}/v1/predict/minimal", json=house)
    assert refused.status_code == 422

    def failed() -> list[dict[str, Any]]:
        return [
            t for t in tasks(flower, names.PREDICT_SINGLES_TASK).values() if t["state"] == "FAILURE"
        ]

    wait_for(lambda: bool(failed()), 15, "a failed task in Flower")
    assert "unknown_zipcode" in failed()[0]["exception"]
