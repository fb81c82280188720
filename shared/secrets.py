"""Secrets generated at first start: one small file each, readable by their owner only.

No secret is fixed anywhere in the project. A secret not given in the environment is read from
`Settings.secrets_dir` (`.run/secrets` under `make run`, a volume under compose), and created
there by the process that first needs it. Values are never logged.
"""

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path


def _random() -> str:
    return secrets.token_urlsafe(32)


def read_or_create(
    directory: Path, name: str, *, create: bool, make: Callable[[], str] = _random
) -> str | None:
    """The secret `name` from `directory`; when missing, a new one from `make` if `create`
    (written atomically, mode 0600 in a 0700 directory), else None."""
    path = directory / name
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = make()
    handle, staging = tempfile.mkstemp(dir=directory, prefix=f".{name}-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, value.encode())
    finally:
        os.close(handle)
    try:
        # link() refuses an existing target: a concurrent first start that won keeps its value.
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(staging)
    return path.read_text().strip()
