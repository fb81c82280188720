"""`make bench`: cases A to E in one run, on one bundle and one set of rows, then
docs/performance.md.

    python -m bench [--version vN] [--duration 10] [--warmup 2] [--clients 1,16,64]

Bounded: each wrk case runs for a fixed time, the batch job has a deadline, and a hard limit
(`--time-limit`) ends the whole run. Every process started here is stopped by its own process
group when the run ends, fails, or is interrupted.
"""

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd
import redis
import requests
from pydantic import SecretStr
from sqlalchemy import text

from bench import report, wrk
from bench.procs import (
    CLOCK_TICKS,
    Child,
    Processes,
    command_line,
    descendants,
    load_average,
    pss_kib,
    rss_kib,
    tree_cpu,
)
from shared.cores import usable_cores
from shared.model.bundles import latest_version, read_manifest
from shared.model.signing import signing_key
from shared.records.database import sync_engine
from shared.settings import Settings
from shared.tools.procs import free_port, redis_server_path, wait_for
from shared.wire import names
from shared.wire.api_keys import KeyRegistry, Role, new_key
from shared.wire.redis_auth import local_passwords, with_credentials, write_acl_config

REPO = Path(__file__).resolve().parents[1]
ROWS_FILE = Path("data/future_unseen_examples.csv")
WRK_TIMEOUT_S = 15.0  # above the service's 10 s deadline, so its 504s are seen as answers
# Redis's fsync policy in case C; BENCH_APPENDFSYNC=everysec measures what "always" costs.
APPENDFSYNC = os.environ.get("BENCH_APPENDFSYNC", "always")
BATCH_POLL_S = 0.2
BATCH_DEADLINE_S = 180.0


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), to see other load."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children: wrk's, measured around its run."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Interrupted(Exception):
    """SIGTERM, SIGHUP or the hard time limit: unwind so every child is stopped."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def load_rows() -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: plain numbers, zipcode as text."""
    frame = pd.read_csv(REPO / ROWS_FILE, dtype={"zipcode": str})
    return json.loads(frame.to_json(orient="records"))


def base_env() -> dict[str, str]:
    """The caller's environment without REALTY_ settings that would point elsewhere; other
    REALTY_ settings pass through (to benchmark a tuned setting) and are reported."""
    env = {k: v for k, v in os.environ.items() if k not in ("REALTY_REDIS_URL",)}
    env |= {
        "REALTY_MODEL_DIR": str(REPO / "model_artifacts"),
        "REALTY_DATA_DIR": str(REPO / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REALTY_MODEL_VERSION", None)
    return env


def code_state() -> str:
    """The commit measured and whether app code differed from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "api", "worker", "shared"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    if not changed:
        return f"commit {head}"
    dirs = sorted({line[3:].split("/")[0] + "/" for line in changed})
    new = sorted(line[3:] for line in changed if line.startswith("??"))
    text = f"commit {head} plus uncommitted changes to {len(changed)} files in {', '.join(dirs)}"
    return text + (f" (new: {', '.join(new)})" if new else "")


def changed_settings() -> str:
    """The caller's REALTY_ settings, for the report; secrets (passwords, keys) only by name."""
    names = ("REALTY_REDIS_URL", "REALTY_MODEL_DIR", "REALTY_DATA_DIR", "REALTY_MODEL_VERSION")
    secret = {
        f"REALTY_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.annotation in (SecretStr, SecretStr | None)
    }
    found = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("REALTY_"))
    shown = (f"{f.split('=')[0]}=***" if f.split("=")[0] in secret else f for f in found)
    return ", ".join(f for f in shown if f.split("=")[0] not in names)


class Bench:
    """One benchmark run: its settings, its processes, and the figures collected so far."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = Processes(workdir / "logs")
        # B's and C's processes: as many as `make run` starts (shared/cores.py).
        self.cores = usable_cores()
        self.rows = load_rows()
        self.bodies = workdir / "bodies.jsonl"
        self.bodies.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        self.wrk = wrk.ensure_wrk()
        self.results: dict[str, Any] = {}
        self.key: str | None = None  # the service's API key, once its Redis runs

    def python(self) -> str:
        return sys.executable

    # --- A -----------------------------------------------------------------------------------
    def case_a(self) -> None:
        print("A: in-process predictions", flush=True)
        argv = [
            self.python(),
            "-m",
            "bench.inprocess",
            "--model-dir",
            str(REPO / "model_artifacts"),
        ]
        argv += ["--version", self.args.version, "--rows", str(REPO / ROWS_FILE)]
        argv += ["--seconds", str(self.args.inprocess_seconds)]
        child = self.procs.start("A-inprocess", argv, base_env(), REPO)
        try:
            child.popen.wait(timeout=120)
        finally:
            self.procs.stop(child)
        if child.popen.returncode != 0:
            raise RuntimeError(f"case A failed:\n{child.log_tail()}")
        self.results["A"] = json.loads(child.log_path.read_text().strip().splitlines()[-1])

    # --- load cases B and C -------------------------------------------------------------------
    def load_case(
        self, case: str, url: str, components: dict[str, int], clients: int
    ) -> dict[str, Any]:
        """Warm up, then one measured wrk run, with each component's CPU use meanwhile."""
        common = {
            "concurrency": clients,
            "threads": self.cores,
            "timeout_s": WRK_TIMEOUT_S,
            "key": self.key,
        }
        warm = wrk.wrk_argv(self.wrk, url, self.bodies, duration_s=self.args.warmup, **common)
        warm_raw = wrk.run(warm, self.args.warmup)
        argv = wrk.wrk_argv(self.wrk, url, self.bodies, duration_s=self.args.duration, **common)
        example = ["wrk", *argv[1:]]
        example[example.index(url)] = "URL"
        example[example.index(str(self.bodies))] = "BODIES.jsonl"
        if self.key:
            example[-1] = "API_KEY"
        example[example.index(str(wrk.LUA_SCRIPT))] = "bench/post.lua"
        self.results["meta"].setdefault("wrk_example", " ".join(example))
        trees = {name: descendants(pid) for name, pid in components.items()}
        cpu_before = {name: tree_cpu(pids) for name, pids in trees.items()}
        machine_before, wrk_before = machine_busy_seconds(), children_cpu_seconds()
        started = time.monotonic()
        raw = wrk.run(argv, self.args.duration)
        wall = time.monotonic() - started
        cpu = {name: (tree_cpu(trees[name]) - cpu_before[name]) / wall for name in trees}
        cpu["wrk"] = (children_cpu_seconds() - wrk_before) / wall
        busy = (machine_busy_seconds() - machine_before) / wall
        cpu["anything else"] = max(busy - sum(cpu.values()), 0.0)
        summary = report.summarise_wrk(raw) | {
            "case": case,
            "concurrency": clients,
            "cpu_cores": cpu,
            "load_after": load_average(),
            "warmup_requests": int(warm_raw["requests"]),
            "raw": raw,
        }
        print(
            f"  {case} c={clients:>3}: {summary['ok_rps']:8.1f} req/s  p50 {summary['p50_ms']:7.2f}"
            f" ms  p99 {summary['p99_ms']:8.2f} ms  non-2xx {summary['non2xx']}"
            f"  socket errors {summary['socket_errors']}"
            + (f"  mean batch {summary['mean_batch_size']:.1f}" if case == "C" else ""),
            flush=True,
        )
        return summary

    def memory(self, case: str, root: Child, role_of: Callable[[int], str]) -> None:
        for pid in descendants(root.pid):
            kib = rss_kib(pid)
            if kib is not None:
                self.results.setdefault("memory", []).append(
                    {
                        "case": case,
                        "role": role_of(pid),
                        "pid": pid,
                        "rss_kib": kib,
                        "pss_kib": pss_kib(pid),
                    }
                )

    def start_direct(self) -> tuple[str, Child]:
        """Case B's server: uvicorn, one worker process per core, each with the model."""
        port = free_port()
        env = base_env() | {
            "BENCH_MODEL_DIR": str(REPO / "model_artifacts"),
            "BENCH_MODEL_VERSION": self.args.version,
        }
        argv = [self.python(), "-m", "uvicorn", "bench.direct_app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(self.cores), "--no-access-log"]
        server = self.procs.start("B-direct", argv, env, REPO)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/health", timeout=2).ok, 90, "direct app")
        # Every worker process loads the bundle at import; wait until all have.
        wait_for(
            lambda: server.log_path.read_text().count("loaded model") >= self.cores,
            90,
            "every uvicorn worker to load the model",
        )
        return base, server

    def start_ceiling(self) -> tuple[str, Child]:
        """Case E's server: the same server and process count as C's API, answering a constant
        after parsing the body (bench/ceiling_app.py)."""
        port = free_port()
        argv = [self.python(), "-m", "api", "bench.ceiling_app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(self.args.api_workers)]
        argv += ["--no-access-log"]
        server = self.procs.start("E-ceiling", argv, base_env(), REPO)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.post(base, data=b"{}", timeout=2).ok, 60, "ceiling app")
        return base, server

    def start_record(self, env: dict[str, str]) -> Child:
        """The record's PostgreSQL as `make run` starts it, migrated (scripts/postgres_server.py,
        `realty db upgrade`)."""
        argv = [self.python(), "scripts/postgres_server.py", "--port", self.postgres_port]
        argv += ["--dir", str(self.workdir / "postgres")]
        server = self.procs.start("C-postgres", argv, env, REPO)
        migrate = [self.python(), "-m", "shared.tools.cli", "db", "upgrade", "--wait", "60"]
        subprocess.run(migrate, cwd=REPO, env=env, check=True, capture_output=True, timeout=90)
        return server

    def start_flower(self, env: dict[str, str]) -> Child:
        """Flower as `make run` starts it: it takes every task event, the micro-batcher's too."""
        argv = [self.python(), "scripts/flower.py", "--address=127.0.0.1"]
        argv.append(f"--port={free_port()}")
        path = {"PATH": f"{Path(self.python()).parent}:{os.environ['PATH']}"}
        return self.procs.start("C-flower", argv, env | path, REPO)

    def start_service(self) -> tuple[str, dict[str, Child]]:
        redis_port, api_port = free_port(), free_port()
        self.postgres_port = str(free_port())
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        # The first admin key, generated here rather than in the checkout's .run/secrets; every
        # other secret in this run's own directory too.
        env = base_env() | {
            "REALTY_REDIS_URL": redis_url,
            "REALTY_ADMIN_KEY": new_key(),
            "REALTY_SECRETS_DIR": str(self.workdir / "secrets"),
            # ...but the key that signed the checkout's bundles, which the workers check.
            "REALTY_BUNDLE_SIGNING_KEY": signing_key(Settings(), create=False).get_secret_value(),
            "REALTY_DATABASE_URL": f"postgresql+psycopg://127.0.0.1:{self.postgres_port}/realty",
        }
        data_dir = self.workdir / "redis"
        data_dir.mkdir(exist_ok=True)
        # Redis locked as under `make run` (its ACL users), with passwords of this run's own.
        passwords = local_passwords(self.workdir / "secrets")
        users = write_acl_config(self.workdir / "redis-users.conf", passwords)
        argv = [redis_server_path(), str(users), "--port", str(redis_port)]
        argv += ["--bind", "127.0.0.1", "--protected-mode", "yes", "--dir", str(data_dir)]
        # Durable as under make run and compose: every write on disk before Redis answers it.
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", APPENDFSYNC]
        argv += ["--maxmemory-policy", "noeviction"]
        self.service_env = env
        children = {"redis": self.procs.start("C-redis", argv, env, REPO)}
        admin_url = with_credentials(redis_url, "admin", passwords["admin"])
        self.redis = redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=10)
        wait_for(self.redis.ping, 15, "redis-server")
        admin = {"REALTY_REDIS_USER": "admin", "REALTY_REDIS_PASSWORD": passwords["admin"]}
        children["postgres"] = self.start_record(env | admin)
        self.redis.set(names.ACTIVE_VERSION, self.args.version)
        # C and D present a key, as every client must: a batch key (it may submit D's job) with
        # no rate limit, so that quotas and their checks are on but never refuse the load.
        self.key = KeyRegistry(self.redis).create("bench", Role.BATCH, rate_per_s=0)
        # As `make run`: a worker pool (its recorder writes the record), Flower watching it.
        argv = [self.python(), "-m", "worker.pool", "--concurrency", str(self.cores)]
        argv += ["--name", "bench"]
        role = {"REALTY_REDIS_USER": "worker", "REALTY_REDIS_PASSWORD": passwords["worker"]}
        children["worker"] = self.procs.start("C-worker", argv, env | role, REPO)
        children["flower"] = self.start_flower(env | role)
        argv = [self.python(), "-m", "api", "--factory", "api.main:create_app"]
        # As Procfile and Dockerfile.api run it (and as B runs): no access log.
        argv += ["--host", "127.0.0.1", "--port", str(api_port), "--no-access-log"]
        argv += ["--workers", str(self.args.api_workers)]
        role = {"REALTY_REDIS_USER": "api", "REALTY_REDIS_PASSWORD": passwords["api"]}
        children["api"] = self.procs.start("C-api", argv, env | role, REPO)
        base = f"http://127.0.0.1:{api_port}"
        wait_for(
            lambda: requests.get(f"{base}/health/ready", timeout=2).status_code == 200,
            120,
            "service readiness",
        )
        # Readiness needs one loaded pool process; wait for all of them (main + children).
        worker = children["worker"]
        wait_for(
            lambda: worker.log_path.read_text().count("loaded model") >= self.cores,
            90,
            "every worker pool process to load the model",
        )
        return base, children

    def cases_b_c_d(self) -> None:
        """B and C alternate at each concurrency (B1, C1, B16, C16, ...), so load from other
        work on the machine hits both alike; D runs once B's server is gone."""
        print(f"B and C: direct app and service, {self.cores} processes each", flush=True)
        direct, server = self.start_direct()
        ceiling, ceiling_server = self.start_ceiling()
        base, children = self.start_service()
        components = {name: child.pid for name, child in children.items()}
        self.results["B"], self.results["C"], self.results["E"] = [], [], []
        redis_calls: dict[str, dict[str, int]] = {}
        for clients in self.args.clients:
            self.results["B"].append(
                self.load_case("B", f"{direct}/predict", {"uvicorn": server.pid}, clients)
            )
            before = self.redis.info("commandstats")
            self.results["C"].append(self.load_case("C", f"{base}/v1/predict", components, clients))
            add_calls(redis_calls, before, self.redis.info("commandstats"))
            ceiling_pids = {"uvicorn": ceiling_server.pid}
            self.results["E"].append(
                self.load_case("E", f"{ceiling}/v1/predict", ceiling_pids, clients)
            )
        sent = sum(r["requests"] + r["warmup_requests"] for r in self.results["C"])
        self.results["redis_per_request"] = per_request_commands({}, redis_calls, sent)
        self.memory(
            "B",
            server,
            lambda pid: (
                "uvicorn supervisor"
                if pid == server.pid
                else "multiprocessing resource tracker"
                if "resource_tracker" in command_line(pid)
                else "uvicorn worker process (model)"
            ),
        )
        worker = children["worker"]
        celery_main = min((p for p in descendants(worker.pid) if p != worker.pid), default=None)
        self.memory(
            "C",
            worker,
            lambda pid: (
                "worker pool (and its recorder)"
                if pid == worker.pid
                else "Celery main process"
                if pid == celery_main
                else "Celery pool process (model)"
            ),
        )
        self.memory("C", children["api"], lambda pid: "API (uvicorn)")
        self.memory("C", children["redis"], lambda pid: "redis-server")
        self.memory("C", children["postgres"], lambda pid: "PostgreSQL (the record)")
        self.memory("C", children["flower"], lambda pid: "Flower")
        self.procs.stop(server)
        self.procs.stop(ceiling_server)
        print(f"D: {self.args.batch_rows:,}-row batch job", flush=True)
        self.results["D"] = self.case_d(base, components)
        self.results["recorded"] = self.recorded(sent + self.args.batch_rows)

    def recorded(self, answered: int) -> dict[str, int]:
        """Proof that recording was on: the estimates on record once the buffer is written,
        against the requests sent (wrk's, warm-ups included, and D's rows; the few that were
        not answered have no record)."""
        wait_for(lambda: int(self.redis.get(names.RECORDS_ROWS) or 0) == 0, 120, "the record")
        settings = Settings(
            database_url=self.service_env["REALTY_DATABASE_URL"],
            secrets_dir=self.workdir / "secrets",
            redis_user="admin",
        )
        engine = sync_engine(settings, "bench")
        try:
            with engine.connect() as connection:
                rows = connection.scalar(text("SELECT count(*) FROM estimates"))
        finally:
            engine.dispose()
        dropped = int(self.redis.get(names.RECORDS_DROPPED) or 0)
        return {"sent": answered, "on_record": int(rows or 0), "dropped": dropped}

    def case_d(self, base: str, components: dict[str, int]) -> dict[str, Any]:
        frame = pd.DataFrame([self.rows[i % len(self.rows)] for i in range(self.args.batch_rows)])
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        body = buffer.getvalue().encode()
        trees = {name: descendants(pid) for name, pid in components.items()}
        cpu_before = {name: tree_cpu(pids) for name, pids in trees.items()}
        machine_before = machine_busy_seconds()
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {self.key}"
            started = time.monotonic()
            answer = http.post(
                f"{base}/v1/batch", data=body, headers={"content-type": "text/csv"}, timeout=120
            )
            answer.raise_for_status()
            submitted = time.monotonic()
            status_url = answer.json()["status_url"]
            deadline = started + BATCH_DEADLINE_S
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"batch job not done after {BATCH_DEADLINE_S:g} s")
                poll_started = time.monotonic()
                status = http.get(status_url, timeout=120)
                status.raise_for_status()
                job = status.json()
                if job["status"] in ("succeeded", "failed"):
                    break
                time.sleep(BATCH_POLL_S)
            finished = time.monotonic()
        wall = finished - started
        cpu = {name: (tree_cpu(trees[name]) - cpu_before[name]) / wall for name in trees}
        busy = (machine_busy_seconds() - machine_before) / wall
        cpu["anything else (this client included)"] = max(busy - sum(cpu.values()), 0.0)
        results = job.get("results") or []
        missing = sum(1 for r in results if r.get("prediction") is None)
        errors = missing + (len(frame) - len(results)) + (1 if job.get("error") else 0)
        summary = {
            "rows": len(frame),
            "body_mib": len(body) / 2**20,
            "status": job["status"],
            "submit_s": submitted - started,
            "processing_s": poll_started - submitted,
            "results_s": finished - poll_started,
            "total_s": finished - started,
            "rows_per_s": len(results) / (finished - started),
            "errors": errors,
            "error": job.get("error"),
            "poll_s": BATCH_POLL_S,
            "cpu_cores": cpu,
        }
        print(
            f"  D: {summary['rows_per_s']:,.0f} rows/s, total {summary['total_s']:.1f} s, "
            f"status {job['status']}, errors {errors}",
            flush=True,
        )
        return summary


def add_calls(
    total: dict[str, dict[str, int]], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Add the calls and CPU time between two `INFO commandstats` snapshots to `total`."""
    for key, stats in after.items():
        old = before.get(key, {})
        entry = total.setdefault(key, {"calls": 0, "usec": 0})
        entry["calls"] += stats["calls"] - old.get("calls", 0)
        entry["usec"] += stats["usec"] - old.get("usec", 0)


def per_request_commands(
    before: dict[str, Any], after: dict[str, Any], requests_sent: int
) -> dict[str, dict[str, float]]:
    """Redis commands per request between two `INFO commandstats` snapshots, with the mean
    server CPU time per call over the interval."""
    out = {}
    for key, stats in after.items():
        old = before.get(key, {})
        calls = stats["calls"] - old.get("calls", 0)
        per = calls / requests_sent if requests_sent else 0.0
        if per >= 0.05:
            usec = (stats["usec"] - old.get("usec", 0)) / calls
            out[key.removeprefix("cmdstat_")] = {"per_request": per, "usec_per_call": usec}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["per_request"]))


def flame_runs(img: Path) -> list[dict[str, Any]]:
    """The figures of the flame graphs in `img` (bench.flame), oldest first."""
    runs = [json.loads(p.read_text()) for p in img.glob("flame-*.json")]
    return sorted(runs, key=lambda run: run["date"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        default=os.environ.get("VERSION") or None,
        help="bundle to measure (default: $VERSION, else the newest)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=int(os.environ.get("API_WORKERS") or usable_cores()),
        help="uvicorn processes of the service's API in case C (default: $API_WORKERS, else one "
        "per core up to 4: make run's default, the Makefile's CORES)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--clients", default="1,16,64", help="wrk concurrencies, comma-separated")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--inprocess-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--time-limit", type=int, default=480, help="hard limit, seconds")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    return args


def argv_changed(argv: list[str] | None) -> bool:
    """Whether options other than --version were given (then the report names them)."""
    given = sys.argv[1:] if argv is None else argv
    return any(a.startswith("--") and not a.startswith("--version") for a in given)


def cli(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(REPO)
    model_dir = REPO / "model_artifacts"
    chosen = args.version
    args.version = args.version or latest_version(model_dir)
    if args.version is None:
        raise SystemExit("no model bundle in model_artifacts/: run `make train` first")
    manifest = read_manifest(model_dir / args.version)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _raise)
    signal.alarm(args.time_limit)
    started = time.monotonic()
    run_dir = REPO / ".run" / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=run_dir) as tmp:
        bench = Bench(args, Path(tmp))
        command = "make bench" + (f" VERSION={chosen}" if chosen else "")
        if argv_changed(argv):
            command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
        bench.results["meta"] = {
            "command": command,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "cores": os.cpu_count() or 1,
            "platform": f"{platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}",
            "load_before": load_average(),
            "version": args.version,
            "kind": manifest.kind,
            "code": code_state(),
            "rows": len(bench.rows),
            "rows_file": str(ROWS_FILE),
            "wrk_version": wrk.wrk_version(bench.wrk),
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "timeout_s": WRK_TIMEOUT_S,
            "settings": changed_settings(),
            "processes": f"B: uvicorn --workers {bench.cores}; C: API uvicorn --workers "
            f"{args.api_workers}, one worker pool with --concurrency {bench.cores} (its "
            f"recorder writing to PostgreSQL), Flower; E: uvicorn --workers {args.api_workers}",
        }
        print(
            f"bench: model {args.version} ({manifest.kind}), {bench.cores} cores, "
            f"load {bench.results['meta']['load_before']}",
            flush=True,
        )
        try:
            bench.case_a()
            bench.cases_b_c_d()
        except (KeyboardInterrupt, Interrupted) as exc:
            print(
                f"bench: stopped ({type(exc).__name__} {exc}); stopping its processes",
                file=sys.stderr,
            )
            raise SystemExit(130) from exc
        except Exception:
            for child in bench.procs.children:
                print(
                    f"--- {child.name} (pid {child.pid}) ---\n{child.log_tail()}", file=sys.stderr
                )
            raise
        finally:
            bench.procs.stop_all()
            signal.alarm(0)
            # Logs are kept next to the results for a look after the run.
            logs = run_dir / "logs"
            logs.mkdir(exist_ok=True)
            for log in (Path(tmp) / "logs").glob("*.log"):
                log.replace(logs / log.name)
    meta = bench.results["meta"]
    meta["load_after"] = load_average()
    meta["runtime_s"] = time.monotonic() - started
    bench.results["flames"] = flame_runs(args.out.parent / "img")
    (run_dir / "results.json").write_text(json.dumps(bench.results, indent=2) + "\n")
    args.out.write_text(report.render(bench.results))
    print("\nratios:")
    for r in report.compute_ratios(bench.results):
        print(f"  {r['name']}: {report.fmt(r['value'], 2)} (target {r['target']})")
    print(f"wrote {args.out} and {run_dir / 'results.json'} in {meta['runtime_s']:.0f} s")
