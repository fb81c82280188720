"""Redis and Flower are locked, on real processes: Redis refuses a client that does not log in,
the service's own users cannot wipe or reconfigure it, `make run`'s launcher generates and keeps
its passwords and caps its memory, compose's command line defines the same users, Flower wants
its login, and no password reaches a log or a command line."""

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from string import Template

import pytest
import redis
import requests
from stack import REPO, Process, Stack

from shared.tools.procs import free_port, redis_server_path, wait_for
from shared.wire.redis_auth import USERS, password_file

REDIS_CLI = Path(redis_server_path()).with_name("redis-cli")
COMPOSE = REPO / ".venv" / "bin" / "docker-compose"
# What Redis answers a client that has not logged in (redis-py opens with HELLO, which Redis
# refuses before AUTH in words of its own).
NOT_LOGGED_IN = r"NOAUTH|HELLO must be called with the client already authenticated"


def client(port: int, user: str | None = None, password: str | None = None) -> redis.Redis:
    return redis.Redis(
        port=port, username=user, password=password, decode_responses=True, socket_timeout=5
    )


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def acl_list(port: int, admin_password: str) -> list[str]:
    """Each user's rules as Redis holds them, password hashes left out; Redis's own summary of
    the rules, in an order of its own, hence sorted."""
    rules = client(port, "admin", admin_password).execute_command("ACL", "LIST")
    return sorted(" ".join(sorted(w for w in r.split() if not w.startswith("#"))) for r in rules)


def test_a_client_that_does_not_log_in_can_do_nothing(redis_stack: Stack) -> None:
    port = redis_stack.redis_port
    with pytest.raises(redis.AuthenticationError, match=NOT_LOGGED_IN):
        client(port).ping()
    with pytest.raises(redis.AuthenticationError):
        client(port, "admin", "a-guessed-password").ping()
    with pytest.raises(redis.AuthenticationError):
        client(port, "default", "").ping()
    for user, password in redis_stack.redis_passwords.items():
        assert client(port, user, password).ping()
    if REDIS_CLI.exists():
        bare = [str(REDIS_CLI), "-p", str(port), "ping"]
        assert "NOAUTH" in subprocess.run(bare, capture_output=True, text=True).stdout
        env = os.environ | {"REDISCLI_AUTH": redis_stack.redis_passwords["admin"]}
        logged_in = [str(REDIS_CLI), "--user", "admin", "-p", str(port), "ping"]
        assert subprocess.run(logged_in, capture_output=True, text=True, env=env).stdout == (
            "PONG\n"
        )


@pytest.mark.parametrize("user", ["api", "worker"])
def test_the_service_users_cannot_wipe_or_reconfigure_redis(redis_stack: Stack, user: str) -> None:
    service = client(redis_stack.redis_port, user, redis_stack.redis_passwords[user])
    service.set("realty:test:kept", "1")
    assert service.eval("return redis.call('GET', KEYS[1])", 1, "realty:test:kept") == "1"
    assert service.publish("realty:test:channel", "hello") == 0
    for command in [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("CONFIG", "GET", "requirepass"),
        ("KEYS", "*"),
        ("SHUTDOWN", "NOSAVE"),
        ("DEBUG", "SLEEP", "0"),
        ("ACL", "LIST"),
        ("MONITOR",),
    ]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            service.execute_command(*command)
    assert service.get("realty:test:kept") == "1"
    admin = redis_stack.redis_client()
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert admin.config_get("protected-mode") == {"protected-mode": "yes"}


def procfile_redis_argv(port: int) -> list[str]:
    """The Procfile's `redis:` line as honcho runs it under `make run` (Makefile defaults)."""
    line = next(x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("redis:"))
    command = Template(line.partition(":")[2]).substitute(REDIS_PORT=port, REDIS_MAXMEMORY="1gb")
    argv = shlex.split(command)
    assert argv[:2] == ["python", "scripts/redis_server.py"]
    return [sys.executable, str(REPO / "scripts" / "redis_server.py"), *argv[2:]]


def start_make_run_redis(checkout: Path, port: int, name: str) -> Process:
    """The launcher run from `checkout`, a directory standing in for the checkout's root (its
    relative `.run/...` paths land there), with none of the caller's REALTY_ settings."""
    (checkout / f".run/redis-{port}").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
    env["PYTHONPATH"] = str(REPO)
    argv = procfile_redis_argv(port)
    proc = Process(name, argv, env, checkout / f"{name}.log")
    log = proc.log_path.open("ab")
    proc.popen = subprocess.Popen(
        argv, cwd=checkout, env=env, stdout=log, stderr=log, start_new_session=True
    )
    return proc


def test_make_run_redis_generates_its_passwords_once_and_caps_memory(tmp_path: Path) -> None:
    checkout = tmp_path
    port = free_port()
    secrets = checkout / ".run" / "secrets"
    first = start_make_run_redis(checkout, port, "redis-1")
    try:
        wait_for(lambda: (secrets / password_file("admin")).exists(), 10, "the password files")
        passwords = {u: (secrets / password_file(u)).read_text() for u in USERS}
        wait_for(lambda: client(port, "admin", passwords["admin"]).ping(), 10, "redis-server")
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
        for user in USERS:
            assert stat.S_IMODE((secrets / password_file(user)).stat().st_mode) == 0o600
        with pytest.raises(redis.AuthenticationError):
            client(port).ping()
        admin = client(port, "admin", passwords["admin"])
        assert admin.config_get("maxmemory") == {"maxmemory": str(1024**3)}
        assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert admin.config_get("protected-mode") == {"protected-mode": "yes"}
        assert not any(p in cmdline(first.pid) for p in passwords.values())
        # `realty` in the checkout, beside `make run`, logs in with no flag.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REALTY_")}
        env["REALTY_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        keys = subprocess.run(
            [sys.executable, "-m", "shared.tools.cli", "keys", "list"],
            cwd=checkout,
            env=env | {"PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        assert keys.returncode == 0, keys.stdout + keys.stderr
    finally:
        first.stop()
    second = start_make_run_redis(checkout, port, "redis-2")
    try:
        wait_for(lambda: client(port, "admin", passwords["admin"]).ping(), 10, "the restart")
        assert {u: (secrets / password_file(u)).read_text() for u in USERS} == passwords
        assert client(port, "api", passwords["api"]).ping()
    finally:
        second.stop()
    logs = first.log_tail(1000) + second.log_tail(1000)
    assert not any(p in logs for p in passwords.values())


@pytest.mark.skipif(not COMPOSE.exists(), reason="docker-compose (dev extra) not installed")
def test_compose_redis_defines_the_same_users(tmp_path: Path, redis_stack: Stack) -> None:
    """docker-compose.yml's redis command line, run by the local redis-server: it must hold
    exactly the users of shared/wire/redis_auth.py, which `make run` and these tests use."""
    env_file = tmp_path / ".env"
    command = [sys.executable, str(REPO / "scripts" / "compose_secrets.py")]
    subprocess.run([*command, "--env-file", str(env_file)], check=True, capture_output=True)
    secrets = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    config = subprocess.run(
        [str(COMPOSE), "--env-file", str(env_file), "config", "--format", "json"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    service = json.loads(config.stdout)["services"]["redis"]
    argv = service["command"]
    assert argv[0] == "redis-server"
    port = free_port()
    argv = [redis_server_path(), *argv[1:], "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--dir", str(tmp_path), "--appendonly", "no", "--maxmemory", "64mb"]
    admin_password = service["environment"]["REDISCLI_AUTH"]
    compose_redis = Process("compose-redis", argv, dict(os.environ), tmp_path / "redis.log")
    compose_redis.start()
    try:
        wait_for(lambda: client(port, "admin", admin_password).ping(), 10, "compose's redis")
        with pytest.raises(redis.AuthenticationError, match=NOT_LOGGED_IN):
            client(port).ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client(port, "api", secrets["REDIS_PASSWORD_API"]).flushall()
        assert acl_list(port, admin_password) == acl_list(
            redis_stack.redis_port, redis_stack.redis_passwords["admin"]
        )
        if REDIS_CLI.exists():  # the healthcheck, as compose runs it
            health = service["healthcheck"]["test"][1].replace(
                "redis-cli", f"{REDIS_CLI} -p {port}"
            )
            env = os.environ | {"REDISCLI_AUTH": admin_password}
            assert subprocess.run(health, shell=True, env=env).returncode == 0
    finally:
        compose_redis.stop()


def test_flower_wants_its_login(stack: Stack, tmp_path: Path) -> None:
    """Flower as `make run` starts it (scripts/flower.py): the login generated at first start
    into the secrets directory, given to Flower through its environment."""
    port = free_port()
    secrets = tmp_path / "secrets"
    env = stack.env | stack.role_env("worker") | {"REALTY_SECRETS_DIR": str(secrets)}
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env.pop("FLOWER_BASIC_AUTH", None)
    argv = [sys.executable, "scripts/flower.py", "--address=127.0.0.1", f"--port={port}"]
    flower = Process("flower", argv, env, tmp_path / "flower.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthcheck", timeout=2).ok, 30, "Flower")
        login_file = secrets / "flower-login"
        assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
        user, _, password = login_file.read_text().partition(":")
        assert user == "realty" and len(password) >= 43
        for path in ("/api/workers", "/workers", "/"):
            assert requests.get(base + path, timeout=10).status_code == 401
        old_default = requests.get(f"{base}/api/workers", auth=("realty", "realty"), timeout=10)
        assert old_default.status_code == 401
        answer = requests.get(f"{base}/api/workers", auth=(user, password), timeout=30)
        assert answer.status_code == 200
        assert password not in cmdline(flower.pid)
    finally:
        flower.stop()
    log = flower.log_tail(1000)
    assert password not in log
    assert not any(p in log for p in stack.redis_passwords.values())


def test_no_password_reaches_a_log_or_a_command_line(stack: Stack) -> None:
    """The session's API and workers, which have logged their start (Celery's banner prints
    the broker URL, masked)."""
    for proc in [stack.api_proc, *stack.workers]:
        assert proc is not None
        log = proc.log_tail(10_000)
        assert not any(p in log for p in stack.redis_passwords.values()), proc.name
        if proc.running():
            assert not any(p in cmdline(proc.pid) for p in stack.redis_passwords.values())
    banner = "\n".join(w.log_tail(10_000) for w in stack.workers)
    assert "worker:**@127.0.0.1" in banner
