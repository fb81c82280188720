"""The worker's Celery app: each pool process loads the model once, the main process
advertises the node while it consumes (see `worker.heartbeat`). Its log lines are those of
shared/logs.py, as the API's: Celery sets up no logging of its own when `setup_logging` has a
receiver (so it neither replaces the root logger's handlers nor redirects stdout), and a task's
lines carry the id of the work they serve (a batch chunk's job id)."""

from contextvars import Token
from functools import partial
from typing import Any

from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)

from shared.logs import bind, configure_logging, unbind
from shared.settings import Settings, get_settings
from shared.wire.celery_app import make_celery
from worker import serving
from worker.flower_events import ModelCallEvents
from worker.heartbeat import Heartbeat

celery_app = make_celery(get_settings(), include=["worker.tasks"])
celery_app.steps["consumer"].add(Heartbeat)


def _flower_events(settings: Settings) -> ModelCallEvents:
    """The micro-batcher's model calls as task events of this worker's node, for Flower."""
    dispatcher = partial(
        celery_app.events.Dispatcher,
        hostname=settings.worker_node,
        enabled=True,
        buffer_while_offline=False,
        buffer_group=["task"],
        buffer_limit=1_000_000,  # flushed after each model call's events, never by count
    )
    return ModelCallEvents(celery_app.connection_for_write, dispatcher)


@setup_logging.connect
def _logging(**_: object) -> None:
    configure_logging(get_settings())


_bound: dict[str, Token] = {}  # task id -> its log fields, while it runs


@task_prerun.connect
def _bind_ids(task_id: str, kwargs: dict[str, Any] | None = None, **_: object) -> None:
    job_id = (kwargs or {}).get("job_id")
    fields = {"task_id": task_id} | ({"request_id": job_id} if job_id else {})
    _bound[task_id] = bind(**fields)


@task_postrun.connect
def _unbind_ids(task_id: str, **_: object) -> None:
    if (token := _bound.pop(task_id, None)) is not None:
        unbind(token)


@worker_process_init.connect
def _load_model(**_: object) -> None:
    settings = get_settings()
    serving.start(settings, _flower_events(settings))


@worker_process_shutdown.connect
def _stop_batcher(**_: object) -> None:
    serving.stop()
