"""Driving wrk (Debian's package): installing it when missing, running one case, reading the
JSON line that bench/post.lua prints in its done() hook."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("post.lua")
MARKER = "BENCH_JSON "


def ensure_wrk() -> str:
    """wrk's path, installing the Debian package first when it is missing (a fresh machine)."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("wrk not found: installing the Debian package", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install wrk")
    return found


def wrk_version(binary: str) -> str:
    """E.g. 'wrk debian/4.1.0-3+b2 [epoll]' (wrk prints it with its usage, exit status 1)."""
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()


def parse_output(text: str) -> dict[str, Any]:
    """The figures post.lua's done() printed; ValueError when the line is missing."""
    for line in text.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise ValueError(f"wrk printed no {MARKER.strip()} line:\n{text[-2000:]}")


def wrk_argv(
    binary: str,
    url: str,
    bodies: Path,
    *,
    concurrency: int,
    threads: int,
    duration_s: float,
    timeout_s: float,
    key: str | None = None,
) -> list[str]:
    """One thread per core at most, one connection per simulated client; `key` is presented
    as `Authorization: Bearer` (the direct app ignores it)."""
    return [
        binary,
        "--latency",
        "-t",
        str(max(1, min(threads, concurrency))),
        "-c",
        str(concurrency),
        "-d",
        f"{duration_s:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies),
        *([key] if key else []),
    ]


def run(argv: list[str], duration_s: float) -> dict[str, Any]:
    """Run wrk to completion; a hang is cut off well after the planned duration."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[-1000:]}")
    return parse_output(out.stdout)
