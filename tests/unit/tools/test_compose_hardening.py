"""Least-privileged containers: every compose service runs on a read-only root file system with
no Linux capability, no privilege gain and memory, CPU and process limits; both images install
their Python packages only from hashed lock files that hold the versions the rest of the project
pins (docker-compose.yml's header, docs/security.md)."""

import json
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE = REPO / ".venv" / "bin" / "docker-compose"
SERVICES = {
    "redis-volume",
    "redis",
    "postgres",
    "migrate",
    "trainer",
    "worker",
    "api",
    "flower",
    "prometheus",
}
# The only root file system paths a process may write, besides volumes: what `docker diff`
# showed after a loaded run (Celery's prefork pool makes its pymp-* directory in /tmp).
# PostgreSQL keeps its socket and lock file in /var/run/postgresql.
TMPFS = {
    "worker": ["/tmp"],
    "prometheus": ["/run/prometheus"],
    "postgres": ["/var/run/postgresql", "/tmp"],
}
# The one-shot that hands the Redis volume to the redis user, and PostgreSQL's entrypoint, which
# hands its volume to the postgres user and switches to it; no other service adds any.
CAPABILITIES_ADDED = {
    "redis-volume": {"CHOWN", "DAC_READ_SEARCH"},
    "postgres": {"CHOWN", "FOWNER", "DAC_OVERRIDE", "SETUID", "SETGID"},
}
LOCKS = {"Dockerfile.api": "requirements/api.txt", "Dockerfile.worker": "requirements/worker.txt"}
MODEL_LIBRARIES = ("scikit-learn", "lightgbm")
UNITS = {"k": 2**10, "m": 2**20, "g": 2**30}


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def defaulted(value: object) -> str:
    """`${NAME:-default}` as compose reads it when NAME is not set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def size_bytes(value: object) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", defaulted(value).lower()).groups()
    return int(number) * UNITS.get(unit, 1)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` requirement line (hash lines skipped)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", path.read_text(), re.M)
    return {normalized(name): version for name, version in found}


def lock_entries(path: Path) -> list[tuple[str, list[str]]]:
    """Each requirement of a hashed lock with the hashes that follow it."""
    entries: list[tuple[str, list[str]]] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            entries[-1][1].append(line.removeprefix("--hash=").rstrip(" \\"))
        else:
            entries.append((line.rstrip(" \\"), []))
    return entries


def pip_installs(dockerfile: str) -> list[str]:
    """Every `pip install` command of the Dockerfile's RUN instructions, continuations joined."""
    lines = (REPO / dockerfile).read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    commands = [
        part for line in text.replace("\\\n", " ").splitlines() for part in line.split("&&")
    ]
    return [" ".join(c.split()) for c in commands if re.search(r"\bpip install\b", c)]


def test_every_service_is_known_to_this_test() -> None:
    assert set(services()) == SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_runs_read_only_without_capabilities_or_privilege_gain(name: str) -> None:
    service = services()[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert set(service.get("cap_add", [])) == CAPABILITIES_ADDED.get(name, set())
    mounted = [entry.split(":")[0] for entry in service.get("tmpfs", [])]
    assert mounted == TMPFS.get(name, [])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_memory_cpu_and_process_limits(name: str) -> None:
    limits = services()[name]["deploy"]["resources"]["limits"]
    assert size_bytes(limits["memory"]) > 0
    assert float(limits["cpus"]) > 0
    assert int(limits["pids"]) > 0


def test_api_and_worker_start_make_runs_layout_from_their_own_cpu_limit() -> None:
    """No process count is fixed: unset, API_WORKERS and WORKER_CONCURRENCY reach the
    containers empty, and `python -m api` and the pool start one process per core the container
    may use (shared/cores.py), which its `cpus:` limit sets; a whole number of cores, so that no
    process is left a fraction of one. One worker replica: `make run`'s single pool (a second
    replica on 2 cores measured slower)."""
    api, worker = services()["api"], services()["worker"]
    assert defaulted(api["environment"]["UVICORN_WORKERS"]) == ""
    assert defaulted(worker["environment"]["REALTY_WORKER_CONCURRENCY"]) == ""
    lines = (REPO / "Dockerfile.api").read_text().splitlines()
    assert "--workers" not in json.loads(
        next(line for line in lines if line.startswith("CMD "))[4:]
    )
    for service in (api, worker):
        cpus = float(service["deploy"]["resources"]["limits"]["cpus"])
        assert cpus == int(cpus) >= 2
    assert worker["deploy"]["replicas"] == 1


def test_the_writable_tmpfs_is_small_and_executes_nothing() -> None:
    for name in TMPFS:
        for entry in services()[name]["tmpfs"]:
            options = entry.split(":", 1)[1].split(",")
            assert {"noexec", "nosuid", "nodev"} <= set(options), entry
            assert size_bytes(next(o for o in options if o.startswith("size="))[5:]) <= 64 * 2**20


def test_redis_runs_as_its_own_user_after_a_capped_one_shot_hands_it_the_volume() -> None:
    redis, volume = services()["redis"], services()["redis-volume"]
    assert redis["user"] == "redis"
    assert redis["depends_on"]["redis-volume"]["condition"] == "service_completed_successfully"
    assert volume["network_mode"] == "none"
    assert volume["restart"] == "no"
    assert volume["volumes"] == ["redis-data:/data"] == redis["volumes"]
    assert volume["command"][:4] == ["find", "/data", "!", "-user"]


def test_redis_memory_limit_leaves_room_above_its_data_cap() -> None:
    """The kernel must never kill Redis before Redis refuses writes at maxmemory."""
    redis = services()["redis"]
    maxmemory = redis["command"][redis["command"].index("--maxmemory") + 1]
    limit = redis["deploy"]["resources"]["limits"]["memory"]
    assert size_bytes(limit) >= 1.25 * size_bytes(maxmemory)


@pytest.mark.skipif(not COMPOSE.exists(), reason="docker-compose (dev extra) not installed")
def test_compose_itself_reads_the_limits_of_every_service(tmp_path: Path) -> None:
    """Compose v2 applies `deploy.resources.limits` without swarm; its own reading of the file
    must hold them, in bytes, for every service."""
    env_file = tmp_path / ".env"
    script = REPO / "scripts" / "compose_secrets.py"
    subprocess.run([sys.executable, str(script), "--env-file", str(env_file)], check=True)
    command = [str(COMPOSE), "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    config = subprocess.run(
        [*command, "config", "--format", "json"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    read = json.loads(config.stdout)["services"]
    assert set(read) == SERVICES
    for name, service in read.items():
        limits = service["deploy"]["resources"]["limits"]
        assert int(limits["memory"]) == size_bytes(
            services()[name]["deploy"]["resources"]["limits"]["memory"]
        )
        assert limits["cpus"] > 0 and limits["pids"] > 0
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


@pytest.mark.parametrize("dockerfile", sorted(LOCKS))
def test_images_install_only_hash_checked_wheels_from_their_lock(dockerfile: str) -> None:
    lock = LOCKS[dockerfile]
    installs = pip_installs(dockerfile)
    assert len(installs) == 2, installs  # the locked dependencies, then the project itself
    dependencies, own = installs
    assert f"-r {lock}" in dependencies
    for flag in ("--require-hashes", "--only-binary=:all:", "--no-deps"):
        assert flag in dependencies.split()
    # The project's own source, built offline by the locked setuptools: nothing else comes in.
    assert own.endswith(" .")
    for flag in ("--no-deps", "--no-build-isolation", "--no-index"):
        assert flag in own.split()
    assert f"COPY {lock} " in (REPO / dockerfile).read_text()


@pytest.mark.parametrize("lock", sorted(LOCKS.values()))
def test_every_locked_package_is_pinned_with_sha256_hashes(lock: str) -> None:
    entries = lock_entries(REPO / lock)
    assert entries
    for requirement, hashes in entries:
        assert re.match(r"[A-Za-z0-9._-]+==[^=\s;]+( ;|$)", requirement), requirement
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), requirement


def test_the_locks_hold_the_versions_pinned_everywhere_else() -> None:
    """One scikit-learn and one LightGBM for the trainer, the workers and `make run`: the image
    locks agree with constraints.txt and with pyproject.toml's exact pins, so a bundle trained
    anywhere loads everywhere, and a pin changed without `make lock` fails here."""
    constraints = pins(REPO / "constraints.txt")
    api, worker = pins(REPO / LOCKS["Dockerfile.api"]), pins(REPO / LOCKS["Dockerfile.worker"])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for library in MODEL_LIBRARIES:
        assert worker[library] == constraints[library]
        assert library not in api  # the API imports no model library
    for name, version in api.items():
        assert worker[name] == version, name  # the API's packages are the worker's
    for name, version in worker.items():
        assert constraints.get(name, version) == version, name  # the build backend is not in it
    declared = [*project["dependencies"], *project["optional-dependencies"]["worker"]]
    for requirement in declared:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==(.+)", requirement).groups()
        assert worker[normalized(name)] == version, requirement
        if requirement in project["dependencies"]:
            assert api[normalized(name)] == version, requirement


def test_the_build_backend_the_project_asks_for_is_locked() -> None:
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    assert build == ["setuptools>=69"]
    for lock in LOCKS.values():
        version = pins(REPO / lock)["setuptools"]
        assert tuple(int(part) for part in version.split(".")[:2]) >= (69, 0)


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context: a pattern matches the path
    or a folder above it, the last matching pattern wins, `!` lets a path back in (fnmatch's `*`
    also crosses `/`, so this errs towards "ignored")."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        glob = pattern.removeprefix("!").strip("/").removeprefix("**/")
        if any(fnmatch(prefix, glob) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_locks_reach_the_build_context() -> None:
    assert dockerignored("data/kc_house_data.csv")  # the matcher works
    for lock in LOCKS.values():
        assert not dockerignored(lock)
