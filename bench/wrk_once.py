"""One warmed-up wrk measurement against a running service: what the one-off comparisons
(`bench.fsync_cost`, `bench.comps_cost`) measure, each on services of their own."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import run, wrk


@contextmanager
def service(version: str, name: str) -> Iterator[tuple[run.Bench, str]]:
    """Case C's service (two API processes) on `version`, and its base URL; every process
    stopped on the way out, also on failure."""
    bench = run.Bench(
        run.parse_args(["--api-workers", "2", "--version", version]),
        Path(tempfile.mkdtemp(prefix=f"{name}-")),
    )
    try:
        base, _ = bench.start_service()
        yield bench, base
    finally:
        bench.procs.stop_all()


def measure(bench: run.Bench, url: str, clients: int, seconds: float = 10) -> dict[str, Any]:
    """wrk on `url` (post.lua's bodies, the bench key) for 3 s of warm-up, then `seconds`."""

    def argv(duration_s: float) -> list[str]:
        return wrk.wrk_argv(
            bench.wrk,
            url,
            bench.bodies,
            concurrency=clients,
            threads=1,
            duration_s=duration_s,
            timeout_s=15,
            key=bench.key,
        )

    wrk.run(argv(3), 3)
    return wrk.run(argv(seconds), seconds)


def summary(figures: dict[str, Any]) -> str:
    rate = figures["requests"] / figures["duration_us"] * 1e6
    latency = figures["latency_us"]
    return (
        f"{rate:,.0f} req/s, p50 {latency['p50'] / 1000:.2f} ms, "
        f"p99 {latency['p99'] / 1000:.2f} ms, non-2xx {figures['non2xx']}"
    )
