"""What comparable sales cost a single prediction: one service, `/v1/predict` without and with
`?comps=N` alternating at each concurrency, wrk for 10 s after 3 s of warm-up.

    python -m bench.comps_cost --clients 1,16 --comps 5

Prints one line per measurement; docs/performance.md's comps section quotes them.
"""

import argparse
import tempfile
from pathlib import Path

from bench import run
from bench.wrk_once import measure, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--comps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--version", default="v2")
    args = parser.parse_args()
    bench = run.Bench(
        run.parse_args(["--api-workers", "2", "--version", args.version]),
        Path(tempfile.mkdtemp(prefix="comps-cost-")),
    )
    try:
        base, _ = bench.start_service()
        for _ in range(args.rounds):
            for clients in (int(c) for c in args.clients.split(",")):
                for query in ("", f"?comps={args.comps}"):
                    figures = measure(bench, f"{base}/v1/predict{query}", clients)
                    print(f"{query or 'no comps':9} {clients:3} clients: {summary(figures)}")
    finally:
        bench.procs.stop_all()


if __name__ == "__main__":
    main()
