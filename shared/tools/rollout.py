"""Switching the active model version while the service runs, and switching back.

The sequence (`realty rollout VERSION`):
1. mark VERSION as the rollout target: every worker pool (`python -m worker.pool`) starts a
   worker for it next to the one it runs;
2. wait until VERSION has as many warm nodes as the active version and answers a ping through
   its own queue;
3. flip the active pointer (refused when VERSION has no live worker);
4. drain the old version: its workers first empty their queues (requests and batch chunks sent
   before the flip are answered by the version they were sent to), then stop consuming and shut
   down warm, finishing what they hold; pools do not restart them. A single prediction that
   still reached the old list afterwards (it raced the flip) is moved to the new version, unless
   it was pinned to the old one; batch chunks are never moved.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import Celery

from shared.model.manifest import check_version
from shared.settings import Settings
from shared.wire import names
from shared.wire.liveness import live_nodes_sync
from shared.wire.messages import PREDICT_REQUEST, ErrorCode, ErrorReply, PingReply
from shared.wire.registry import swap_active
from shared.wire.replies import push_replies

Echo = Callable[[str], None]


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
        return swap_active(self.redis, version)  # type: ignore[return-value]  # sync client

    def ping(self, version: str, timeout: float = 10.0) -> bool:
        reply_to = names.reply_key(f"ping-{uuid.uuid4().hex}")
        self.celery.send_task(
            names.PING_TASK, args=[reply_to], queue=names.queue_name(version), expires=timeout
        )
        reply = self.redis.blpop([reply_to], timeout=timeout)
        if reply is None:
            return False
        return PingReply.model_validate_json(reply[1]).model_version == version

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
        """Retire `version`'s workers without dropping anything sent to them.

        They first empty their queues. Batch chunks are never moved to another version (a job
        keeps the model it started with): if the batch queue is still not empty at the drain
        timeout, the old workers are left running and the operator is told to drain later.
        """
        deadline = time.monotonic() + self.settings.rollout_drain_timeout_s
        lists = names.version_lists(version)
        while any(self.redis.llen(name) for name in lists) and time.monotonic() < deadline:
            time.sleep(0.2)
        waiting = self.redis.llen(names.batch_queue_name(version))
        if waiting:
            raise RolloutError(
                f"{successor} is active, but {version} still has {waiting} batch chunk(s) queued "
                f"after {self.settings.rollout_drain_timeout_s:g} s; its workers keep running to "
                f"finish them: run `realty drain {version}` later"
            )
        stopped: set[str] = set()
        # Nodes are read again on every pass: one that registered late (a pool restarting its
        # worker just before the flip) is stopped too.
        while (nodes := self.nodes(version)) and time.monotonic() < deadline:
            fresh = [node for node in nodes if node not in stopped]
            if fresh:
                for queue in names.version_queues(version):
                    self.celery.control.cancel_consumer(
                        queue, destination=fresh, reply=True, timeout=5
                    )
                self.celery.control.shutdown(destination=fresh)
                stopped.update(fresh)
            time.sleep(0.2)
        moved = self.move_requests(version, successor)
        left = self.nodes(version)
        self.echo(
            f"{version}: {len(stopped) - len(left)} worker(s) drained and stopped"
            + (f"; {moved} late request(s) moved to {successor}" if moved else "")
            + (f"; still live after the timeout: {left}" if left else "")
        )

    def move_requests(self, source: str, target: str) -> int:
        """Single predictions left in `source`'s request list (sent just before the flip) go to
        `target`'s, oldest first; those pinned to `source` are answered with an error instead,
        which the API turns into 409, since another version must not answer them."""
        moved = 0
        while (raw := self.redis.rpop(names.requests_list(source))) is not None:
            request = PREDICT_REQUEST.validate_json(raw)
            if request.pinned:
                gone = ErrorReply(
                    request_id=request.request_id,
                    error=ErrorCode.VERSION_GONE,
                    detail=f"{source} stopped serving",
                )
                push_replies(self.redis, [(request, gone)], self.settings.reply_ttl_s)
                continue
            self.redis.rpush(names.requests_list(target), raw)
            moved += 1
        return moved

    def run(self, version: str) -> None:
        # Whatever the name came from (a command line, Redis's previous version), it becomes
        # the pools' rollout target only if it is a version name.
        check_version(version)
        # One rollout at a time; the lock expires should this command be killed.
        lock_s = int(self.settings.rollout_warm_timeout_s + self.settings.rollout_drain_timeout_s)
        if not self.redis.set(names.ROLLOUT_LOCK, version, nx=True, ex=lock_s):
            holder = self.redis.get(names.ROLLOUT_LOCK)
            raise RolloutError(f"a rollout to {holder} is under way; wait for it to finish")
        try:
            self._run(version)
        finally:
            self.redis.delete(names.ROLLOUT_LOCK)

    def _run(self, version: str) -> None:
        active = self.redis.get(names.ACTIVE_VERSION)
        if active == version:
            self.echo(f"{version} is already active")
            return
        wanted = max(1, len(self.nodes(active))) if active else 1
        # Expires too, so that an interrupted rollout cannot leave pools running `version`.
        self.redis.set(names.ROLLOUT_TARGET, version, ex=int(self.settings.rollout_warm_timeout_s))
        try:
            self.echo(f"starting {version}: waiting for {wanted} warm worker(s)…")
            started = self.wait_warm(version, wanted)
            self.echo(f"{version}: {len(started)} worker(s) warm and answering")
            self.activate(version)
            self.echo(f"active version is now {version}" + (f" (was {active})" if active else ""))
        except BaseException:
            self.redis.delete(names.ROLLOUT_TARGET)
            if active:  # retire whatever of the new version did start
                self.drain(version, active)
            raise
        self.redis.delete(names.ROLLOUT_TARGET)
        if active:
            self.drain(active, version)

    def previous(self) -> str:
        previous = self.redis.get(names.PREVIOUS_VERSION)
        if previous is None:
            raise RolloutError("no previous version recorded: nothing to roll back to")
        return previous
