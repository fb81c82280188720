"""Adding and removing worker pools under steady load: nobody notices."""

import time
from pathlib import Path

from stack import running_stack, wait_for

from shared.tools.steady_load import BackgroundLoad

RATE, SECONDS = 25, 16


def test_scaling_workers_one_to_three_to_one_under_load_loses_nothing(
    tmp_path: Path, two_bundles: Path, future_rows: list[dict]
):
    with running_stack(
        tmp_path, workers=0, pools=("pool1",), active="v1", model_dir=two_bundles
    ) as stack:
        load = BackgroundLoad(
            stack.api_url, future_rows, key=stack.admin_key, rate=RATE, seconds=SECONDS
        )
        load.start()
        time.sleep(2)
        extra = [stack.start_pool(name, wait_for_version="v1") for name in ("pool2", "pool3")]
        assert len(stack.nodes("v1")) == 3
        time.sleep(3)
        for pool in extra:
            pool.stop(timeout=30)  # SIGTERM: warm shutdown, as `docker compose --scale` does
            assert pool.popen.returncode == 0
        wait_for(lambda: len(stack.nodes("v1")) == 1, 10, "scale-down to one node")
        run = load.finish()

    assert len(run.answers) == RATE * SECONDS
    assert run.failures == [], run.failures[:5]
    assert run.rate() >= 20
    assert {a.model_version for a in run.answers} == {"v1"}
