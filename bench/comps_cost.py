"""What comparable sales cost a single prediction: one service, `/v1/predict` without and with
`?comps=N` alternating at each concurrency, wrk for 10 s after 3 s of warm-up.

    python -m bench.comps_cost --clients 1,16 --comps 5

Prints one line per measurement; docs/performance.md's comps section quotes them.
"""

import argparse

from bench.wrk_once import measure, service, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--comps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--version", default="v2")
    args = parser.parse_args()
    with service(args.version, "comps-cost") as (bench, base):
        for _ in range(args.rounds):
            for clients in (int(c) for c in args.clients.split(",")):
                for query in ("", f"?comps={args.comps}"):
                    figures = measure(bench, f"{base}/v1/predict{query}", clients)
                    print(f"{query or 'no comps':9} {clients:3} clients: {summary(figures)}")


if __name__ == "__main__":
    main()
