"""Start PostgreSQL in the foreground from the binaries of the `pgserver` wheel (no root, no
system package). Used by `make run` (Procfile) and the integration tests; it exec()s, so the
PID is the postmaster's own and honcho's signals reach it directly.

On the first start it makes the cluster in `--dir` (initdb into a staging directory, then the
`realty` database, then one rename, so a start interrupted half-way begins again): the
superuser `realty` (the owner: `realty db upgrade` creates the service roles and the schema)
with the password of `.run/secrets/postgres-realty-password` (REALTY_DATABASE_PASSWORD if set),
generated there when missing, SCRAM-SHA-256 logins only. It then listens on 127.0.0.1 only,
with no Unix socket, so nothing reaches it without the password.

postgres refuses to run as root. Started by root (a container, this lab), it runs as the
system user `pgserver` instead, made if missing, exactly as the pgserver package itself does
(`useradd`, the data directory given to that user, its parent directories made traversable).
"""

import argparse
import importlib.util
import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

from shared.records.database import OWNER, password
from shared.settings import Settings

# Found without importing pgserver, whose import sets up its own server machinery.
_PACKAGE = importlib.util.find_spec("pgserver")
assert _PACKAGE is not None and _PACKAGE.origin is not None, "the pgserver wheel is not installed"
BIN = Path(_PACKAGE.origin).parent / "pginstall" / "bin"
DATABASE = "realty"
SYSTEM_USER = "pgserver"  # the one pgserver itself runs as under root


def _system_user() -> pwd.struct_passwd | None:
    """Who postgres runs as: None for this user, the `pgserver` user when this is root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():  # its import warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_folder_permissions, ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    _traversable(BIN)
    ensure_folder_permissions(BIN, 0o055)  # group and others may read and run the binaries
    ensure_folder_permissions(BIN.parent / "lib", 0o044)
    return entry


def _traversable(path: Path) -> None:
    """Let the `pgserver` user reach `path` (pgserver's own way: o+rx on every parent)."""
    from pgserver.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)


def _as(user: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess.run's arguments that run a command as `user`."""
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _private_dir(path: Path, user: pwd.struct_passwd | None) -> Path:
    path.mkdir(mode=0o700)
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _private_file(path: Path, text: str, user: pwd.struct_passwd | None) -> Path:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(handle, text.encode())
        if user is not None:
            os.fchown(handle, user.pw_uid, user.pw_gid)
    finally:
        os.close(handle)
    return path


def initialise(data_dir: Path, owner_password: str, user: pwd.struct_passwd | None) -> None:
    """A new cluster in `data_dir`, with the owner and the `realty` database."""
    staging = data_dir.with_name(f".{data_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    _private_dir(staging, user)
    if user is not None:
        _traversable(staging)
    cluster = staging / "data"
    pwfile = _private_file(staging / "owner-password", owner_password, user)
    subprocess.run(
        [
            BIN / "initdb",
            f"--pgdata={cluster}",
            f"--username={OWNER}",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **_as(user),
    )
    # Single-user mode: the database is made before any server listens, by the OS user alone.
    subprocess.run(
        [BIN / "postgres", "--single", "-D", cluster, "postgres"],
        input=f"CREATE DATABASE {DATABASE} OWNER {OWNER};\n",
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
        **_as(user),
    )
    cluster.rename(data_dir)
    shutil.rmtree(staging)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="The cluster's data directory.")
    args, extra = parser.parse_known_args()
    data_dir = args.dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    if not (data_dir / "PG_VERSION").exists():
        # As the operator's `realty` reads it: REALTY_DATABASE_PASSWORD, else the owner's file.
        initialise(data_dir, password(Settings(redis_user="admin"), OWNER), user)
    postgres = str(BIN / "postgres")
    argv = [postgres, "-D", str(data_dir), "-p", str(args.port)]
    argv += ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
    argv += ["-c", "password_encryption=scram-sha-256", *extra]
    if user is not None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    os.execv(postgres, argv)


if __name__ == "__main__":
    main()
