"""What the rows per batch chunk change: make bench's case D (a 100,000-row job) on a fresh
service per size, the sizes alternating, each job alone (`--clients 0`) or with single
predictions beside it (wrk at `--clients` for its 3 s of warm-up, then 10 s that cover the job)
to show what larger chunks cost the answers waiting beside them.

    python -m bench.chunk_sizes --sizes 1000,2500 --rounds 2
    python -m bench.chunk_sizes --sizes 1000,2500,5000,10000 --clients 0

Prints one line per job; docs/operations.md (Tuning) quotes them.
"""

import argparse
import os
import threading
import time
from typing import Any

from bench.wrk_once import measure, service, summary


def _measure_into(figures: dict[str, Any], *args: Any) -> None:
    figures.update(measure(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2500")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16, help="0: the job alone")
    parser.add_argument("--version", default="v2")
    args = parser.parse_args()
    for _ in range(args.rounds):
        for size in args.sizes.split(","):
            os.environ["REALTY_BATCH_CHUNK_ROWS"] = size  # read by the service's processes
            with service(args.version, "chunk-sizes") as (bench, base):
                started = {child.name: child.pid for child in bench.procs.children}
                roots = {role: started[f"C-{role}"] for role in ("api", "worker")}
                singles: dict[str, Any] = {}
                load = None
                if args.clients:
                    url = f"{base}/v1/predict"
                    load = threading.Thread(
                        target=_measure_into, args=(singles, bench, url, args.clients)
                    )
                    load.start()
                    time.sleep(3)  # wrk's warm-up
                job = bench.case_d(base, roots)
                if load is not None:
                    load.join()
            phases = ", ".join(
                f"{phase} {job[f'{phase}_s']:.2f} s"
                for phase in ("submit", "processing", "results", "total")
            )
            beside = f"; beside it: {summary(singles)}" if args.clients else ", alone"
            print(f"{int(size):>6,}-row chunks: job {phases}{beside}")


if __name__ == "__main__":
    main()
