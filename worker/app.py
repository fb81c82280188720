"""The worker's Celery app: loads the model into each process once, then serves its queue."""

from celery.signals import worker_process_init, worker_process_shutdown

from shared.celery_app import make_celery
from shared.settings import get_settings
from worker import serving

celery_app = make_celery(get_settings(), include=["worker.tasks"])


@worker_process_init.connect
def _load_model(**_: object) -> None:
    serving.start(get_settings())


@worker_process_shutdown.connect
def _deregister(**_: object) -> None:
    serving.stop()
