"""What Redis's `appendfsync always` costs case C: one service per run, the policies
alternating, wrk on `/v1/predict` for 10 s after 3 s of warm-up at each concurrency.

    python -m bench.fsync_cost --clients 1,64 --rounds 2

Prints one line per run; docs/operations.md (Faults) quotes them.
"""

import argparse

from bench import run
from bench.wrk_once import measure, service, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--version", default="v2")
    args = parser.parse_args()
    for _ in range(args.rounds):
        for policy in ("always", "everysec"):
            run.APPENDFSYNC = policy
            with service(args.version, "fsync-cost") as (bench, base):
                for clients in (int(c) for c in args.clients.split(",")):
                    figures = measure(bench, f"{base}/v1/predict", clients)
                    print(f"{policy:8} {clients:3} clients: {summary(figures)}")


if __name__ == "__main__":
    main()
