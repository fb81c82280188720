"""Deadlines are judged on Redis's clock: a worker whose own clock is 15 s off answers every
prediction, and computes nothing for a caller that has already had its 504."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libfaketime
import pytest
import requests
from stack import Stack, running_stack

pytestmark = pytest.mark.integration

LATE = "came after its caller left"  # the API's log line for a reply nobody awaits


def shifted_clock(offset: str) -> dict[str, str]:
    """The environment that makes a process's wall clock run `offset` (e.g. "+15s") off;
    its monotonic clock is left alone."""
    env = dict(libfaketime.get_reload_information()[1])
    return env | {"FAKETIME": offset, "DONT_FAKE_MONOTONIC": "1"}


def wall_clock_of(env: dict[str, str]) -> float:
    code = "import time; print(time.time())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=os.environ | env, capture_output=True, text=True
    )
    return float(out.stdout)


def predict(stack: Stack, house: dict) -> requests.Response:
    return requests.post(
        f"{stack.api_url}/v1/predict", json=house, headers=stack.http.headers, timeout=30
    )


@pytest.mark.parametrize("offset_s", [15, -15])
def test_a_worker_with_its_clock_off_answers_every_prediction(
    tmp_path: Path, house: dict, offset_s: int
) -> None:
    clock = shifted_clock(f"{offset_s:+d}s")
    assert abs(wall_clock_of(clock) - time.time() - offset_s) < 2  # the shift is real
    with running_stack(tmp_path, concurrency=2, worker_env=clock) as stack:
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda _: predict(stack, house), range(100)))
        assert [a.status_code for a in answers] == [200] * 100, answers[0].text
        assert LATE not in (stack.workdir / "api.log").read_text()


def test_requests_that_timed_out_are_not_computed_by_a_worker_whose_clock_is_behind(
    tmp_path: Path, house: dict
) -> None:
    clock = shifted_clock("-15s")
    with running_stack(tmp_path, predict_timeout_s=3, worker_env=clock) as stack:
        worker = stack.workers[0]
        assert predict(stack, house).status_code == 200
        worker.signal_group(signal.SIGSTOP)  # the worker stalls with requests queued
        try:
            with ThreadPoolExecutor(10) as pool:
                stalled = list(pool.map(lambda _: predict(stack, house), range(10)))
        finally:
            worker.signal_group(signal.SIGCONT)
        assert [a.status_code for a in stalled] == [504] * 10
        assert predict(stack, house).status_code == 200  # back, and past the stale ones
        time.sleep(1)  # any late reply would have been read by now
        assert LATE not in (stack.workdir / "api.log").read_text()
