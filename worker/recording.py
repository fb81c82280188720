"""The recorder (shared/records/recorder.py) as a thread of the worker pool's parent process:
one per host or container, started and stopped with the pool, so nothing else needs deploying
and a host that runs workers also empties the buffer they fill. The Redis lock lets one
recorder write at a time however many pools run."""

import logging
import threading

from shared.records.recorder import Recorder
from shared.settings import Settings

log = logging.getLogger("worker.recording")


class Recording:
    def __init__(self, settings: Settings) -> None:
        self.recorder = Recorder.of(settings)
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self.recorder.run, args=(self.stopping,), name="recorder", daemon=True
        )

    def start(self) -> "Recording":
        self.thread.start()
        log.info("recorder %s started", self.recorder.name)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the write under way (its items stay in Redis if it cannot), then stop."""
        self.stopping.set()
        self.thread.join(timeout_s)
