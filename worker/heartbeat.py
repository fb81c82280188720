"""The worker's advertisement: "node v1@host serves model v1 and is consuming its queue".

It is a consumer bootstep, so it runs in the worker's main process only while the consumer is
connected: Celery stops it when the broker connection drops and starts it again after it has
reconnected, so readiness never claims a worker that cannot take messages. A warm shutdown
(SIGTERM) deregisters at once; a killed worker simply stops beating and drops out after
`heartbeat_ttl_s`.
"""

import logging
from typing import Any, ClassVar

import redis
from celery import bootsteps

from shared.model.manifest import Manifest
from shared.settings import get_settings
from shared.wire import names
from shared.wire.redis_client import sync_client
from worker.serving import verified_manifest

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    requires: ClassVar[set[str]] = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_ref: Any = None
        self.client: redis.Redis | None = None
        self.node = ""
        self.manifest: Manifest | None = None
        self.advertised = False

    def start(self, consumer: Any) -> None:
        settings = get_settings()
        self.node = consumer.hostname
        self.manifest = verified_manifest(settings)
        self.manifest_json = self.manifest.model_dump_json()
        self.ttl = settings.heartbeat_ttl_s
        self.client = sync_client(settings)
        self.pool = consumer.pool
        self.beat()
        self.timer_ref = consumer.timer.call_repeatedly(settings.heartbeat_interval_s, self.beat)

    def warm_processes(self) -> int:
        """Pool processes that finished `worker_process_init` (model loaded) and take work.

        Reads the prefork pool's set of started processes (Celery is pinned); other pools load
        the model in this process before consuming, so they count as warm."""
        started = getattr(getattr(self.pool, "_pool", None), "_all_inqueues", None)
        return 1 if started is None else len(started)

    def beat(self) -> None:
        """Register the manifest, refresh this node's score, drop nodes that stopped beating;
        make this version active when none is (a fresh system is ready with its first worker)."""
        assert self.client is not None and self.manifest is not None
        if not self.warm_processes():
            return
        version = self.manifest.version
        try:
            seconds, micros = self.client.time()  # Redis's clock: comparable across hosts
            now = seconds + micros / 1e6
            with self.client.pipeline(transaction=False) as pipe:
                # Bundles are immutable: written once, again only if Redis lost it.
                pipe.set(names.manifest_key(version), self.manifest_json, nx=True)
                pipe.sadd(names.MODELS, version)
                pipe.zadd(names.workers_key(version), {self.node: now})
                pipe.zremrangebyscore(names.workers_key(version), 0, now - self.ttl)
                pipe.set(names.ACTIVE_VERSION, version, nx=True)
                pipe.execute()
            if not self.advertised:
                log.info("node %s advertises model %s", self.node, version)
                self.advertised = True
        except redis.RedisError as exc:  # the consumer notices too and restarts this step
            log.warning("heartbeat failed: %s", exc)

    def stop(self, consumer: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        if self.client is not None and self.manifest is not None:
            try:
                self.client.zrem(names.workers_key(self.manifest.version), self.node)
            except redis.RedisError as exc:
                log.warning("could not deregister %s: %s", self.node, exc)
            self.client.close()
            self.client = None
        self.advertised = False

    shutdown = stop
