"""The micro-batcher's gathering on a real redis-server: idle, it answers the first request at
once; busy, it takes what is queued and waits for more only as long as its setting allows."""

import threading
import time

import pytest
from stack import REPO, Stack

from shared.model.bundles import latest_version, load_bundle
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.settings import Settings
from shared.wire import names
from worker.microbatch import MicroBatcher

pytestmark = pytest.mark.integration


def _batcher(redis_stack: Stack, max_wait_ms: float) -> MicroBatcher:
    settings = Settings(
        redis_url=redis_stack.redis_url,
        model_dir=REPO / "model_artifacts",
        microbatch_max_wait_ms=max_wait_ms,
    )
    version = latest_version(settings.model_dir, "baseline")
    assert version is not None
    key = signing_key(settings, create=False)
    predictor = Predictor(load_bundle(settings.model_dir, version, key=key))
    return MicroBatcher(predictor, redis_stack.redis_client(), settings)


@pytest.mark.parametrize("max_wait_ms", [0, 300])
def test_busy_batchers_wait_for_more_requests_only_up_to_their_bound(
    redis_stack: Stack, max_wait_ms: float
) -> None:
    batcher = _batcher(redis_stack, max_wait_ms)
    client, queue = redis_stack.redis_client(), names.requests_list(batcher.predictor.version)

    client.lpush(queue, "first")
    started = time.monotonic()
    assert batcher.take().items == ["first"]  # idle (last batch held one): no wait
    assert time.monotonic() - started < 0.2

    batcher.last_size = 8  # busy
    client.lpush(queue, "queued-1", "queued-2")
    late = threading.Timer(0.1, lambda: client.lpush(queue, "late"))
    late.start()
    started = time.monotonic()
    taken = batcher.take().items
    waited = time.monotonic() - started
    late.join()
    if max_wait_ms:
        assert taken == ["queued-1", "queued-2", "late"]
        assert 0.29 <= waited < 1.0  # the whole bound: fewer than max_size arrived
    else:
        assert taken == ["queued-1", "queued-2"]  # what was queued, at once
        assert waited < 0.1
