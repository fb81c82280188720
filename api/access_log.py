"""One log line per HTTP request, written by `api.request_context.RequestContext` when the
answer is over: its id (the answer's X-Request-ID, which the workers' lines about it carry too),
the caller's key name, method, route template, status and duration.

On the hot path, so through `shared.logs.LineLogger`: nothing is built unless the logger is on
(INFO; `log_level=WARNING` turns the lines off), and lines are written in batches, in the
process's one format.
"""

from starlette.types import Scope

from api.errors import REQUEST_ID_SCOPE_KEY
from shared.logs import LineLogger

log = LineLogger("api.access")
# Where `api.auth.require` leaves the name of the key that was checked.
KEY_NAME_SCOPE_KEY = "realty.key_name"
MAX_LOGGED_PATH = 200  # a client chooses its path: never a megabyte of it in the log


def log_request(scope: Scope, route: str, status: int, seconds: float) -> None:
    if not log.enabled:
        return
    method = scope["method"]
    log.info(
        f"{method} {scope['path'][:MAX_LOGGED_PATH]} {status}",
        request_id=scope.get(REQUEST_ID_SCOPE_KEY),
        key=scope.get(KEY_NAME_SCOPE_KEY),
        method=method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 2),
    )
