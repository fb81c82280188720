"""What Redis's `appendfsync always` costs case C: one service per run, the policies
alternating, wrk on `/v1/predict` for 10 s after 3 s of warm-up at each concurrency.

    python -m bench.fsync_cost --clients 1,64 --rounds 2

Prints one line per run; docs/operations.md (Faults) quotes them.
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from bench import run


def measure(bench: run.Bench, base: str, clients: int) -> dict:
    argv = [bench.wrk, "-t1", f"-c{clients}", "--timeout", "15s", "-s", "bench/post.lua"]
    argv += [f"{base}/v1/predict", "--", str(bench.bodies), bench.key or ""]
    subprocess.run([*argv[:3], "-d3s", *argv[3:]], capture_output=True, check=True)
    out = subprocess.run([*argv[:3], "-d10s", *argv[3:]], capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON"))
    return json.loads(line.split(" ", 1)[1])


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
                    d = measure(bench, base, clients)
                    rate = d["requests"] / d["duration_us"] * 1e6
                    p50 = d["latency_us"]["p50"] / 1000
                    print(f"{policy:8} {clients:3} clients: {rate:,.0f} req/s, p50 {p50:.2f} ms")
            finally:
                bench.procs.stop_all()


if __name__ == "__main__":
    main()
