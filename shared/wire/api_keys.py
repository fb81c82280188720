"""API keys, as the API checks them and `realty keys` manages them: stored in Redis only as a
digest, beside the rest of the service's state.

A key reads `rk_<id>_<secret>`. The id finds the record with one lookup; the secret's SHA-256
is compared with the stored digest in constant time. A secret of 32 random bytes needs no slow
password hash: it cannot be guessed, and the digest alone never lets anyone call the service.
"""

import hashlib
import hmac
import re
import secrets
import time
from enum import IntEnum

import redis
from pydantic import BaseModel, Field

from shared.wire import names

ADMIN_KEY_NAME = "admin"  # the first admin key, registered by the API at start
KEY_RE = re.compile(r"^rk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class InvalidKeyError(ValueError):
    """A key name or role that cannot be used; the message says why."""


class Role(IntEnum):
    """Each role may do what the ones below it may."""

    AGENT = 1  # predict, read its own batch jobs, list models
    BATCH = 2  # also submit batch jobs
    ADMIN = 3  # also activate versions, pin inactive ones, read /metrics, any job

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, label: str) -> "Role":
        try:
            return cls[label.upper()]
        except KeyError:
            raise InvalidKeyError(f"unknown role {label!r}: agent, batch or admin") from None


class KeyRecord(BaseModel):
    key_id: str
    name: str = Field(description="Who holds the key; shown in logs and the audit list.")
    role: str
    digest: str = Field(description="SHA-256 of the key's secret part, hex.")
    created_at: float
    rate_per_s: float | None = Field(
        None, ge=0, description="Requests per second (0: unlimited); None: the setting."
    )

    @property
    def level(self) -> Role:
        return Role.named(self.role)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = KEY_RE.match(key)
    return (match.group(1), match.group(2)) if match else None


def matches(record: KeyRecord, secret: str) -> bool:
    return hmac.compare_digest(_digest(secret), record.digest)


def new_key() -> str:
    return f"rk_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def record_of(key: str, name: str, role: Role, rate_per_s: float | None = None) -> KeyRecord:
    """The record that stores `key` (its digest) under `name`."""
    if not NAME_RE.match(name):
        raise InvalidKeyError(
            f"key name {name!r}: lower-case letters, digits, '.', '_' or '-', at most 64"
        )
    parsed = parse(key)
    if parsed is None:
        raise InvalidKeyError("not a key of this service (rk_<id>_<secret>)")
    key_id, secret = parsed
    return KeyRecord(
        key_id=key_id,
        name=name,
        role=role.label,
        digest=_digest(secret),
        created_at=time.time(),
        rate_per_s=rate_per_s,
    )


class KeyRegistry:
    """Keys in Redis, for `realty keys` and the API's start (a sync client)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def records(self) -> list[KeyRecord]:
        raw = self.redis.hvals(names.API_KEYS)
        return sorted((KeyRecord.model_validate_json(r) for r in raw), key=lambda r: r.created_at)

    def create(self, name: str, role: Role, rate_per_s: float | None = None) -> str:
        """A new key for `name` (shown once, never stored)."""
        if any(r.name == name for r in self.records()):
            raise InvalidKeyError(
                f"a key named {name!r} exists: revoke it first, or pick another name"
            )
        key = new_key()
        self.add(record_of(key, name, role, rate_per_s))
        return key

    def add(self, record: KeyRecord) -> bool:
        """Store `record` unless its key is stored already; whether it was added."""
        return bool(self.redis.hsetnx(names.API_KEYS, record.key_id, record.model_dump_json()))

    def revoke(self, name: str) -> list[KeyRecord]:
        """Every key named `name` (an old admin key and its successor may share the name)."""
        revoked = [record for record in self.records() if record.name == name]
        if not revoked:
            raise InvalidKeyError(f"no key named {name!r}")
        self.redis.hdel(names.API_KEYS, *(record.key_id for record in revoked))
        return revoked
