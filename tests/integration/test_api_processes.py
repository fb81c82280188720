"""`python -m api` given no process count starts one per core it may use, at most 4
(shared/cores.py), the layout `make run` and the compose api container start; a count given
wins."""

import sys

import psutil
import pytest
import requests
from stack import Process, Stack, wait_for

from shared.cores import usable_cores
from shared.tools.procs import free_port


def serving_processes(api: Process) -> int:
    """uvicorn's spawned worker processes, or its parent alone when it serves by itself."""
    spawned = [
        child
        for child in psutil.Process(api.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    ]
    return len(spawned) or 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, usable_cores()),
        ({"UVICORN_WORKERS": "1"}, 1),
        ({"UVICORN_WORKERS": ""}, usable_cores()),
    ],
    ids=["none-given", "one-given", "empty-as-compose-passes-an-unset-API_WORKERS"],
)
def test_the_api_starts_one_process_per_usable_core_unless_told(
    redis_stack: Stack, given: dict[str, str], expected: int
) -> None:
    if given.get("UVICORN_WORKERS") != "1" and usable_cores() < 2:
        pytest.skip("on one core the default is one process: nothing tells it from a count of 1")
    stack, port = redis_stack, free_port()
    argv = [sys.executable, "-m", "api", "--factory", "api.main:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = stack.env | stack.role_env("api") | {"REALTY_REDIS_URL": stack.service_url} | given
    api = Process("api", argv, env, stack.workdir / "api.log").start()
    try:
        url = f"http://127.0.0.1:{port}/health/live"
        wait_for(lambda: requests.get(url, timeout=1).ok, 30, "API")
        # Live means a serving process answered: a spawned one, if any were to be spawned.
        wait_for(lambda: serving_processes(api) == expected, 15, f"{expected} API processes")
    finally:
        api.stop()
