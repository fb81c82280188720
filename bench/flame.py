"""Where a single prediction's CPU goes: flame graphs of the service's API and worker processes
under case C's load, from py-spy.

    python -m bench.flame [--clients 64] [--seconds 10] [--out docs/img] [--tag now]

Starts case C's service (bench.wrk_once.service), warms it up, then runs wrk for `--seconds`
while py-spy samples every API process and every worker process (their children included) at
the same time; writes `flame-api-<tag>.svg` and `flame-worker-<tag>.svg` (open them in a
browser: each bar's width is its share of the samples; idle waiting is left out, so the widths
are CPU) and prints the wrk figures of that run. py-spy reads the processes from outside (no
change to the code measured); it runs as root here, which reading another process needs.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from bench.procs import descendants
from bench.run import changed_settings, code_state
from bench.wrk_once import measure, service, summary

REPO = Path(__file__).resolve().parents[1]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: `make install` puts it in .venv (dev extra)")
    return found


def record(pid: int, seconds: float, out: Path, form: str) -> subprocess.Popen:
    """py-spy on `pid` and its child processes for `seconds`, written as an SVG flame graph
    (or, `raw`, as collapsed stacks: one line per stack with its sample count)."""
    argv = [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    argv += ["--duration", str(round(seconds)), "--rate", "200", "--output", str(out)]
    argv += ["--format", form]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--version", default="v2")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--tag", default="now", help="file name part: before, after, ...")
    parser.add_argument("--format", choices=("flamegraph", "raw"), default="flamegraph")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with service(args.version, "flame") as (bench, base):
        url = f"{base}/v1/predict"
        measure(bench, url, args.clients, seconds=3)  # warm: both sides' caches full
        started = {child.name: child.pid for child in bench.procs.children}
        roots = {role: started[f"C-{role}"] for role in ("api", "worker")}
        suffix = "svg" if args.format == "flamegraph" else "txt"
        outs = {role: args.out / f"flame-{role}-{args.tag}.{suffix}" for role in roots}
        figures: dict = {}
        load = threading.Thread(
            target=lambda: figures.update(measure(bench, url, args.clients, args.seconds + 4))
        )
        load.start()  # its own 3 s warm-up first, then the measured seconds py-spy covers
        threading.Event().wait(4)
        spies = {
            role: record(pid, args.seconds, outs[role], args.format) for role, pid in roots.items()
        }
        for role, spy in spies.items():
            _, errors = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy on the {role} failed: {errors.strip()}")
        load.join()
        processes = {role: len(descendants(pid)) for role, pid in roots.items()}
    print(f"{args.clients} clients: {summary(figures)}; processes sampled {processes}")
    if args.format == "flamegraph":
        outs["figures"] = args.out / f"flame-{args.tag}.json"
        outs["figures"].write_text(json.dumps(_figures(args, figures, outs), indent=1) + "\n")
    for out in outs.values():
        print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


def _samples(svg: Path) -> int:
    """The flame graph's total sample count (its root bar's title)."""
    found = re.search(r"<title>all \(([\d,]+) samples", svg.read_text())
    if found is None:
        raise SystemExit(f"{svg}: no sample count in it")
    return int(found.group(1).replace(",", ""))


def _figures(args: argparse.Namespace, wrk: dict, outs: dict[str, Path]) -> dict:
    """What docs/performance.md shows of this run (bench.report): when, on what code and
    settings, wrk's figures and the samples of each side."""
    seconds = wrk["duration_us"] / 1e6
    return {
        "tag": args.tag,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": code_state(),
        "settings": changed_settings(),  # secrets by name only, as make bench's own report
        "clients": args.clients,
        # wrk runs 4 s longer than py-spy samples: the requests of the sampled seconds.
        "requests": round(wrk["requests"] / seconds * args.seconds),
        "rps": wrk["requests"] / seconds,
        "p99_ms": wrk["latency_us"]["p99"] / 1000,
        "samples": {role: _samples(outs[role]) for role in ("api", "worker")},
    }


if __name__ == "__main__":
    main()
