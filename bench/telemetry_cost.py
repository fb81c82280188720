"""`python -m bench.telemetry_cost`: what the request metrics and the request log line add to one
single prediction in the API process (and the metrics to a worker's model call), in µs, measured
in process as the services run them: in multiprocess mode (a fresh PROMETHEUS_MULTIPROC_DIR in
/dev/shm), the log line in JSON to a pipe that another process drains, as under compose or
honcho.

Each figure is this process's CPU time (not the wall clock: the machine's other work and the
pipe's reader do not count) per call, the median of `--repeats` runs of `--number` calls. For
comparison it also times what observing prometheus-client's histograms directly would cost,
which api/metrics.py avoids.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import timeit
from types import SimpleNamespace

from shared.multiprocess_metrics import shared_directory


def _median_us(call, number: int, repeats: int) -> float:
    runs = timeit.repeat(call, timer=time.process_time, number=number, repeat=repeats)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert drain.stdin is not None
    saved_stderr = os.dup(2)
    os.dup2(drain.stdin.fileno(), 2)  # the log lines go down the pipe, as in production
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115  # fd 2 stays open
    try:
        with shared_directory("bench"):
            figures = asyncio.run(_measure(args.number, args.repeats))
    finally:
        os.dup2(saved_stderr, 2)
        sys.stderr = sys.__stderr__
        drain.stdin.close()
        drain.wait()
    for name, value in figures.items():
        print(f"{name:<58} {value:6.2f} µs")


async def _measure(number: int, repeats: int) -> dict[str, float]:
    """On an event loop, as in the API: the metrics' flush is scheduled on it."""
    # Imported here: prometheus-client picks its mode when first imported.
    import logging

    from api import metrics
    from api.access_log import log_request
    from api.errors import REQUEST_ID_SCOPE_KEY
    from shared.logs import configure_logging
    from shared.settings import Settings
    from shared.wire.messages import EstimateReply

    configure_logging(Settings(log_format="json", log_level="INFO"))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/predict",
        "route": SimpleNamespace(path="/v1/predict"),
        REQUEST_ID_SCOPE_KEY: "0123456789abcdef0123456789abcdef",
        "realty.key_name": "agent-7",
    }
    reply = EstimateReply(
        request_id="0123456789abcdef0123456789abcdef",
        prediction=452000.0,
        model_version="v2",
        model_kind="gbm",
        batch_size=24,
        queued_ms=3.2,
        model_ms=6.1,
    )

    def request_metrics() -> None:
        metrics.observe_request(scope["method"], metrics.route_of(scope), 200, 0.0123)

    def reply_metrics() -> None:
        metrics.observe_reply(reply)

    def log_line() -> None:
        log_request(scope, "/v1/predict", 200, 0.0123)

    def everything() -> None:
        route = metrics.route_of(scope)
        metrics.observe_request(scope["method"], route, 200, 0.0123)
        metrics.observe_reply(reply)
        log_request(scope, route, 200, 0.0123)

    series = metrics.REQUEST_SECONDS.labels("POST", "/v1/predict", "200")
    queued = metrics.QUEUED_SECONDS.labels("v2")
    model = metrics.MODEL_SECONDS.labels("v2")
    size = metrics.BATCH_SIZE.labels("v2")

    def direct_histograms() -> None:
        series.observe(0.0123)
        queued.observe(0.0032)
        model.observe(0.0061)
        size.observe(24)

    plain = logging.getLogger("bench.access")

    def plain_logging_line() -> None:
        plain.info(
            "POST /v1/predict 200",
            extra={
                "request_id": scope[REQUEST_ID_SCOPE_KEY],
                "key": "agent-7",
                "method": "POST",
                "route": "/v1/predict",
                "status": 200,
                "duration_ms": 12.3,
            },
        )

    figures = {
        "request metrics (route, duration, status)": _measure_one(request_metrics, number, repeats),
        "reply metrics (queued, model, micro-batch size)": _measure_one(
            reply_metrics, number, repeats
        ),
        "request log line (JSON, to a pipe)": _measure_one(log_line, number, repeats),
        "all of them: one single prediction": _measure_one(everything, number, repeats),
        "periodic flush, per request (1 s of 2,500 requests)": _flush_cost(
            everything, metrics.flush
        ),
        "for comparison: the 4 histograms observed directly": _measure_one(
            direct_histograms, number, repeats
        ),
        "for comparison: the line through logging.Logger.info": _measure_one(
            plain_logging_line, number, repeats
        ),
    }
    from worker import metrics as worker_metrics

    def model_call() -> None:
        worker_metrics.observe_microbatch(30, 0.006)
        worker_metrics.count_records(pushed=30, dropped=0)

    figures["a worker's model call (size, time, records), per call"] = _measure_one(
        model_call, number, repeats
    )
    logging.getLogger().setLevel(logging.WARNING)
    figures["log line with log_level=WARNING (off)"] = _measure_one(log_line, number, repeats)
    return figures


def _measure_one(call, number: int, repeats: int) -> float:
    return _median_us(call, number, repeats)


def _flush_cost(observe, flush) -> float:
    """A flush after 2,500 requests' observations, per request."""
    runs = []
    for _ in range(7):
        for _ in range(2_500):
            observe()
        runs.append(timeit.timeit(flush, timer=time.process_time, number=1) / 2_500 * 1e6)
    return statistics.median(runs)


if __name__ == "__main__":
    main()
