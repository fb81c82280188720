"""The worker pool's metrics port: `GET /metrics` with the metrics of every Celery process the
pool started (worker/metrics.py), for Prometheus to scrape each pool (each compose replica).

The pool makes a fresh PROMETHEUS_MULTIPROC_DIR before it starts any worker, so its Celery
processes inherit it and write their values there; this server adds them up at each scrape
(shared/multiprocess_metrics.py says why). The pool process itself records nothing there.

Only Prometheus reads it: a request without the scrape token (shared/scrape_token.py) is a
401. Served by the standard library's WSGI server on a thread of the pool, one thread per
scrape, so a slow scraper never holds up the pool's own loop. `worker_metrics_port` 0: no
port, the Celery processes still count (at the same cost), nobody reads it.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from shared.exposition import exposition
from shared.multiprocess_metrics import shared_directory
from shared.scrape_token import bearer, is_scrape_token, scrape_token
from shared.settings import Settings

log = logging.getLogger("worker.metrics")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per scrape: Prometheus's own `up` says whether scrapes succeed."""


def metrics_app(settings: Settings) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    empty = CollectorRegistry()  # nothing of this process's own: the files hold it all

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics here\n"]
        presented = bearer(environ.get("HTTP_AUTHORIZATION"))
        if presented is None or not is_scrape_token(presented, settings):
            headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
            start_response("401 Unauthorized", headers)
            return [b"the scrape token is missing or wrong\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [exposition(empty)]

    return app


@contextmanager
def pool_metrics(settings: Settings) -> Iterator[int | None]:
    """For the pool's life: the shared directory of its Celery processes and, when
    `worker_metrics_port` is set, the port serving their metrics (the port, or None)."""
    with shared_directory("worker"):
        if not settings.worker_metrics_port:
            yield None
            return
        scrape_token(settings)  # generated at first start, for Prometheus to be given
        server = make_server(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            metrics_app(settings),
            server_class=_Server,
            handler_class=_QuietHandler,
        )
        thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        thread.start()
        log.info(
            "serving the workers' metrics",
            extra={"address": f"{settings.worker_metrics_host}:{server.server_port}"},
        )
        try:
            yield server.server_port
        finally:
            server.shutdown()
            server.server_close()
