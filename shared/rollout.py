"""Switching the active model version while the service runs, and switching back.

The sequence (`realty rollout VERSION`):
1. mark VERSION as the rollout target: every worker pool (`python -m worker.pool`) starts a
   worker for it next to the one it runs;
2. wait until VERSION has as many warm nodes as the active version and answers a ping through
   its own queue;
3. flip the active pointer (refused when VERSION has no live worker);
4. drain the old version: its workers first empty their queue (requests and batch chunks sent
   before the flip are answered by the version they were sent to), then stop consuming and shut
   down warm, finishing what they hold; pools do not restart them. Anything that still reached
   the old queue afterwards (a request that raced the drain) is moved to the new version's queue.
"""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import Celery

from shared import keys
from shared.liveness import live_nodes_sync
from shared.settings import Settings

Echo = Callable[[str], None]

# One atomic step: set the active version, remember the one it replaced for `realty rollback`.
SWAP_ACTIVE = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if previous and previous ~= ARGV[1] then redis.call('SET', KEYS[2], previous) end
return previous
"""
SWAP_KEYS = (keys.ACTIVE_VERSION, keys.PREVIOUS_VERSION)


class RolloutError(RuntimeError):
    """The rollout stopped; the message says what state the service was left in."""


class NotServedError(RolloutError):
    """A version cannot become active: no warm worker serves it."""


@dataclass
class Rollout:
    """Needs a Redis client with `decode_responses=True`."""

    celery: Celery
    redis: redis.Redis
    settings: Settings
    echo: Echo = print

    def nodes(self, version: str) -> list[str]:
        return live_nodes_sync(self.redis, version, self.settings.heartbeat_ttl_s)

    def activate(self, version: str) -> str | None:
        """Point the service at `version` atomically; return the version it replaced."""
        if not self.nodes(version):
            raise NotServedError(f"no warm worker serves {version}: start its workers first")
        return self.redis.eval(SWAP_ACTIVE, len(SWAP_KEYS), *SWAP_KEYS, version)

    def ping(self, version: str, timeout: float = 10.0) -> bool:
        reply_to = keys.reply_key(f"ping-{uuid.uuid4().hex}")
        self.celery.send_task(
            keys.PING_TASK, args=[reply_to], queue=keys.queue_name(version), expires=timeout
        )
        reply = self.redis.blpop([reply_to], timeout=timeout)
        return reply is not None and json.loads(reply[1])["model_version"] == version

    def wait_warm(self, version: str, nodes_wanted: int) -> list[str]:
        deadline = time.monotonic() + self.settings.rollout_warm_timeout_s
        while time.monotonic() < deadline:
            nodes = self.nodes(version)
            if len(nodes) >= nodes_wanted and self.ping(version):
                return nodes
            time.sleep(0.5)
        raise RolloutError(
            f"{version} did not become warm within {self.settings.rollout_warm_timeout_s:g} s "
            f"(wanted {nodes_wanted} nodes, saw {len(self.nodes(version))}); is the bundle "
            "present on the worker hosts? The active version is unchanged."
        )

    def drain(self, version: str, successor: str) -> None:
        """Retire `version`'s workers without dropping anything sent to them."""
        nodes = self.nodes(version)
        deadline = time.monotonic() + self.settings.rollout_drain_timeout_s
        lists = keys.version_lists(version)
        while any(self.redis.llen(name) for name in lists) and time.monotonic() < deadline:
            time.sleep(0.2)
        if nodes:
            for queue in keys.version_queues(version):
                self.celery.control.cancel_consumer(queue, destination=nodes, reply=True, timeout=5)
            self.celery.control.shutdown(destination=nodes)
        while self.nodes(version) and time.monotonic() < deadline:
            time.sleep(0.2)
        moved = self.move_queue(version, successor)
        self.echo(
            f"{version}: {len(nodes)} worker(s) drained and stopped"
            + (f"; {moved} late message(s) moved to {successor}" if moved else "")
        )

    def move_queue(self, source: str, target: str) -> int:
        """Move messages left in `source`'s queues to `target`'s, oldest first, re-addressed so
        that a redelivery would also go to `target`."""
        moved = 0
        for old, new in zip(keys.version_lists(source), keys.version_lists(target), strict=True):
            while (raw := self.redis.rpop(old)) is not None:
                message = json.loads(raw)
                delivery = message.get("properties", {}).get("delivery_info", {})
                delivery.update(exchange=new, routing_key=new)
                self.redis.lpush(new, json.dumps(message))
                moved += 1
        return moved

    def run(self, version: str) -> None:
        active = self.redis.get(keys.ACTIVE_VERSION)
        if active == version:
            self.echo(f"{version} is already active")
            return
        wanted = max(1, len(self.nodes(active))) if active else 1
        self.redis.set(keys.ROLLOUT_TARGET, version)
        try:
            self.echo(f"starting {version}: waiting for {wanted} warm worker(s)…")
            started = self.wait_warm(version, wanted)
            self.echo(f"{version}: {len(started)} worker(s) warm and answering")
            self.activate(version)
            self.echo(f"active version is now {version}" + (f" (was {active})" if active else ""))
        except RolloutError:
            self.redis.delete(keys.ROLLOUT_TARGET)
            if active:  # retire whatever of the new version did start
                self.drain(version, active)
            raise
        self.redis.delete(keys.ROLLOUT_TARGET)
        if active:
            self.drain(active, version)

    def previous(self) -> str:
        previous = self.redis.get(keys.PREVIOUS_VERSION)
        if previous is None:
            raise RolloutError("no previous version recorded: nothing to roll back to")
        return previous
