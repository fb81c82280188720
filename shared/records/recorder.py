"""The recorder: writes the Redis buffer of estimates (`names.RECORDS`) into PostgreSQL.

One runs beside each worker pool (worker/recording.py), so every host has one; the Redis lock
`names.RECORDER_LOCK` lets one write at a time. A step, while it holds the lock:

1. read items from the buffer's head (LRANGE: they stay in Redis), up to `records_write_rows`
   rows (at least one item), each checked only to be a JSON array of objects, which counts its
   rows (an item that is not is taken out with a log line);
2. insert them all in one statement, their JSON as the workers wrote it (worker/records.py:
   only their scripts write the buffer), skipping request ids already on record. PostgreSQL
   reads that JSON once: validating it and writing it again here were most of the recorder's
   CPU (docs/operations.md, What recording costs). Only when PostgreSQL refuses the statement
   are the items validated as `RECORD_BATCH`: an item that fails is taken out, a record
   PostgreSQL still refuses is dropped, each with a log line;
3. only then remove them (LTRIM) and lower the row count (DECRBY), in one script that first
   checks the lock is still this recorder's.

A crash between 2 and 3 leaves the items in Redis, and the next write skips what is already
there: nothing lost, nothing twice. A recorder whose lock lapsed mid-write (a stalled
database) trims nothing, since another may have taken over the same items. While PostgreSQL
is down, the items wait in Redis (bounded by the workers, `records_buffer_rows`), the recorder
lets go of the lock (a recorder on another host may reach the database) and tries again after
a pause that doubles up to `records_retry_max_s`.

After each step the lock holder publishes its state (`names.RECORDER_STATE`: last write, last
error in plain words, rows waiting and the oldest's age), from which the API's readiness says
"degraded: recording delayed". It also deletes estimates past retention, every
`records_purge_interval_s`.
"""

import contextlib
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import redis
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from shared.records.database import failure_words, sync_engine
from shared.records.queries import INSERT_RECORDS
from shared.records.retention import purge_expired
from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import RECORD_BATCH, EstimateRecord, RecorderState
from shared.wire.redis_client import sync_client

log = logging.getLogger(__name__)

READ_PAGE = 16  # most buffer items read per LRANGE
IDLE_CHECK_S = 5.0  # an idle recorder checks PostgreSQL this often, so readiness knows
LOCK_TTL_S = 30.0  # past any one step: a write is bounded by database_timeout_s

# Acquire the lock, or extend it if this recorder holds it. KEYS: lock; ARGV: token, ttl ms.
HOLD_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Remove the items written and their rows, if the lock is still this recorder's.
# KEYS: lock, records, rows; ARGV: token, items, rows.
TRIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[2], ARGV[2], -1)
redis.call('DECRBY', KEYS[3], ARGV[3])
return 1
"""


class _Object(BaseModel):
    """Any JSON object: what an item holds, checked without reading its fields."""

    model_config = ConfigDict(extra="ignore")


_ITEM_SHAPE: TypeAdapter[list[_Object]] = TypeAdapter(list[_Object])


class _Made(BaseModel):
    """When a record's estimate was made; its other fields are not read."""

    model_config = ConfigDict(extra="ignore")

    at_ms: int


_MADE: TypeAdapter[list[_Made]] = TypeAdapter(list[_Made])


@dataclass
class Taken:
    """Items from the buffer's head: how many, the rows their producers counted, and the
    well-formed ones as read (a malformed item is taken too, to be removed, with a log line)."""

    items: int = 0
    rows: int = 0
    raw: list[str] = field(default_factory=list)
    full: bool = False  # stopped at `records_write_rows`: more wait behind

    @property
    def records(self) -> list[EstimateRecord]:
        """The well-formed items' records, validated: needed only when PostgreSQL refused
        them as they are (an item that fails validation is left out, with a log line)."""
        records: list[EstimateRecord] = []
        for raw in self.raw:
            parsed, rows = parse_item(raw)
            if parsed is None:
                log.error("dropping an invalid item of the record's buffer (%d rows)", rows)
            else:
                records.extend(parsed)
        return records


def rows_of(raw: str) -> int | None:
    """The rows of a well-formed item (a JSON array of objects); None when malformed."""
    try:
        return len(_ITEM_SHAPE.validate_json(raw))
    except ValidationError:
        return None


def joined(items: list[str]) -> str:
    """Well-formed items (JSON arrays) as one JSON array, their text untouched."""
    inner = (body for body in (item.strip()[1:-1] for item in items) if body.strip())
    return f"[{','.join(inner)}]"


def parse_item(raw: str) -> tuple[list[EstimateRecord] | None, int]:
    """An item's records (None when malformed) and the rows its producer counted for it."""
    try:
        records = RECORD_BATCH.validate_json(raw)
    except ValidationError:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None, 0
        return None, len(parsed) if isinstance(parsed, list) else 0
    return records, len(records)


def take(items: list[str], taken: Taken, max_rows: int) -> None:
    """Add `items` (the next ones in the buffer) to `taken` while it stays within `max_rows`
    rows (the first item always); `taken.full` once no more fit."""
    for raw in items:
        rows = rows_of(raw)
        malformed = rows is None
        if malformed:
            _, rows = parse_item(raw)
        if taken.items and taken.rows + rows > max_rows:
            taken.full = True
            return
        taken.items += 1
        taken.rows += rows
        if malformed:
            log.error("dropping a malformed item of the record's buffer (%d rows)", rows)
        else:
            taken.raw.append(raw)
    taken.full = taken.rows >= max_rows


def next_page(taken: Taken, max_rows: int) -> int:
    """How many items to read next: those the rows still wanted take at the rows per item so
    far, up to READ_PAGE. A backlog of 1,000-row batch items is read 5 at a time, not 16 of
    which 11 (0.6 MB each) are read again by the next write; small items still come 16 at once."""
    per_item = max(taken.rows / taken.items, 1.0)
    return max(1, min(READ_PAGE, math.ceil((max_rows - taken.rows) / per_item)))


def oldest_at_ms(raw: str | None) -> int | None:
    """When the oldest estimate of the buffer's head item was made (items are in order)."""
    if raw is None:
        return None
    try:
        return min(record.at_ms for record in _MADE.validate_json(raw))
    except ValueError:  # not an item (a ValidationError is one), or an empty one
        return None


class Recorder:
    def __init__(
        self, settings: Settings, client: redis.Redis, engine: Engine, name: str | None = None
    ) -> None:
        self.settings = settings
        self.redis = client
        self.engine = engine
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.token = f"{self.name}:{secrets.token_hex(8)}"  # unique even for a reused name
        self.hold_lock = client.register_script(HOLD_LOCK)
        self.release_lock = client.register_script(RELEASE_LOCK)
        self.trim = client.register_script(TRIM)
        self.pause_s = settings.records_poll_s
        self.written_ms: int | None = None
        self.checked = 0.0  # monotonic time PostgreSQL last answered
        self.next_purge = 0.0  # monotonic time of the next retention purge

    @classmethod
    def of(cls, settings: Settings) -> "Recorder":
        return cls(settings, sync_client(settings), sync_engine(settings, "realty-recorder"))

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set; never raises (the thread must outlive any fault)."""
        while not stop.is_set():
            try:
                pause = self.step()
            except Exception:
                log.exception("recorder step failed")
                pause = self.settings.records_retry_max_s
            stop.wait(pause)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            self.release_lock(keys=[names.RECORDER_LOCK], args=[self.token])
        self.engine.dispose()

    def step(self) -> float:
        """One write (or one check of PostgreSQL when idle); the seconds until the next."""
        try:
            if not self.hold_lock(keys=[names.RECORDER_LOCK], args=[self.token, _ms(LOCK_TTL_S)]):
                return self.settings.records_poll_s  # another recorder writes
            taken = self.read()
            if taken.items:
                self.write(taken)
            elif time.monotonic() - self.checked > IDLE_CHECK_S:
                with self.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                self.checked = time.monotonic()
            if time.monotonic() >= self.next_purge:
                self.purge()
        except SQLAlchemyError as exc:
            return self.failed(exc)
        except redis.RedisError as exc:
            log.warning("recorder: Redis: %s", exc)
            return self.pause()
        self.pause_s = self.settings.records_poll_s
        self.publish(None)
        # A backlog is written back to back; otherwise a pause gathers the next write.
        return 0.0 if taken.full else self.settings.records_poll_s

    def read(self) -> Taken:
        """The items of the next write, read a page at a time from the first item on."""
        taken, page = Taken(), 1
        while True:
            start = taken.items
            items = self.redis.lrange(names.RECORDS, start, start + page - 1)
            take(items, taken, self.settings.records_write_rows)
            if taken.full or len(items) < page:
                return taken
            page = next_page(taken, self.settings.records_write_rows)

    def write(self, taken: Taken) -> None:
        with self.engine.begin() as connection:
            written = self.insert(connection, taken)
        self.checked = time.monotonic()
        self.written_ms = self.redis_ms()
        trimmed = self.trim(
            keys=[names.RECORDER_LOCK, names.RECORDS, names.RECORDS_ROWS],
            args=[self.token, taken.items, taken.rows],
        )
        if not trimmed:
            log.warning("recorder: lost the lock while writing; the next holder trims")
        log.debug("recorded %d buffered estimates (%d new)", taken.rows, written)

    def insert(self, connection: Connection, taken: Taken) -> int:
        """Insert the taken items in one statement, as the workers wrote them. One PostgreSQL
        refuses (not JSON it can read, a value it cannot store) would be refused at every
        retry: then the items are validated and written record by record if need be."""
        if not taken.raw:
            return 0
        try:
            with connection.begin_nested():
                return connection.scalar(INSERT_RECORDS, {"records": joined(taken.raw)})
        except (DataError, IntegrityError) as exc:
            log.warning(
                "recorder: PostgreSQL refused a write of %d buffer items (%s); validating them",
                len(taken.raw),
                failure_words(exc),
            )
        return self.insert_records(connection, taken.records)

    def insert_records(self, connection: Connection, records: list[EstimateRecord]) -> int:
        """Insert `records` in one statement. A record PostgreSQL refuses (a value it cannot
        store) would refuse the whole statement at every retry: then each record is tried alone
        in its own savepoint, and the refused ones are dropped, each with a log line."""
        if not records:
            return 0
        try:
            with connection.begin_nested():
                return connection.scalar(
                    INSERT_RECORDS, {"records": RECORD_BATCH.dump_json(records).decode()}
                )
        except (DataError, IntegrityError):
            written = 0
            for record in records:
                try:
                    with connection.begin_nested():
                        written += connection.scalar(
                            INSERT_RECORDS, {"records": RECORD_BATCH.dump_json([record]).decode()}
                        )
                except (DataError, IntegrityError) as exc:
                    log.error(
                        "dropping estimate %s: PostgreSQL refused it: %s",
                        record.request_id,
                        failure_words(exc),
                    )
            return written

    def purge(self) -> None:
        deleted = purge_expired(
            self.engine,
            self.settings.records_retention_days,
            self.settings.records_purge_batch_rows,
            keep_going=self.still_holding,
        )
        self.next_purge = time.monotonic() + self.settings.records_purge_interval_s
        if deleted:
            log.info(
                "deleted %d estimates older than %d days",
                deleted,
                self.settings.records_retention_days,
            )

    def still_holding(self) -> bool:
        return bool(self.hold_lock(keys=[names.RECORDER_LOCK], args=[self.token, _ms(LOCK_TTL_S)]))

    def failed(self, exc: SQLAlchemyError) -> float:
        """Keep the items, let another recorder try, publish why, and pause (doubling)."""
        words = failure_words(exc)
        log.warning("recorder: %s (%s); estimates wait in Redis", words, type(exc).__name__)
        try:
            self.release_lock(keys=[names.RECORDER_LOCK], args=[self.token])
            self.publish(words)
        except redis.RedisError as redis_exc:
            log.warning("recorder: Redis: %s", redis_exc)
        return self.pause()

    def pause(self) -> float:
        """The next pause after a failure: twice the last, up to `records_retry_max_s`."""
        self.pause_s = min(self.pause_s * 2, self.settings.records_retry_max_s)
        return self.pause_s

    def redis_ms(self) -> int:
        seconds, micros = self.redis.time()
        return seconds * 1000 + micros // 1000

    def publish(self, error: str | None) -> None:
        """The state readiness reads; it expires, so a recorder gone silent says nothing."""
        now = self.redis_ms()
        pipe = self.redis.pipeline(transaction=False)
        rows, head = pipe.get(names.RECORDS_ROWS).lindex(names.RECORDS, 0).execute()
        oldest = oldest_at_ms(head)
        state = RecorderState(
            recorder=self.name,
            at_ms=now,
            written_ms=self.written_ms,
            error=error,
            backlog_rows=int(rows or 0),
            backlog_age_s=0.0 if oldest is None else max(0.0, (now - oldest) / 1000),
        )
        ttl = _ms(3 * max(self.settings.records_retry_max_s, IDLE_CHECK_S))
        self.redis.set(names.RECORDER_STATE, state.model_dump_json(), px=ttl)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
