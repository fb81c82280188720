"""`make secrets` (and `make setup`): generate the secrets docker-compose.yml requires into
`.env`, each only where it is missing.

Why `.env` rather than a volume filled by a one-shot service: compose reads `.env` by itself to
fill in redis-server's users and each service's environment, so every container receives its
own secrets and no others (the API never sees the bundle signing key or another role's Redis
password), with no extra service to order the start around; the operator reads and rotates
them in one file. `.env` is git-ignored and kept mode 0600. Lines already there (a changed
port, a secret set by hand) are kept as they are, so running this again never changes a
password that a running stack uses. `make run` does not read `.env` (its processes keep their
secrets in `.run/secrets`).
"""

import argparse
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from shared.wire.api_keys import new_key


def _token() -> str:
    return secrets.token_urlsafe(32)


# Each variable docker-compose.yml requires (`${NAME:?…}`), and how a new value is made.
SECRETS: dict[str, Callable[[], str]] = {
    "REDIS_PASSWORD_API": _token,
    "REDIS_PASSWORD_WORKER": _token,
    "REDIS_PASSWORD_ADMIN": _token,
    "POSTGRES_PASSWORD": _token,  # the record's owner, realty (migrate, the postgres image)
    "POSTGRES_PASSWORD_API": _token,
    "POSTGRES_PASSWORD_WORKER": _token,
    "FLOWER_BASIC_AUTH": lambda: f"realty:{_token()}",
    "REALTY_BUNDLE_SIGNING_KEY": _token,
    "REALTY_ADMIN_KEY": new_key,
    "REALTY_METRICS_TOKEN": _token,
}
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def add_missing(env_file: Path) -> list[str]:
    """Append the secrets `env_file` lacks (creating it), make it mode 0600; the names added."""
    text = env_file.read_text() if env_file.exists() else ""
    present = {m.group(1) for m in map(_ASSIGNMENT.match, text.splitlines()) if m}
    missing = [name for name in SECRETS if name not in present]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(f"{name}={SECRETS[name]()}\n" for name in missing)
        # mkstemp creates the file 0600: never readable by others, not even for an instant;
        # replaced in one step, so an interrupted run leaves the old file whole.
        handle, staging = tempfile.mkstemp(dir=env_file.parent, prefix=f".{env_file.name}-")
        try:
            os.write(handle, text.encode())
        finally:
            os.close(handle)
        os.replace(staging, env_file)
    env_file.chmod(0o600)
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    args = parser.parse_args()
    added = add_missing(args.env_file)
    # Names only: a secret's value is never printed.
    print(f"{args.env_file}: generated {', '.join(added)}" if added else f"{args.env_file}: ok")


if __name__ == "__main__":
    main()
