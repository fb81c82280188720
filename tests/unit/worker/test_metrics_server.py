"""A worker pool's metrics port (worker/metrics_server.py): what the pool's processes recorded
(worker/metrics.py), added up across processes, for the scrape token only. The processes here
are real ones, started as the pool starts its workers, inheriting its directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from shared.multiprocess_metrics import ENV
from shared.settings import Settings
from shared.tools.procs import free_port
from worker.metrics_server import pool_metrics

TOKEN = "worker-scrape-token-0123456789abcdefghijklmnopqrstu"
REPO = Path(__file__).resolve().parents[3]

# A pool process's calls, as the micro-batcher and the chunk task make them.
RECORD = """
from worker import metrics
metrics.observe_microbatch({size}, 0.004)
metrics.observe_chunk(1000, 0.03)
metrics.count_error("internal", 2)
metrics.count_records(pushed={size}, dropped=1)
"""


def record_in_a_process(size: int) -> None:
    env = os.environ | {"REALTY_MODEL_VERSION": "v9"}  # the pool's directory comes along
    subprocess.run([sys.executable, "-c", RECORD.format(size=size)], env=env, cwd=REPO, check=True)


@pytest.fixture
def settings() -> Settings:
    return Settings(worker_metrics_port=free_port(), metrics_token=TOKEN)


def test_the_pool_serves_what_all_its_processes_recorded(settings):
    with pool_metrics(settings) as port:
        record_in_a_process(5)
        record_in_a_process(40)
        answer = requests.get(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
    assert answer.status_code == 200
    text = answer.text
    assert 'realty_worker_microbatch_size_count{version="v9"} 2.0' in text
    assert 'realty_worker_microbatch_size_sum{version="v9"} 45.0' in text
    assert 'realty_worker_microbatch_size_bucket{le="8.0",version="v9"} 1.0' in text
    assert 'realty_worker_predictions_total{version="v9"} 45.0' in text
    assert 'realty_worker_batch_rows_total{version="v9"} 2000.0' in text
    assert 'realty_worker_model_seconds_count{call="chunk",version="v9"} 2.0' in text
    assert 'realty_worker_errors_total{code="internal",version="v9"} 4.0' in text
    assert "realty_records_pushed_total 45.0" in text
    assert "realty_records_dropped_total 2.0" in text


def test_without_the_token_the_port_answers_401(settings):
    with pool_metrics(settings) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer rk_0123456789abcdef_an-api-key-is-not-the-token"}
        assert requests.get(url, headers=wrong, timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 404


def test_the_directory_is_fresh_for_each_pool_and_gone_after_it(settings):
    with pool_metrics(settings):
        first = Path(os.environ[ENV])
        record_in_a_process(3)
        assert any(first.iterdir())
    assert not first.exists() and ENV not in os.environ
    with pool_metrics(settings.model_copy(update={"worker_metrics_port": 0})) as port:
        assert port is None  # no port, the processes still count
        assert Path(os.environ[ENV]) != first and not any(Path(os.environ[ENV]).iterdir())
