"""What a worker process serves: its one loaded model, and the heartbeat that advertises it.

This is the only process-global state of a worker. It is filled once per process after the fork
(`worker_process_init`), so every prefork child owns its model and its Redis connection.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

import redis

from shared import keys
from shared.bundles import latest_version, load_bundle
from shared.predictor import Predictor
from shared.settings import Settings

log = logging.getLogger(__name__)


def resolve_version(settings: Settings) -> str:
    version = settings.model_version or latest_version(settings.model_dir)
    if version is None:
        raise SystemExit(f"no model bundle in {settings.model_dir}: run `make train` first")
    return version


class Heartbeat(threading.Thread):
    """Tells the API, every few seconds, that this process is warm and serves its version.

    It also registers the bundle's manifest and, when no version is active yet, makes this one
    active: a fresh system becomes ready as soon as its first worker is.
    """

    def __init__(self, client: redis.Redis, predictor: Predictor, settings: Settings) -> None:
        super().__init__(name="realty-heartbeat", daemon=True)
        self.client = client
        self.version = predictor.version
        self.manifest_json = predictor.bundle.manifest.model_dump_json()
        self.interval = settings.heartbeat_interval_s
        self.ttl = settings.heartbeat_ttl_s
        self.member = f"{settings.worker_node or socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()

    def beat(self) -> None:
        now = time.time()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(keys.manifest_key(self.version), self.manifest_json)
            pipe.sadd(keys.MODELS, self.version)
            pipe.zadd(keys.workers_key(self.version), {self.member: now})
            pipe.zremrangebyscore(keys.workers_key(self.version), 0, now - self.ttl)
            pipe.set(keys.ACTIVE_VERSION, self.version, nx=True)
            pipe.execute()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.beat()
            except redis.RedisError as exc:  # Redis away: keep trying, the worker keeps running
                log.warning("heartbeat failed: %s", exc)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.client.zrem(keys.workers_key(self.version), self.member)
        except redis.RedisError as exc:
            log.warning("could not deregister %s: %s", self.member, exc)


@dataclass
class Serving:
    predictor: Predictor
    redis: redis.Redis
    heartbeat: Heartbeat


_serving: Serving | None = None


def start(settings: Settings) -> Serving:
    global _serving
    predictor = Predictor(load_bundle(settings.model_dir, resolve_version(settings)))
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        decode_responses=True,
    )
    heartbeat = Heartbeat(client, predictor, settings)
    heartbeat.start()
    _serving = Serving(predictor, client, heartbeat)
    log.info("process %s serves model %s", os.getpid(), predictor.version)
    return _serving


def stop() -> None:
    if _serving is not None:
        _serving.heartbeat.stop()


def current() -> Serving:
    if _serving is None:
        raise RuntimeError("worker process has no model loaded (worker_process_init did not run)")
    return _serving
