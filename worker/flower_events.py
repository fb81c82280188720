"""Flower sees the micro-batcher's model calls as tasks.

Single predictions do not travel as Celery messages (a message per request cost the API and the
workers several times what the plain Redis lists do, docs/performance.md), so Celery's own task
events never mention them and Flower's task list showed only batch chunks. Each model call of
the micro-batcher is announced instead with the task events a Celery worker sends for a task it
runs (task-received, task-started, task-succeeded or task-failed), as a task named
`names.PREDICT_SINGLES_TASK` of this worker's node, with its batch size and variant as keyword
arguments and its runtime: Flower's task list, rates, runtimes and failures then cover the sync
path as they do the batch chunks.

Off the answer's path: the micro-batcher hands the calls to a thread of its own, which sends the
events of every call waiting as one message (Celery's buffered "task" group), at most ten times
a second: under load, one PUBLISH for many model calls. An
event that cannot be sent (Redis away) is dropped: they are for watching, and the answers and
the record do not depend on them.
"""

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kombu import Connection

from shared.wire import names

log = logging.getLogger(__name__)

_BACKLOG = 10_000  # model calls waiting to be announced; more are dropped, not queued forever
# At most one message per this long: under load, many model calls' events go out together, and
# Flower still shows each within a fraction of a second.
_GATHER_S = 0.1


class Call(Protocol):
    size: int
    seconds: float
    variant: str
    error: str | None


class ModelCallEvents(threading.Thread):
    def __init__(self, connect: Callable[[], Connection], dispatcher: Callable[..., Any]) -> None:
        """`connect` opens a broker connection; `dispatcher(connection)` makes Celery's event
        dispatcher on it (the node's hostname, task events buffered)."""
        super().__init__(name="realty-flower-events", daemon=True)
        self._connect = connect
        self._dispatcher = dispatcher
        self._calls: queue.Queue[Sequence[Call] | None] = queue.Queue(_BACKLOG)

    def send(self, calls: Sequence[Call]) -> None:
        """Announce these model calls soon; never blocks the caller."""
        if calls:
            with contextlib.suppress(queue.Full):  # too far behind: these are not shown
                self._calls.put_nowait(calls)

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._calls.put_nowait(None)

    def _waiting(self) -> list[Call] | None:
        """Every model call waiting to be announced (blocks for the first); None: stop."""
        first = self._calls.get()
        if first is None:
            return None
        calls = list(first)
        while True:
            try:
                more = self._calls.get_nowait()
            except queue.Empty:
                return calls
            if more is None:
                self._calls.put(None)  # announce these, then stop
                return calls
            calls += more

    def run(self) -> None:
        connection, dispatcher = None, None
        while (calls := self._waiting()) is not None:
            try:
                if dispatcher is None:
                    connection = self._connect()
                    dispatcher = self._dispatcher(connection)
                for call in calls:
                    _announce(dispatcher, call)
                dispatcher.flush()  # everything waiting in one message
                time.sleep(_GATHER_S)  # and what comes meanwhile in the next
            except Exception as exc:  # Redis away: drop these, reconnect for the next
                log.warning("flower events: %s; %d model calls not shown", exc, len(calls))
                if connection is not None:
                    connection.release()
                connection, dispatcher = None, None
        if connection is not None:
            connection.release()


def _announce(dispatcher: Any, call: Call) -> None:
    """The events Celery's worker sends for one task it ran, with the call's figures."""
    task_id = uuid.uuid4().hex
    kwargs = {"batch_size": call.size, "variant": call.variant}
    now = time.time()
    dispatcher.send(
        "task-received",
        uuid=task_id,
        name=names.PREDICT_SINGLES_TASK,
        args="()",
        kwargs=repr(kwargs),
        root_id=task_id,
        parent_id=None,
        retries=0,
        eta=None,
        expires=None,
        timestamp=now - call.seconds,
    )
    dispatcher.send("task-started", uuid=task_id, timestamp=now - call.seconds)
    if call.error is None:
        result = f"{call.size} estimate{'s' if call.size != 1 else ''}"
        dispatcher.send("task-succeeded", uuid=task_id, result=repr(result), runtime=call.seconds)
    else:
        dispatcher.send(
            "task-failed",
            uuid=task_id,
            exception=repr(call.error),
            traceback="(see the worker's log)",
        )
