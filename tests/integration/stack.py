"""Real processes for integration tests: redis-server, Celery workers and the API, each on a free
loopback port, each stopped by its own PID (process group) when the test is done, pass or fail."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import redis
import requests

from shared.model.signing import signing_key
from shared.settings import Settings
from shared.tools.procs import free_port, redis_server_path, tail, wait_for
from shared.wire import names
from shared.wire.api_keys import KeyRegistry, Role, new_key
from shared.wire.liveness import live_nodes_sync
from shared.wire.redis_auth import local_passwords, with_credentials, write_acl_config

REPO = Path(__file__).resolve().parents[2]


def as_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as a JSON client would send them: plain numbers, text zipcodes, null for missing."""
    return json.loads(frame.to_json(orient="records"))


def streamed(total_bytes: int) -> Iterator[bytes]:
    """A body sent in chunks without a Content-Length, as a streaming client does."""
    for _ in range(0, total_bytes, 10_000):
        yield b"x" * 10_000


@dataclass
class Process:
    """A child started in its own process group, so stopping it also stops its children."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        if self.running():
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        """Polite stop (SIGTERM: Celery's warm shutdown), then SIGKILL if it does not exit."""
        if not self.running():
            return
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.running():
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)  # type: ignore[union-attr]

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


@dataclass
class Stack:
    """One service instance: its Redis, its workers and its API, sharing one environment."""

    workdir: Path
    env: dict[str, str]
    redis_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    redis_proc: Process | None = None
    api_proc: Process | None = None
    workers: list[Process] = field(default_factory=list)
    # The API registers it at start (REALTY_ADMIN_KEY): what `http` presents.
    admin_key: str = field(default_factory=new_key)

    def __post_init__(self) -> None:
        self.env["REALTY_ADMIN_KEY"] = self.admin_key
        # Redis is locked as under make run, with passwords of the stack's own; `env` is the
        # operator's (admin), each service gets its role's (`role_env`).
        self.redis_passwords = local_passwords(self.workdir / "secrets")
        self.env |= self.role_env("admin")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.admin_key}"

    def realty(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """The `realty` command beside the stack, as an operator runs it; `settings` become
        REALTY_* variables of that run only."""
        env = self.env | {f"REALTY_{k.upper()}": v for k, v in settings.items()}
        return subprocess.run(
            [sys.executable, "-m", "shared.tools.cli", *args],
            cwd=REPO,
            env=env | {"COLUMNS": "200"},  # tables unwrapped, for the assertions
            capture_output=True,
            text=True,
            timeout=120,
        )

    def key(self, name: str, role: Role, rate_per_s: float | None = None) -> str:
        """A new API key of `role`, straight into the stack's Redis."""
        return KeyRegistry(self.redis_client()).create(name, role, rate_per_s)

    def role_env(self, user: str) -> dict[str, str]:
        """What a process logging in to the stack's Redis as `user` gets."""
        return {"REALTY_REDIS_USER": user, "REALTY_REDIS_PASSWORD": self.redis_passwords[user]}

    @property
    def service_url(self) -> str:
        """REALTY_REDIS_URL of the processes: no login, completed from `role_env`."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_url(self) -> str:
        """The test's own URL, logged in as admin."""
        return with_credentials(self.service_url, "admin", self.redis_passwords["admin"])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=5)

    def start_redis(self) -> Process:
        """AOF on, as in production, so a restart keeps queued jobs and the active version."""
        data_dir = self.workdir / "redis"
        data_dir.mkdir(exist_ok=True)
        users = write_acl_config(self.workdir / "redis-users.conf", self.redis_passwords)
        argv = [redis_server_path(), str(users), "--port", str(self.redis_port)]
        argv += ["--bind", "127.0.0.1", "--protected-mode", "yes"]
        argv += ["--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "always"]
        argv += ["--save", "", "--maxmemory-policy", "noeviction"]
        self.redis_proc = Process("redis", argv, self.env, self.workdir / "redis.log").start()
        wait_for(lambda: self.redis_client().ping(), 10, "redis-server")
        return self.redis_proc

    def start_worker(
        self, *, concurrency: int = 1, wait: bool = True, env: dict[str, str] | None = None
    ) -> Process:
        """A worker of the newest bundle; `env` adds to its environment (e.g. a shifted clock)."""
        name = f"w{len(self.workers) + 1}"
        argv = [sys.executable, "-m", "worker", "--concurrency", str(concurrency), "--name", name]
        env = self.env | self.role_env("worker") | (env or {})
        proc = Process(name, argv, env, self.workdir / f"{name}.log").start()
        self.workers.append(proc)
        if wait:
            wait_for(lambda: self.live_workers(name) == 1, 60, f"worker {name}")
        return proc

    def start_pool(self, name: str, *, wait_for_version: str | None = None) -> Process:
        """A worker pool (`python -m worker.pool`), as one compose replica or `make run` runs."""
        argv = [sys.executable, "-m", "worker.pool", "--concurrency", "1", "--name", name]
        env = self.env | self.role_env("worker")
        proc = Process(name, argv, env, self.workdir / f"{name}.log").start()
        self.workers.append(proc)
        if wait_for_version:
            wait_for(
                lambda: any(
                    n == f"{wait_for_version}@{name}" for n in self.nodes(wait_for_version)
                ),
                60,
                f"pool {name} serving {wait_for_version}",
            )
        return proc

    def nodes(self, version: str) -> list[str]:
        ttl = float(self.env.get("REALTY_HEARTBEAT_TTL_S", 10))
        return live_nodes_sync(self.redis_client(), version, ttl)

    def live_workers(self, name: str | None = None) -> int:
        client = self.redis_client()
        ttl = float(self.env.get("REALTY_HEARTBEAT_TTL_S", 10))
        nodes = [n for v in client.smembers(names.MODELS) for n in live_nodes_sync(client, v, ttl)]
        return len(nodes) if name is None else sum(1 for n in nodes if n.endswith(f"@{name}"))

    def start_api(self) -> Process:
        # One process, as the tests were written for (`python -m api` alone starts one per core).
        argv = [sys.executable, "-m", "api", "--factory", "api.main:create_app", "--workers", "1"]
        argv += ["--host", "127.0.0.1", "--port", str(self.api_port), "--log-level", "warning"]
        env = self.env | self.role_env("api")
        self.api_proc = Process("api", argv, env, self.workdir / "api.log").start()
        wait_for(lambda: requests.get(f"{self.api_url}/health/live", timeout=1).ok, 30, "API")
        return self.api_proc

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(
            lambda: requests.get(f"{self.api_url}/health/ready", timeout=2).status_code == 200,
            timeout,
            "API readiness",
        )

    def stop(self) -> None:
        for proc in [self.api_proc, *self.workers, self.redis_proc]:
            if proc is not None:
                proc.stop()
        self.http.close()

    def logs(self) -> str:
        procs = [p for p in [self.api_proc, *self.workers, self.redis_proc] if p is not None]
        return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in procs)


def bundle_key_env() -> dict[str, str]:
    """REALTY_BUNDLE_SIGNING_KEY for every process of a stack and for the `two_bundles`
    training, so that workers verify both those bundles and the repository's: the key `make
    train` signs with (the caller's REALTY_BUNDLE_SIGNING_KEY, else the key file in its secrets
    directory, the checkout's .run/secrets by default, made there if missing as training
    would). Only the key is passed: a stack's other secrets stay its own."""
    settings = Settings()
    settings = settings.model_copy(update={"secrets_dir": REPO / settings.secrets_dir})
    return {"REALTY_BUNDLE_SIGNING_KEY": signing_key(settings, create=True).get_secret_value()}


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    *,
    workers: int = 1,
    concurrency: int = 1,
    active: str | None = None,
    pools: tuple[str, ...] = (),
    worker_env: dict[str, str] | None = None,
    **settings: object,
) -> Iterator[Stack]:
    """A whole service: `workers` plain workers of the newest bundle (`worker_env` added to
    theirs), or worker `pools` serving the `active` version; `settings` become REALTY_*
    environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
    env |= {
        "REALTY_MODEL_DIR": str(REPO / "model_artifacts"),
        "REALTY_DATA_DIR": str(REPO / "data"),
        # Secrets the processes generate stay the stack's own, not the checkout's.
        "REALTY_SECRETS_DIR": str(workdir / "secrets"),
        # No record unless the test gives one (`**postgres.stack_settings()`): a port nothing
        # listens on, never `make run`'s PostgreSQL; estimates then wait in Redis.
        "REALTY_DATABASE_URL": "postgresql+psycopg://realty@127.0.0.1:9/realty",
        **bundle_key_env(),
    }
    env |= {f"REALTY_{k.upper()}": str(v) for k, v in settings.items()}
    env["PYTHONUNBUFFERED"] = "1"
    stack = Stack(workdir=workdir, env=env)
    env["REALTY_REDIS_URL"] = stack.service_url
    try:
        stack.start_redis()
        if active:
            stack.redis_client().set(names.ACTIVE_VERSION, active)
        for _ in range(workers):
            stack.start_worker(concurrency=concurrency, env=worker_env)
        for name in pools:
            stack.start_pool(name, wait_for_version=active)
        stack.start_api()
        stack.wait_ready()
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
