"""`make secrets` and the compose file: secrets generated once into a private, git-ignored
.env, no default that could log in, and each service given only its own secrets."""

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "compose_secrets.py"
COMPOSE = REPO / ".venv" / "bin" / "docker-compose"
SECRET_NAMES = [
    "REDIS_PASSWORD_API",
    "REDIS_PASSWORD_WORKER",
    "REDIS_PASSWORD_ADMIN",
    "POSTGRES_PASSWORD",
    "POSTGRES_PASSWORD_API",
    "POSTGRES_PASSWORD_WORKER",
    "FLOWER_BASIC_AUTH",
    "REALTY_BUNDLE_SIGNING_KEY",
    "REALTY_ADMIN_KEY",
    "REALTY_METRICS_TOKEN",
]


def make_secrets(env_file: Path) -> str:
    command = [sys.executable, str(SCRIPT), "--env-file", str(env_file)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def read_env(env_file: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def test_generates_the_missing_secrets_once_privately(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=8100\nFLOWER_BASIC_AUTH=ops:chosen-by-hand")
    out = make_secrets(env_file)
    values = read_env(env_file)
    assert values["API_PORT"] == "8100"
    assert values["FLOWER_BASIC_AUTH"] == "ops:chosen-by-hand"
    assert sorted(values) == sorted([*SECRET_NAMES, "API_PORT"])
    assert all(len(values[name]) >= 43 for name in SECRET_NAMES if name != "FLOWER_BASIC_AUTH")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert not any(values[name] in out for name in SECRET_NAMES)  # names only, never values
    before = env_file.read_text()
    assert make_secrets(env_file).endswith(": ok\n")
    assert env_file.read_text() == before


def test_a_fresh_login_is_random(tmp_path: Path) -> None:
    make_secrets(tmp_path / "a.env")
    make_secrets(tmp_path / "b.env")
    a, b = read_env(tmp_path / "a.env"), read_env(tmp_path / "b.env")
    assert a["FLOWER_BASIC_AUTH"].startswith("realty:")
    assert all(a[name] != b[name] for name in SECRET_NAMES)


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    command = [str(COMPOSE), "-f", str(REPO / "docker-compose.yml"), "--env-file", str(env_file)]
    return subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, cwd=REPO
    )


@pytest.mark.skipif(not COMPOSE.exists(), reason="docker-compose (dev extra) not installed")
def test_compose_needs_the_secrets_and_gives_each_service_its_own(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = compose_config(empty)
    assert refused.returncode != 0 and "run make secrets" in refused.stderr

    env_file = tmp_path / ".env"
    make_secrets(env_file)
    secrets = read_env(env_file)
    done = compose_config(env_file)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    expected = {
        "redis": {"REDISCLI_AUTH": "REDIS_PASSWORD_ADMIN"},
        "trainer": {
            "REALTY_REDIS_PASSWORD": "REDIS_PASSWORD_ADMIN",
            "REALTY_BUNDLE_SIGNING_KEY": "REALTY_BUNDLE_SIGNING_KEY",
        },
        "postgres": {"POSTGRES_PASSWORD": "POSTGRES_PASSWORD", "PGPASSWORD": "POSTGRES_PASSWORD"},
        "migrate": {
            "REALTY_DATABASE_PASSWORD": "POSTGRES_PASSWORD",
            "REALTY_DATABASE_API_PASSWORD": "POSTGRES_PASSWORD_API",
            "REALTY_DATABASE_WORKER_PASSWORD": "POSTGRES_PASSWORD_WORKER",
        },
        "worker": {
            "REALTY_REDIS_PASSWORD": "REDIS_PASSWORD_WORKER",
            "REALTY_DATABASE_PASSWORD": "POSTGRES_PASSWORD_WORKER",
            "REALTY_BUNDLE_SIGNING_KEY": "REALTY_BUNDLE_SIGNING_KEY",
            "REALTY_METRICS_TOKEN": "REALTY_METRICS_TOKEN",
        },
        "api": {
            "REALTY_REDIS_PASSWORD": "REDIS_PASSWORD_API",
            "REALTY_DATABASE_PASSWORD": "POSTGRES_PASSWORD_API",
            "REALTY_ADMIN_KEY": "REALTY_ADMIN_KEY",
            "REALTY_METRICS_TOKEN": "REALTY_METRICS_TOKEN",
        },
        "flower": {
            "REALTY_REDIS_PASSWORD": "REDIS_PASSWORD_WORKER",
            "FLOWER_BASIC_AUTH": "FLOWER_BASIC_AUTH",
        },
        "prometheus": {"REALTY_METRICS_TOKEN": "REALTY_METRICS_TOKEN"},
    }
    users = {"trainer": "admin", "worker": "worker", "api": "api", "flower": "worker"}
    for service, wanted in expected.items():
        env = services[service]["environment"]
        held = {k: v for k, v in env.items() if v in secrets.values()}
        assert held == {k: secrets[name] for k, name in wanted.items()}, service
        if service in users:
            assert env["REALTY_REDIS_USER"] == users[service]
            assert "@" not in env["REALTY_REDIS_URL"]
    command = services["redis"]["command"]
    for name in ("REDIS_PASSWORD_API", "REDIS_PASSWORD_WORKER", "REDIS_PASSWORD_ADMIN"):
        assert f">{secrets[name]}" in command
    assert command[command.index("--protected-mode") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_secret_files_are_git_ignored() -> None:
    paths = [".env", ".run/secrets/redis-admin-password", ".run/secrets/flower-login"]
    check = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True)
    if check.returncode == 128:
        pytest.skip("not a git checkout")
    assert check.stdout.decode().split() == paths
