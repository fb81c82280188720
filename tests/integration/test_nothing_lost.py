"""A worker killed mid-job, or Redis restarted under a queued job: every row still gets exactly
one prediction; a pool process killed mid-batch: every single prediction is answered once."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
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


def test_a_pool_process_killed_mid_batch_loses_no_single_prediction_and_answers_none_twice(
    tmp_path: Path, house: dict
):
    # Explained estimates take ~15 ms a row, so 200 of them keep both processes busy for seconds.
    # No depth limit in the way: this is about loss, not back-pressure. Both processes answer
    # single predictions, so the other one takes over the killed one's requests.
    with running_stack(
        tmp_path,
        workers=1,
        concurrency=2,
        microbatchers=2,
        processing_lease_s=2,
        queue_wait_s=60,
    ) as stack:
        client = stack.redis_client()
        version = client.get(names.ACTIVE_VERSION)

        def predict(_: int) -> requests.Response:
            return requests.post(
                f"{stack.api_url}/v1/predict?explain=true",
                json=house,
                headers=stack.http.headers,
                timeout=30,
            )

        def holding_owner() -> str | None:
            owners = client.smembers(names.processing_owners(version))
            return next((o for o in owners if client.llen(names.processing_list(version, o))), None)

        with ThreadPoolExecutor(200) as pool:
            warm = list(pool.map(predict, range(50)))  # the processes' rates are measured
            assert [a.status_code for a in warm] == [200] * 50
            time.sleep(1)  # and summed by a reaper
            answers = pool.map(predict, range(200))
            wait_for(lambda: holding_owner() is not None, 30, "a process to hold a batch")
            owner = holding_owner()
            assert owner is not None
            held = client.llen(names.processing_list(version, owner))
            os.kill(int(owner.split(":")[1]), signal.SIGKILL)  # host:pid:nonce
            answers = list(answers)
        statuses = [a.status_code for a in answers]
        slowest = max(a.elapsed.total_seconds() for a in answers)
        print(f"killed a process holding {held}; 200 answers, slowest {slowest:.2f} s")
        assert statuses == [200] * 200
        assert held > 0
        logs = (stack.workdir / "api.log").read_text()
        assert "came after its caller left" not in logs  # no request was answered twice
        assert "requeued" in "".join(p.log_tail(400) for p in stack.workers)


def test_a_job_answered_202_survives_redis_killed_right_after(
    tmp_path: Path, future_examples: pd.DataFrame
):
    with running_stack(tmp_path, workers=1) as stack:
        worker = stack.workers[0]
        worker.signal_group(signal.SIGSTOP)  # nothing of the job is done before the crash
        try:
            rows = as_rows(future_examples)
            url = submit(stack, rows)
            assert stack.redis_proc is not None
            stack.redis_proc.kill()  # SIGKILL right after the 202: only what is on disk remains
            stack.start_redis()
        finally:
            worker.signal_group(signal.SIGCONT)
        assert_every_row_once(stack, url, rows)


def test_ready_is_503_while_redis_keeps_nothing_on_disk(tmp_path: Path):
    with running_stack(tmp_path, workers=1) as stack:
        ready = f"{stack.api_url}/health/ready"
        client = stack.redis_client()
        client.config_set("appendonly", "no")
        answer = requests.get(ready, timeout=5)
        assert answer.status_code == 503 and "persistence" in answer.json()["reason"]
        client.config_set("appendonly", "yes")
        wait_for(lambda: requests.get(ready, timeout=5).status_code == 200, 30, "readiness back")
