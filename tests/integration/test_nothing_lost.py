"""A worker killed mid-job, or Redis restarted under a queued job: every row still gets exactly
one prediction."""

import signal
import time
from pathlib import Path

import pandas as pd
import requests
from stack import Stack, as_rows, running_stack, wait_for

from shared.wire import names

# Redelivery of a dead worker's message waits for the visibility timeout; short here so that
# the tests run in seconds (tasks last milliseconds, so nothing runs twice by accident).
FAST_REDELIVERY = {"visibility_timeout_s": 5, "batch_stall_s": 8, "batch_chunk_rows": 50}
ROWS = 20_000


def big_batch(future_examples: pd.DataFrame) -> list[dict]:
    rows = as_rows(future_examples)
    return [rows[i % len(rows)] for i in range(ROWS)]


def submit(stack: Stack, rows: list[dict]) -> str:
    response = stack.http.post(f"{stack.api_url}/v1/batch", json={"rows": rows}, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["status_url"]


def status(stack: Stack, url: str) -> dict:
    return stack.http.get(url, timeout=30).json()


def assert_every_row_once(stack: Stack, url: str, rows: list[dict]) -> None:
    wait_for(lambda: status(stack, url)["status"] == "succeeded", 90, "the batch job to finish")
    done = status(stack, url)
    assert done["rows_done"] == len(rows)
    assert [r["row"] for r in done["results"]] == list(range(len(rows)))


def test_worker_killed_mid_batch_job_still_completes_every_row_once(
    tmp_path: Path, future_examples: pd.DataFrame
):
    with running_stack(tmp_path, workers=2, **FAST_REDELIVERY) as stack:
        rows = big_batch(future_examples)
        url = submit(stack, rows)
        wait_for(
            lambda: status(stack, url)["rows_done"] >= ROWS // 10, 60, "the job to be under way"
        )
        stack.workers[0].kill()  # SIGKILL, whole worker: what it held is unacked in Redis
        assert status(stack, url)["rows_done"] < ROWS, (
            "job finished before the kill: make it bigger"
        )
        assert_every_row_once(stack, url, rows)


def test_redis_restart_under_a_queued_job_loses_nothing(
    tmp_path: Path, future_examples: pd.DataFrame
):
    with running_stack(tmp_path, workers=1, **FAST_REDELIVERY) as stack:
        rows = big_batch(future_examples)
        url = submit(stack, rows)
        wait_for(lambda: status(stack, url)["rows_done"] > 0, 60, "the job to be under way")
        assert stack.redis_proc is not None
        stack.redis_proc.kill()
        started = time.monotonic()
        down = stack.http.get(url, timeout=30)
        assert down.status_code == 503 and down.headers["retry-after"]
        assert time.monotonic() - started < 3
        stack.start_redis()  # AOF: the queue and the job come back
        assert_every_row_once(stack, url, rows)
        assert requests.get(f"{stack.api_url}/health/ready", timeout=5).status_code == 200


def test_a_lost_chunk_message_is_sent_again_when_the_job_stalls(
    tmp_path: Path, future_examples: pd.DataFrame
):
    with running_stack(tmp_path, workers=1, batch_stall_s=3, batch_chunk_rows=20) as stack:
        worker = stack.workers[0]
        worker.signal_group(signal.SIGSTOP)
        try:
            response = stack.http.post(
                f"{stack.api_url}/v1/batch", json={"rows": as_rows(future_examples)}, timeout=30
            )
            queue = names.batch_queue_name(response.json()["model_version"])
            assert stack.redis_client().rpop(queue) is not None  # one chunk message vanishes
        finally:
            worker.signal_group(signal.SIGCONT)
        assert_every_row_once(stack, response.json()["status_url"], as_rows(future_examples))
