"""`python -m worker.pool`: keep this host's workers serving the versions the service wants.

One pool runs per host or container (`make run`, each compose worker replica). It runs one
Celery worker (`python -m worker --model V`) for every wanted version: the active one, plus the
rollout target while a rollout is under way. It restarts a wanted worker that dies, and leaves
alone a worker whose version is no longer wanted: the rollout drains and stops those. So adding
a pool adds capacity to the active version, and a rollout needs no access to the hosts.

SIGTERM (compose scale-down, `docker stop`) is passed on to the workers: Celery's warm shutdown.

A pointer in Redis that is not a version name (`../../x`) is ignored, with one log line: it
never becomes a worker's command line, and so never a path to a bundle.
"""

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

import redis
import typer

from shared.logs import configure_logging
from shared.model.bundles import latest_version
from shared.model.manifest import InvalidVersionError, check_version
from shared.settings import Settings, get_settings
from shared.wire import names
from shared.wire.redis_client import sync_client
from worker.metrics_server import pool_metrics
from worker.recording import Recording

log = logging.getLogger("worker.pool")
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    version: str
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)


@dataclass
class WorkerPool:
    settings: Settings
    concurrency: int
    name: str
    children: dict[str, Child] = field(default_factory=dict)
    backoff: dict[str, float] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)
    ignored: set[str] = field(default_factory=set)  # logged once each, not at every poll
    stopping: bool = False

    def __post_init__(self) -> None:
        self.redis = sync_client(self.settings)

    def wanted(self) -> set[str]:
        """Active version and rollout target; the newest bundle when nothing is active yet (a
        fresh system). Unchanged while Redis is unreachable."""
        try:
            pointers = self.redis.mget(names.ACTIVE_VERSION, names.ROLLOUT_TARGET)
        except redis.RedisError:
            return set(self.children)
        if not any(pointers):
            newest = latest_version(self.settings.model_dir)
            return {newest} if newest else set()
        versions: set[str] = set()
        for key, value in zip((names.ACTIVE_VERSION, names.ROLLOUT_TARGET), pointers, strict=True):
            if value:
                try:
                    versions.add(check_version(value))
                except InvalidVersionError as exc:
                    if value not in self.ignored:
                        self.ignored.add(value)
                        log.warning("ignoring %s: %s; no worker started for it", key, exc)
        return versions

    def start(self, version: str) -> None:
        argv = [sys.executable, "-m", "worker", "--model", version, "--name", self.name]
        argv += ["--concurrency", str(self.concurrency)]
        log.info("starting worker for %s", version)
        self.children[version] = Child(version, subprocess.Popen(argv))

    def reap(self) -> None:
        for version, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[version]
            log.info("worker for %s exited with %s", version, code)
            if code != 0 and time.monotonic() - child.started < 60:
                # Crashing at start (a missing bundle, say): back off instead of spinning.
                delay = min(self.backoff.get(version, 1.0) * 2, MAX_BACKOFF_S)
                self.backoff[version] = delay
                self.not_before[version] = time.monotonic() + delay
            else:
                self.backoff.pop(version, None)

    def step(self) -> None:
        self.reap()
        for version in sorted(self.wanted() - set(self.children)):
            if time.monotonic() >= self.not_before.get(version, 0):
                self.start(version)

    def run(self) -> None:
        def on_signal(signum: int, _: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not self.stopping:
            self.step()
            time.sleep(self.settings.pool_poll_s)
        self.shutdown()

    def shutdown(self) -> None:
        """Warm shutdown of every worker: they finish their tasks, then exit."""
        for child in self.children.values():
            child.process.send_signal(signal.SIGTERM)
        for child in self.children.values():
            child.process.wait()


cli = typer.Typer(add_completion=False)


@cli.command()
def main(
    concurrency: int | None = typer.Option(None, help="Processes per worker (default: setting)."),
    name: str = typer.Option("%h", help="Host part of the workers' Celery node names."),
) -> None:
    settings = get_settings()
    configure_logging(settings)
    # The record's recorder runs beside the workers, in this process (worker/recording.py).
    recording = Recording(settings).start()
    try:
        with pool_metrics(settings):  # its workers' metrics, on worker_metrics_port
            WorkerPool(settings, concurrency or settings.worker_concurrency, name).run()
    finally:
        recording.stop()


if __name__ == "__main__":
    cli()
