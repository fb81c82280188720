"""What the API knows about model versions: which one is active, which have live workers, their
manifests, the depth of their queues, and the one way to activate a version.

Bundles are immutable, so a version's manifest is cached for the process's life; a "yes, a live
worker serves it" is trusted for `served_cache_s` (the check costs more API CPU than the
prediction's own Redis traffic), a "no" is always checked again.
"""

import math
import time

from redis import asyncio as aioredis

from api.auth import Caller
from api.errors import ForbiddenError, ServiceUnavailableError, VersionNotServedError
from shared.model.manifest import Manifest
from shared.settings import Settings
from shared.wire import audit, names
from shared.wire.api_keys import Role
from shared.wire.audit import AuditEntry
from shared.wire.liveness import live_nodes_async
from shared.wire.registry import swap_active


class ServedVersions:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._manifests: dict[str, Manifest] = {}
        # version -> monotonic time until which it is known to have a live worker
        self._served_until: dict[str, float] = {}

    async def ping(self) -> None:
        """Raises when Redis does not answer."""
        await self.redis.ping()

    async def durable(self) -> bool:
        """Whether Redis keeps what it is told on disk (AOF on and its last write good): a 202
        promises the job survives a Redis crash. The fsync policy ("always") is set by the
        command lines that start Redis; INFO cannot show it."""
        info = await self.redis.info("persistence")
        return info.get("aof_enabled") == 1 and info.get("aof_last_write_status") == "ok"

    async def active(self) -> str | None:
        return await self.redis.get(names.ACTIVE_VERSION)

    async def known(self) -> list[str]:
        """Every version some worker has registered, oldest first."""
        return sorted(await self.redis.smembers(names.MODELS))

    async def live_workers(self, version: str) -> int:
        return len(await live_nodes_async(self.redis, version, self.settings.heartbeat_ttl_s))

    async def queue_depths(self, version: str) -> dict[str, int]:
        lists = dict(
            zip(("predict", "batch", "requests"), names.version_lists(version), strict=True)
        )
        return {queue: await self.redis.llen(name) for queue, name in lists.items()}

    async def queue_limit(self, version: str) -> int:
        """The depth at which the version's request queue refuses more (503): the rule of
        `api.outbox.ROUTE_REQUESTS`, from the rate its micro-batchers answer at, for /metrics."""
        rate = float(await self.redis.get(names.queue_capacity(version)) or 0)
        wait_ms = round(self.settings.queue_wait_s * 1000)
        return max(self.settings.microbatch_max_size, math.floor(rate * wait_ms / 1000))

    async def _is_served(self, version: str) -> bool:
        if time.monotonic() < self._served_until.get(version, 0):
            return True
        if await self.live_workers(version) == 0:
            return False
        self._served_until[version] = time.monotonic() + self.settings.served_cache_s
        return True

    async def check_served(self, version: str | None, pinned: str | None) -> None:
        """Raise the right error for the caller unless a warm worker serves `version`. A pinned
        version is checked every time: it may be draining."""
        if version is None:
            raise ServiceUnavailableError("no model version is active yet: start a worker")
        served = await self.live_workers(version) > 0 if pinned else await self._is_served(version)
        if served:
            return
        if pinned:
            raise VersionNotServedError(f"no worker serves model version {pinned!r} now")
        raise ServiceUnavailableError(f"no worker is serving the active model {version}")

    async def manifest(self, version: str) -> Manifest:
        if version not in self._manifests:
            raw = await self.redis.get(names.manifest_key(version))
            if raw is None:
                raise ServiceUnavailableError(
                    f"model {version} has not been registered by a worker"
                )
            self._manifests[version] = Manifest.model_validate_json(raw)
        return self._manifests[version]

    async def serving(self, pinned: str | None, caller: Caller) -> Manifest:
        """The version new work goes to (the active one, or a pinned one) once a warm worker is
        known to serve it. Only an admin may pin an inactive version: batch jobs pinned to an
        old version would keep its workers from being drained."""
        active = await self.active()
        if pinned and pinned != active and caller.role < Role.ADMIN:
            raise ForbiddenError(
                f"only an admin key may pin {pinned!r}: it is not the active version"
            )
        version = pinned or active
        await self.check_served(version, pinned)
        assert version is not None
        return await self.manifest(version)

    async def activate(self, version: str, actor: str) -> str | None:
        """Point every API replica at `version`, on the record; the version it replaced."""
        if await self.live_workers(version) == 0:
            raise VersionNotServedError(f"no warm worker serves {version}; start its workers first")
        previous = await swap_active(self.redis, version)
        details = {"previous": previous}
        entry = AuditEntry(actor=actor, action="activate", target=version, details=details)
        await audit.record(self.redis, entry)
        return previous
