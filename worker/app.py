"""The worker's Celery app: each pool process loads the model once, the main process
advertises the node while it consumes (see `worker.heartbeat`)."""

from celery.signals import worker_process_init, worker_process_shutdown

from shared.settings import get_settings
from shared.wire.celery_app import make_celery
from worker import serving
from worker.heartbeat import Heartbeat

celery_app = make_celery(get_settings(), include=["worker.tasks"])
celery_app.steps["consumer"].add(Heartbeat)


@worker_process_init.connect
def _load_model(**_: object) -> None:
    serving.start(get_settings())


@worker_process_shutdown.connect
def _stop_batcher(**_: object) -> None:
    serving.stop()
