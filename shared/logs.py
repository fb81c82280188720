"""One log format for the API, the workers and their pools: a JSON object per line.

Each line holds `time` (UTC, ms), `level`, `logger` and `message`, then every field the call
passed in `extra` or bound with `log_context` (`request_id`, `key`, `route`, `status`,
`duration_ms`…), and `exc` with the traceback when there is one. One object per line survives
any log collector whole (compose's, journald, a shipper), and an operator follows one request
across the API's and the workers' lines by its id: `jq 'select(.request_id == "…")'`.

Request ids cross processes with the work: the API logs a request under the id it answers in
`X-Request-ID`; that id is the single prediction's `PredictRequest.request_id`, so a worker's
line about a request carries the same id (`extra={"request_id": …}`), and a batch chunk's lines
carry its job id (bound for the whole task with `bind`, worker/app.py).

`log_format=text` gives the same lines for a human at a terminal. Cheap: for a level that is off
nothing is built or formatted, and the API's line per request goes through `LineLogger`, which
skips `logging`'s per-record machinery and writes its lines in batches.
"""

import asyncio
import atexit
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TextIO

from pydantic_core import to_json

from shared.settings import Settings

# What every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Loggers that bring their own handler (uvicorn's dictConfig): sent to the root's instead, so
# that every line of a process has one format.
_OWN_HANDLERS = ("uvicorn",)
# uvicorn's access log is silenced, `--no-access-log` or not: the API writes its own line per
# request (api/access_log.py: request id, key, route, duration); a second costs CPU for nothing.
_SILENCED = ("uvicorn.access",)
_context: ContextVar[dict[str, Any] | None] = ContextVar("realty_log_context", default=None)


def bind(**fields: Any) -> Token:
    """Add `fields` to every line logged in this context (thread or task) until `unbind`."""
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: Token) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """`fields` on every line logged inside the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The bound context's fields, then the record's own `extra` fields."""
    fields = dict(_context.get() or ())
    for name, value in vars(record).items():
        if name not in _RECORD_ATTRIBUTES:
            fields[name] = value
    return fields


_second: tuple[int, str] = (0, "")  # the last second formatted, and its text


def utc_time(created: float) -> str:
    """2026-11-29T09:41:37.123Z: sorts as text and says its zone (the second's text is reused
    by every line of that second)."""
    global _second
    second = int(created)
    if second != _second[0]:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{int((created - second) * 1000):03d}Z"


def render_json(created: float, level: str, logger: str, message: str, fields: dict) -> str:
    """One line of JSON, by pydantic-core's serializer (a sixth of `json.dumps`'s time); a value
    JSON cannot hold becomes its text (NaN: "NaN")."""
    entry = {"time": utc_time(created), "level": level, "logger": logger, "message": message}
    entry.update(fields)
    return to_json(entry, fallback=str, inf_nan_mode="strings").decode()


def render_text(created: float, level: str, logger: str, message: str, fields: dict) -> str:
    exc, stack = fields.pop("exc", None), fields.pop("stack", None)
    shown = " ".join(f"{name}={value}" for name, value in fields.items())
    line = f"{utc_time(created)} {level} {logger}: {message}" + (f" [{shown}]" if shown else "")
    return "\n".join(part for part in (line, exc, stack) if part)


_render = render_json  # the process's format, chosen by `configure_logging`


class LineFormatter(logging.Formatter):
    """A record as one line of the process's format (JSON or text)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = fields_of(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return _render(record.created, record.levelname, record.name, record.getMessage(), fields)


class _Pending:
    """Lines of `LineLogger`s not written yet: written together, as one write, FLUSH_S after
    the first of them (on the event loop of the process: no thread of their own), when
    MAX_PENDING wait, before any other line of the process (so the order holds), and at exit.
    A process killed outright loses at most FLUSH_S of them."""

    FLUSH_S = 0.2
    MAX_PENDING = 64

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.due = False

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            waiting = len(self.lines)
        if waiting >= self.MAX_PENDING:
            self.flush()
        elif not self.due:
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # no event loop here: write it now
                self.flush()
                return
            self.due = True

    def flush(self) -> None:
        with self.lock:
            self.due = False
            if not self.lines:
                return
            text = "\n".join(self.lines) + "\n"
            self.lines.clear()
            sys.stderr.write(text)
            sys.stderr.flush()


_pending = _Pending()
atexit.register(_pending.flush)
flush = _pending.flush


class LineLogger:
    """For one line per event on a hot path (the API's line per request): the same format, level
    and stream as every other line of the process, without `logging`'s machinery per line (a
    LogRecord, the caller's frame, the handler's lock, a write each), and written in batches:
    about 4.5 µs of CPU a line instead of 19 (`python -m bench.telemetry_cost`)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    @property
    def enabled(self) -> bool:
        """Whether its lines are written: check it before building them."""
        return self.logger.isEnabledFor(logging.INFO)

    def info(self, message: str, **fields: Any) -> None:
        if not self.enabled:
            return
        context = _context.get()
        if context:
            fields = {**context, **fields}
        _pending.add(_render(time.time(), "INFO", self.logger.name, message, fields))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged (as logging's last resort
    does), not to the stream of the moment it was made: a test's captured stream is closed
    after the test."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]  # read-only here
        return sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        _pending.flush()  # hot-path lines logged before this one come first
        super().emit(record)


def configure_logging(settings: Settings) -> None:
    """Every line of this process through one handler on the root logger, in `log_format`, at
    `log_level`. Called again (a second app in one process), it replaces its own handler and
    leaves others (pytest's) alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    global _render
    _render = render_json if settings.log_format == "json" else render_text
    handler = StderrHandler()
    handler.setFormatter(LineFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in _SILENCED:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = False
