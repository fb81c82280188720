"""What a worker pool process serves: its one loaded model, its Redis connection, and the
micro-batcher that answers single predictions with that model.

This is the only process-global state of a worker. It is filled once per pool process after the
fork (`worker_process_init`), so every child owns its model and its connection, and no thread
or socket is shared across a fork.
"""

import gc
import logging
import os
from dataclasses import dataclass

import redis
from celery.utils.log import current_process_index
from threadpoolctl import threadpool_limits

from shared.model.bundles import latest_version, load_bundle, verify_bundle
from shared.model.manifest import Manifest
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.settings import Settings
from shared.wire.redis_client import sync_client
from worker.flower_events import ModelCallEvents
from worker.microbatch import MicroBatcher

log = logging.getLogger(__name__)


def resolve_version(settings: Settings) -> str:
    version = settings.model_version or latest_version(settings.model_dir)
    if version is None:
        raise SystemExit(f"no model bundle in {settings.model_dir}: run `make train` first")
    return version


def verified_manifest(settings: Settings) -> Manifest:
    """The served bundle's manifest, after checking its signature and files (without loading
    the model)."""
    key = signing_key(settings, create=False)
    return verify_bundle(settings.model_dir, resolve_version(settings), key=key)


@dataclass(frozen=True)
class Serving:
    predictor: Predictor
    redis: redis.Redis
    batcher: MicroBatcher | None  # None: this process takes batch-job chunks only


_serving: Serving | None = None


def start(settings: Settings, events: ModelCallEvents | None = None) -> Serving:
    """Load the model; a micro-batcher's model calls are announced through `events`."""
    global _serving
    bundle = load_bundle(
        settings.model_dir,
        resolve_version(settings),
        key=signing_key(settings, create=False),
        artifacts=settings.compiled_trees,
    )
    predictor = Predictor(bundle)
    # One BLAS/OpenMP thread per process: the pool's processes already use every core, and
    # threads of one process fighting the others' made a model call 10-20x slower (the client's
    # KNN: ~2 ms a row on one thread, 20-40 ms on two).
    # Called after loading, since it only reaches the thread pools of libraries already loaded.
    threadpool_limits(1)
    # The loaded model and libraries are long-lived objects that the cyclic GC would walk again on
    # every full collection, a stall of tens of ms for whichever request is in flight: p99 at one
    # client was 25-71 ms without this and 5.2-5.3 ms with it (wrk -t1 -c1 -d8s, `make run`).
    gc.collect()  # what loading left behind is not frozen with the rest
    gc.freeze()
    client = sync_client(settings)
    batcher = None
    if answers_singles(settings):
        if events is not None:
            events.start()
        batcher = MicroBatcher(predictor, client, settings, events)
        batcher.start()
    _serving = Serving(predictor, client, batcher)
    role = "single predictions and batch chunks" if batcher else "batch chunks"
    log.info("process %s loaded model %s (%s)", os.getpid(), predictor.version, role)
    return _serving


def answers_singles(settings: Settings) -> bool:
    """Whether this pool process runs a micro-batcher: the first `microbatchers` of the pool
    do (Celery gives a replaced process the index of the one it replaces, so a crashed
    micro-batcher's successor is one again). Fewer micro-batchers than cores served more
    single predictions a second on the measured machine: each one left on a core competes
    with the API processes, and the batches of the others grow to take its share."""
    index = current_process_index(base=0)
    return (index or 0) < settings.microbatchers


def stop() -> None:
    """Let the micro-batcher finish the batch it holds; it takes no more."""
    if _serving is not None and _serving.batcher is not None:
        _serving.batcher.stop()
        _serving.batcher.join(timeout=5)
        if _serving.batcher.events is not None:
            _serving.batcher.events.stop()
            _serving.batcher.events.join(timeout=2)


def current() -> Serving:
    if _serving is None:
        raise RuntimeError("worker process has no model loaded (worker_process_init did not run)")
    return _serving
