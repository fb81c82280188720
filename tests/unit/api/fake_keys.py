"""One API key of each role for the in-process API tests, and the header that presents it."""

from api.auth import Caller
from shared.wire.api_keys import Role

# One key of each role; the client sends the batch key unless a test says otherwise.
KEYS = {
    f"rk_{i:016x}_{'k' * 43}": Caller(f"{i:016x}", f"{role.label}-key", role, 20.0, 40)
    for i, role in enumerate(Role, start=1)
}
KEY_OF = {caller.role: key for key, caller in KEYS.items()}


def bearer(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY_OF[role]}"}
