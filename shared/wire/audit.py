"""The audit trail of admin actions: activations, rollouts, rollbacks, drains, key creation and
revocation. Each is one JSON line in the log (logger `realty.audit`) and one entry of a Redis
list that `realty audit` prints; the actor is a key's name or the operator's login, never a key.
"""

import json
import logging
import time
from typing import Any

from pydantic import BaseModel, Field

from shared.wire import names

log = logging.getLogger("realty.audit")
KEEP = 10_000  # newest entries kept in Redis; the log keeps them all


class AuditEntry(BaseModel):
    at: float = Field(default_factory=time.time)
    actor: str = Field(description="A key's name, or `cli:<login>` for the realty command.")
    action: str
    target: str
    details: dict[str, Any] = Field(default_factory=dict)


def record(client: Any, entry: AuditEntry) -> Any:
    """Log `entry` and append it to Redis in one round trip; with an asyncio client the result
    is awaitable."""
    line = entry.model_dump_json()
    log.info(line)
    pipe = client.pipeline(transaction=False)
    pipe.lpush(names.AUDIT, line)
    pipe.ltrim(names.AUDIT, 0, KEEP - 1)
    return pipe.execute()


def entries(client: Any, count: int) -> list[AuditEntry]:
    """The newest `count` entries, newest first (a sync client)."""
    return [
        AuditEntry.model_validate(json.loads(raw))
        for raw in client.lrange(names.AUDIT, 0, count - 1)
    ]
