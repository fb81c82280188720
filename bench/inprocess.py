"""Case A: raw in-process speed of the served code path, no HTTP and no queue.

Run as its own process (`python -m bench.inprocess`), single-threaded like a worker process,
so that it measures what one worker process can do and nothing else competes in it. Prints one
JSON object.
"""

import os

# As in `python -m worker`: one BLAS/OpenMP thread per process, set before numpy loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from bench.procs import rss_kib
from shared.model.bundles import load_bundle
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.settings import get_settings


def rows_of(csv_path: Path) -> list[dict[str, Any]]:
    """The rows as a JSON client sends them (what the worker task receives)."""
    frame = pd.read_csv(csv_path, dtype={"zipcode": str})
    return json.loads(frame.to_json(orient="records"))


def time_single(call: Any, rows: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """Call `call(row)` over the rows for about `seconds`; per-call latency and rows/s."""
    durations: list[float] = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        started = time.perf_counter()
        call(rows[i % len(rows)])
        durations.append(time.perf_counter() - started)
        i += 1
    durations.sort()
    total = sum(durations)
    return {
        "calls": len(durations),
        "rows_per_s": len(durations) / total,
        "p50_ms": 1000 * durations[len(durations) // 2],
        "p99_ms": 1000 * durations[min(len(durations) - 1, int(len(durations) * 0.99))],
    }


def time_batch(predictor: Predictor, frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    """`estimate` (no explanation) on the whole frame `repeats` times, as a batch chunk is
    answered (price, ranges, grade, month, warnings); the median run gives the rate."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.estimate(frame, "full", explain=False)
        runs.append(time.perf_counter() - started)
    median = statistics.median(runs)
    return {
        "rows": len(frame),
        "repeats": repeats,
        "median_s": median,
        "rows_per_s": len(frame) / median,
    }


def measure(model_dir: Path, version: str, csv_path: Path, seconds: float) -> dict[str, Any]:
    key = signing_key(get_settings(), create=False)
    predictor = Predictor(load_bundle(model_dir, version, key=key))
    threadpool_limits(1)  # as worker.serving does after loading
    rows = rows_of(csv_path)
    big = pd.DataFrame([rows[i % len(rows)] for i in range(10_000)])

    def estimate_one(row: dict[str, Any]) -> None:
        # What the worker does for one /v1/predict request (explanations are opt-in).
        predictor.estimate(pd.DataFrame([row]), "full", explain=False)[0]

    def estimate_explained(row: dict[str, Any]) -> None:
        # The same with ?explain=true: contributions per feature on top.
        predictor.estimate(pd.DataFrame([row]), "full", explain=True)[0]

    def predict_one(row: dict[str, Any]) -> None:
        predictor.predict(pd.DataFrame([row]), "full")

    small = big.head(64)

    def estimate_64(_: dict[str, Any]) -> None:
        # The cost per house when 64 concurrent requests are answered in one model call.
        predictor.estimate(small, "full", explain=False)

    estimate_one(rows[0])  # first call pays lazy imports and caches
    predictor.estimate(big, "full", explain=False)
    per_64 = time_single(estimate_64, rows, seconds / 2)
    return {
        "version": version,
        "kind": predictor.kind.name,
        "estimate_1_row": time_single(estimate_one, rows, seconds),
        "estimate_explain_1_row": time_single(estimate_explained, rows, seconds / 2),
        "predict_1_row": time_single(predict_one, rows, seconds / 2),
        "estimate_64_rows": per_64 | {"rows_per_s": per_64["rows_per_s"] * len(small)},
        "estimate_10k_rows": time_batch(predictor, big, repeats=3),
        "rss_kib": rss_kib(os.getpid()),
        # The same bundle without its compiled trees (REALTY_COMPILED_TREES=false): LightGBM.
        "estimate_10k_rows_lightgbm": time_batch(
            Predictor(load_bundle(model_dir, version, key=key, artifacts=False)), big, repeats=3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--rows", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.model_dir, args.version, args.rows, args.seconds)))


if __name__ == "__main__":
    main()
