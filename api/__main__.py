"""`python -m api [uvicorn's options]`: uvicorn, with the same options and UVICORN_* variables,
serving over `api.http_protocol` (slow clients cut off) instead of its plain protocol, and with
one set of metrics for all its processes: a fresh PROMETHEUS_MULTIPROC_DIR made before uvicorn
starts them and removed when it stops (shared/multiprocess_metrics.py says why).

Given no process count (`--workers`, UVICORN_WORKERS or uvicorn's WEB_CONCURRENCY), it starts
one per core it may use, at most 4 (shared/cores.py): the layout `make run` starts, measured
fastest, and in a container the count its own `cpus:` limit allows."""

import os
import sys

from uvicorn.main import main as uvicorn_command

from shared.cores import usable_cores
from shared.multiprocess_metrics import shared_directory

PROTOCOL = "api.http_protocol:ReadDeadlineProtocol"


def main(argv: list[str] | None = None) -> None:
    command = uvicorn_command
    args = list(sys.argv[1:] if argv is None else argv)
    with command.make_context("python -m api", args) as ctx, shared_directory("api"):
        ctx.params["http"] = PROTOCOL  # an import string: each worker process imports it
        if ctx.params["workers"] is None and "WEB_CONCURRENCY" not in os.environ:
            ctx.params["workers"] = usable_cores()
        command.invoke(ctx)


if __name__ == "__main__":
    main()
