"""The one log format of the API and the workers (shared/logs.py): a JSON object per line with
the fields operators search by, the same lines as text on request, and the API's hot-path lines
batched without losing their order."""

import asyncio
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from shared import logs
from shared.settings import Settings


@pytest.fixture
def configure() -> Iterator[Callable[[str], None]]:
    """Set up the process's logging as the services do, in a format; restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield lambda log_format: logs.configure_logging(Settings(log_format=log_format))
    logs.flush()
    logs.configure_logging(Settings())  # JSON again, as every service starts
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def configured(configure) -> None:
    configure("json")


def lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_a_line_is_one_json_object_with_its_fields(configured, capsys):
    logging.getLogger("worker.microbatch").warning(
        "dropped request %s", "r1", extra={"request_id": "r1", "rows": 3, "ratio": float("nan")}
    )
    (line,) = lines(capsys.readouterr().err)
    assert line["level"] == "WARNING"
    assert line["logger"] == "worker.microbatch"
    assert line["message"] == "dropped request r1"
    assert line["request_id"] == "r1" and line["rows"] == 3
    assert line["ratio"] == "NaN"  # JSON has no NaN: its text
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-11-29T09:41:37.123Z")


def test_a_traceback_stays_inside_its_one_line(configured, capsys):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("api.errors").exception("request r2 crashed", extra={"request_id": "r2"})
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    (line,) = lines(err)
    assert "ValueError: boom" in line["exc"] and line["request_id"] == "r2"


def test_bound_fields_are_on_every_line_until_unbound(configured, capsys):
    log = logging.getLogger("worker.tasks")
    with logs.log_context(request_id="job-9", task_id="t1"):
        log.info("chunk 3 stored")
    log.info("idle")
    inside, outside = lines(capsys.readouterr().err)
    assert inside["request_id"] == "job-9" and inside["task_id"] == "t1"
    assert "request_id" not in outside


def test_text_is_the_same_line_for_a_human(configure, capsys):
    configure("text")
    logging.getLogger("api.access").info("GET /v1/models 200", extra={"request_id": "r3"})
    err = capsys.readouterr().err
    assert "INFO api.access: GET /v1/models 200 [request_id=r3]" in err
    assert not err.startswith("{")


def test_a_level_that_is_off_writes_nothing(configured, capsys):
    logging.getLogger().setLevel(logging.WARNING)
    access = logs.LineLogger("api.access")
    assert not access.enabled
    access.info("GET / 200", request_id="r4")
    logging.getLogger("api").info("not shown")
    logs.flush()
    assert capsys.readouterr().err == ""


def test_hot_path_lines_wait_then_come_out_in_order(configured, capsys):
    access = logs.LineLogger("api.access")

    async def serve() -> str:
        access.info("POST /v1/predict 200", request_id="a")
        access.info("POST /v1/predict 200", request_id="b")
        held = capsys.readouterr().err  # nothing written yet: they wait for the batch
        logging.getLogger("api.errors").warning("then this", extra={"request_id": "c"})
        return held

    held = asyncio.run(serve())
    assert held == ""
    assert [line["request_id"] for line in lines(capsys.readouterr().err)] == ["a", "b", "c"]


def test_hot_path_lines_are_written_within_the_flush_delay(configured, capsys):
    access = logs.LineLogger("api.access")

    async def serve() -> None:
        access.info("GET /health/live 200", request_id="d", status=200)
        await asyncio.sleep(logs._Pending.FLUSH_S * 2)

    asyncio.run(serve())
    (line,) = lines(capsys.readouterr().err)
    assert line["logger"] == "api.access" and line["status"] == 200


def test_configuring_again_replaces_only_its_own_handler(configured):
    foreign = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(foreign)
    logs.configure_logging(Settings(log_level="DEBUG"))
    ours = [h for h in root.handlers if isinstance(h, logs.StderrHandler)]
    assert len(ours) == 1 and foreign in root.handlers
    assert root.level == logging.DEBUG
    root.removeHandler(foreign)


def test_uvicorn_s_lines_take_the_same_format(configured, capsys):
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.setLevel(logging.INFO)
    uvicorn.info("Application startup complete.")
    (line,) = lines(capsys.readouterr().err)
    assert line["logger"] == "uvicorn.error"
