"""Start Flower for `make run`, never without a login: FLOWER_BASIC_AUTH from the environment,
else `Settings.secrets_dir/flower-login` (`realty:<random>`, generated on the first start).

Flower reads the login from its environment, not from its command line, where `ps` would show
it. It exec()s, so the PID is Flower's own and honcho's signals reach it directly; the
arguments are Flower's (`--address`, `--port`).
"""

import os
import secrets
import sys

from shared.secrets import read_or_create
from shared.settings import Settings

LOGIN_FILE = "flower-login"


def _new_login() -> str:
    return f"realty:{secrets.token_urlsafe(32)}"


if __name__ == "__main__":
    login = os.environ.get("FLOWER_BASIC_AUTH") or read_or_create(
        Settings().secrets_dir, LOGIN_FILE, create=True, make=_new_login
    )
    assert login is not None  # create=True always yields one
    argv = ["celery", "-A", "worker.app:celery_app", "flower", *sys.argv[1:]]
    os.execvpe(argv[0], argv, os.environ | {"FLOWER_BASIC_AUTH": login})
