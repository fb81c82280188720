"""A real PostgreSQL for integration tests: scripts/postgres_server.py (what `make run` starts)
on a free loopback port, its secrets in the test's directory, migrated by `realty db upgrade`'s
own code; stopped, or killed, by its PID.

Its cluster is in the test's directory too, except under root: postgres then runs as the user
`pgserver`, which must reach the cluster, and pytest makes /tmp/pytest-of-root private again
whenever a session starts (another suite beside this one), so the cluster goes into a directory
of its own in the system's temporary directory, deleted at `stop`.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
from sqlalchemy import Engine
from stack import Process

from shared.records.database import OWNER, password, sync_engine
from shared.records.migrate import upgrade
from shared.settings import Settings
from shared.tools.procs import free_port, wait_for

ROLE_OF = {"owner": "admin", "api": "api", "worker": "worker"}  # -> the Redis user it follows


@dataclass
class Postgres:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: Process | None = None
    cluster: Path = field(init=False)

    def __post_init__(self) -> None:
        outside = os.geteuid() == 0
        parent = Path(tempfile.mkdtemp(prefix="realty-postgres-")) if outside else self.workdir
        self.cluster = parent / "data"

    @property
    def url(self) -> str:
        """REALTY_DATABASE_URL of the processes: no login, each completes it with its own."""
        return f"postgresql+psycopg://127.0.0.1:{self.port}/realty"

    @property
    def secrets_dir(self) -> Path:
        return self.workdir / "secrets"

    def stack_settings(self) -> dict[str, str]:
        """What `running_stack(**settings)` needs to give every process the record."""
        return {"database_url": self.url, "secrets_dir": str(self.secrets_dir)}

    def settings(self, role: str = "owner", **values: object) -> Settings:
        """A process of `role` (owner, api, worker) on this server; `values` override."""
        given = {"database_url": self.url, "secrets_dir": self.secrets_dir} | values
        return Settings(redis_user=ROLE_OF[role], **given)  # type: ignore[arg-type]

    def engine(self, role: str = "owner") -> Engine:
        return sync_engine(self.settings(role), f"test-{role}")

    def start(self) -> "Postgres":
        argv = [sys.executable, "scripts/postgres_server.py", "--port", str(self.port)]
        argv += ["--dir", str(self.cluster)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
        env |= {"REALTY_SECRETS_DIR": str(self.secrets_dir), "PYTHONUNBUFFERED": "1"}
        self.proc = Process("postgres", argv, env, self.workdir / "postgres.log").start()
        wait_for(self.accepts, 60, "PostgreSQL")
        return self

    def accepts(self) -> bool:
        secret = password(self.settings(), OWNER)
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=OWNER,
            password=secret,
            dbname="realty",
            connect_timeout=2,
        ):
            return True

    def migrate(self) -> str | None:
        return upgrade(self.settings())

    def kill(self) -> None:
        """As a crash: SIGKILL to the postmaster and every backend, then wait for the last
        backend to be gone (a new postmaster refuses shared memory one still holds)."""
        assert self.proc is not None
        group = self.proc.pid
        self.proc.kill()
        wait_for(lambda: not _alive(group), 10, "the killed backends to exit")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, not waited for), else SIGKILL; then
        the cluster is deleted if it is outside the test's directory."""
        if self.proc is not None and self.proc.running():
            self.proc.signal_group(signal.SIGINT)
            try:
                self.proc.popen.wait(15)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if not self.cluster.is_relative_to(self.workdir):
            shutil.rmtree(self.cluster.parent, ignore_errors=True)

    def log_tail(self) -> str:
        return self.proc.log_tail() if self.proc else ""


def _alive(group: int) -> bool:
    """Whether a process of `group` still runs (a zombie holds no shared memory)."""
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == group and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False
