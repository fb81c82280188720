"""The version registry in Redis: which versions workers serve, which one is active, which one
`realty rollback` returns to. The active pointer moves only through `swap_active`, for the API's
activate route and for `realty rollout` alike."""

from collections.abc import Awaitable
from typing import Any

from shared.wire import names

# One atomic step: set the active version, remember the one it replaced for `realty rollback`.
_SWAP_ACTIVE = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if previous and previous ~= ARGV[1] then redis.call('SET', KEYS[2], previous) end
return previous
"""


def swap_active(client: Any, version: str) -> str | Awaitable[str | None] | None:
    """Make `version` active; the version it replaced (awaitable with an asyncio client).
    Callers check first that a warm worker serves `version` (`shared.wire.liveness`)."""
    script = client.register_script(_SWAP_ACTIVE)
    return script(keys=[names.ACTIVE_VERSION, names.PREVIOUS_VERSION], args=[version])
