"""What Redis's `appendfsync always` costs case C: one service per run, the policies
alternating, wrk on `/v1/predict` for 10 s after 3 s of warm-up at each concurrency.

    python -m bench.fsync_cost --clients 1,64 --rounds 2

Prints one line per run; docs/operations.md (Faults) quotes them.
"""

import argparse
import tempfile
from pathlib import Path

from bench import run
from bench.wrk_once import measure, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--version", default="v2")
    args = parser.parse_args()
    bench_args = run.parse_args(["--api-workers", "2", "--version", args.version])
    for _ in range(args.rounds):
        for policy in ("always", "everysec"):
            run.APPENDFSYNC = policy
            bench = run.Bench(bench_args, Path(tempfile.mkdtemp(prefix="fsync-cost-")))
            try:
                base, _ = bench.start_service()
                for clients in (int(c) for c in args.clients.split(",")):
                    figures = measure(bench, f"{base}/v1/predict", clients)
                    print(f"{policy:8} {clients:3} clients: {summary(figures)}")
            finally:
                bench.procs.stop_all()


if __name__ == "__main__":
    main()
