"""Rolling out a new model version, and back, under steady load: nobody notices."""

import threading
import time
from pathlib import Path

import pytest
from stack import Stack, running_stack, wait_for

from shared.tools.steady_load import BackgroundLoad
from shared.wire import names

RATE, SECONDS = 25, 16  # ≥ 20 requests/s for ≥ 15 s


@pytest.fixture
def pooled(tmp_path: Path, two_bundles: Path):
    """v1 active, served by one worker pool; v2 on disk, not yet running anywhere."""
    with running_stack(
        tmp_path, workers=0, pools=("pool1",), active="v1", model_dir=two_bundles
    ) as stack:
        yield stack


class PointerWatch(threading.Thread):
    """Brackets each change of the active pointer in time: it happened after `after` (the last
    read that still saw the old value began) and before `before` (the read that saw it ended)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.client = stack.redis_client()
        self.changes: list[tuple[float, float, str]] = []  # (after, before, new value)
        self.done = threading.Event()

    def run(self) -> None:
        last, last_read = None, time.time()
        while not self.done.is_set():
            started = time.time()
            current = self.client.get(names.ACTIVE_VERSION)
            if current != last:
                self.changes.append((last_read, time.time(), current))
                last = current
            last_read = started
            time.sleep(0.01)


def test_rollout_and_rollback_under_load_lose_nothing(pooled: Stack, future_rows: list[dict]):
    watch = PointerWatch(pooled)
    watch.start()
    load = BackgroundLoad(
        pooled.api_url, future_rows, key=pooled.admin_key, rate=RATE, seconds=SECONDS
    )
    load.start()
    time.sleep(2)
    forward = pooled.realty("rollout", "v2")
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert pooled.nodes("v1") == [], "old workers still registered after the rollout"
    back = pooled.realty("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert pooled.nodes("v2") == []
    run = load.finish()
    watch.done.set()

    assert len(run.answers) == RATE * SECONDS
    assert run.failures == [], run.failures[:5]
    assert run.rate() >= 20
    assert [version for _, _, version in watch.changes] == ["v1", "v2", "v1"]
    # A request sent once a flip surely happened reads the new pointer, and its answer comes
    # from the new version; around each flip (a few ms) either version may answer.
    (_, v2_surely, _), (v1_maybe, v1_surely, _) = watch.changes[1], watch.changes[2]
    for answer in run.answers:
        if v2_surely < answer.sent < v1_maybe:
            assert answer.model_version == "v2", answer
        elif answer.sent > v1_surely:
            assert answer.model_version == "v1", answer
    assert {a.model_version for a in run.answers} == {"v1", "v2"}

    # The drained workers exited by themselves, and their pool did not restart them.
    def pool_log() -> str:
        return (pooled.workdir / "pool1.log").read_text()

    wait_for(lambda: "worker for v2 exited with 0" in pool_log(), 15, "the v2 worker to exit")
    assert "worker for v1 exited with 0" in pool_log()
    assert pool_log().count("starting worker for v1") == 2  # at start, and for the rollback
    assert "drained and stopped" in forward.stdout


def test_activation_is_refused_for_a_version_without_workers(pooled: Stack):
    response = pooled.http.post(f"{pooled.api_url}/v1/models/v2/activate", timeout=10)
    assert response.status_code == 409
    assert "no warm worker serves v2" in response.json()["detail"]
    assert pooled.redis_client().get(names.ACTIVE_VERSION) == "v1"


def test_pinned_request_goes_to_its_version_or_gets_409(pooled: Stack, future_rows: list[dict]):
    url = f"{pooled.api_url}/v1/predict"
    pinned = pooled.http.post(
        url, json=future_rows[0], headers={"X-Model-Version": "v1"}, timeout=10
    )
    assert pinned.json()["model_version"] == "v1"
    missing = pooled.http.post(
        url, json=future_rows[0], headers={"X-Model-Version": "v2"}, timeout=10
    )
    assert missing.status_code == 409
    assert "v2" in missing.json()["detail"]


def test_rollout_to_a_missing_version_changes_nothing(pooled: Stack):
    failed = pooled.realty("rollout", "v9", rollout_warm_timeout_s="3")
    assert failed.returncode == 1
    assert "did not become warm" in failed.stderr
    assert pooled.redis_client().get(names.ACTIVE_VERSION) == "v1"
    assert pooled.redis_client().get(names.ROLLOUT_TARGET) is None


def test_a_batch_job_keeps_its_version_through_a_rollout(pooled: Stack, future_rows: list[dict]):
    rows = [future_rows[i % len(future_rows)] for i in range(20_000)]
    accepted = pooled.http.post(f"{pooled.api_url}/v1/batch", json={"rows": rows}, timeout=60)
    assert accepted.json()["model_version"] == "v1"
    forward = pooled.realty("rollout", "v2")
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert "moved" not in forward.stdout  # the old workers finished the job's chunks themselves
    status_url = accepted.json()["status_url"]
    wait_for(
        lambda: pooled.http.get(status_url, timeout=10).json()["status"] == "succeeded", 60, "job"
    )
    done = pooled.http.get(status_url, timeout=30).json()
    assert done["model_version"] == "v1"
    assert {r["model_version"] for r in done["results"]} == {"v1"}
    assert [r["row"] for r in done["results"]] == list(range(20_000))
