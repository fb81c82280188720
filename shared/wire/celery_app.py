"""The Celery application both sides use: the API only sends, the workers run the tasks.

Every reliability setting is set on purpose here, with the reason beside it.
"""

from celery import Celery

from shared.settings import Settings
from shared.wire.redis_auth import authenticated_url


def make_celery(settings: Settings, *, include: list[str] | None = None) -> Celery:
    # Logged in as the process's Redis user; Celery prints the broker URL with the password masked.
    url = authenticated_url(settings)
    app = Celery("realty", broker=url, backend=url, include=include)
    transport = {
        # Unacked messages return to their queue after this long; it exceeds the hard time
        # limit so that a task still running is never handed to a second worker.
        "visibility_timeout": settings.visibility_timeout_s,
        # Workers sweep for messages a dead worker left unacked; kombu's default sweep period is
        # interval x throttle = 100 s. Sweep every fifth of the visibility timeout instead, so
        # a job stalls at most ~1.2 x visibility_timeout after a worker is killed.
        "unacked_restore_interval": max(1, settings.visibility_timeout_s // 5),
        "unacked_restore_throttle": 1,
        # A worker killed during a sweep leaves the sweep's lock behind; kombu's default keeps it
        # 300 s, stalling every redelivery that long. A sweep takes milliseconds.
        "unacked_mutex_expire": 10,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_socket_timeout_s,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Ack after the task ran, not when it was received: a worker killed mid-task gives its
        # message back. Our tasks are idempotent (fixed reply key, fixed chunk field).
        task_acks_late=True,
        # A child process that dies (SIGKILL, OOM) re-queues its task instead of acking it.
        task_reject_on_worker_lost=True,
        # Each process reserves one message at a time, so a busy or dying worker holds no
        # backlog that idle workers could have served.
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        # Replies and batch results go to our own keys; Celery's result backend would only
        # duplicate them, so it is off unless a task asks for it.
        task_ignore_result=True,
        result_expires=settings.job_ttl_s,
        # Redis down while publishing: fail within about a second so the API answers 503.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        broker_pool_limit=64,
        broker_connection_retry_on_startup=True,
        # Events let Flower show tasks and workers.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
    )
    return app
