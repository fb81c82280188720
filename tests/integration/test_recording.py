"""The record of estimates on real processes: PostgreSQL (scripts/postgres_server.py, what
`make run` starts), Redis, a worker pool with its recorder, and the API. Every single estimate
and every batch row ends up in PostgreSQL; a key reads back its own; PostgreSQL down costs no
answer and no record; the record is exported and purged."""

import csv
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import Postgres
from sqlalchemy import Column, Connection, Engine, func, inspect, select, text
from stack import REPO, Stack, running_stack

from shared.model.bundles import latest_version
from shared.model.contract import MINIMAL_FIELDS
from shared.records.database import sync_engine
from shared.records.export import CSV_COLUMNS
from shared.records.recorder import Recorder
from shared.records.schema import estimates, metadata, sales
from shared.records.status import delay_reason
from shared.wire import names
from shared.wire.api_keys import Role
from shared.wire.messages import RECORD_BATCH, EstimateRecord, RecorderState

pytestmark = pytest.mark.integration

# A recorder that looks every 0.2 s and retries within 1 s: the outage test need not wait long.
FAST = {"records_poll_s": 0.2, "records_retry_max_s": 1.0, "batch_chunk_rows": 25}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Stack]:
    """A service recording into the module's PostgreSQL: one worker pool (its recorder in it),
    the API, Redis."""
    active = latest_version(REPO / "model_artifacts")
    with running_stack(
        tmp_path_factory.mktemp("recording"),
        workers=0,
        pools=("pool1",),
        active=active,
        **postgres.stack_settings(),
        **FAST,
    ) as stack:
        yield stack


def as_key(stack: Stack, name: str, role: Role = Role.AGENT) -> requests.Session:
    """A session presenting a new key `name` of `role`, with relative URLs to the stack's API."""
    key = stack.key(name, role, rate_per_s=0)

    class Session(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any):  # type: ignore[override]
            kwargs.setdefault("timeout", 30)
            return super().request(method, stack.api_url + url, *args, **kwargs)

    session = Session()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


@pytest.fixture(scope="module")
def anna(recording: Stack) -> requests.Session:
    return as_key(recording, "anna")


@pytest.fixture(scope="module")
def ben(recording: Stack) -> requests.Session:
    return as_key(recording, "ben")


def on_record(engine: Engine, ids: list[str]) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(select(estimates).where(estimates.c.request_id.in_(ids)))
        return {row.request_id: row for row in rows}


def wait_recorded(engine: Engine, ids: list[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (found := on_record(engine, ids)).keys() != set(ids):
        if time.monotonic() > deadline:
            missing = sorted(set(ids) - found.keys())
            raise TimeoutError(f"{len(missing)} of {len(ids)} not recorded: {missing[:5]}")
        time.sleep(0.2)
    return found


def wait_until(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(estimates))


def wait_batch(session: requests.Session, job_id: str) -> dict:
    def done() -> dict | None:
        body = session.get(f"/v1/batch/{job_id}").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_until(done, 60, f"batch job {job_id}")


def expression_index(diff: tuple) -> bool:
    """Alembic reads an index on expressions back as text it cannot compare with the code's:
    such indexes are compared by name instead."""
    return diff[0] in ("add_index", "remove_index") and any(
        not isinstance(e, Column) for e in diff[1].expressions
    )


def assert_schema_is_the_code_s(connection: Connection) -> None:
    """What the migrations made is what shared/records/schema.py says."""
    diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    assert [diff for diff in diffs if not expression_index(diff)] == []
    made = {
        index["name"]
        for table in metadata.tables
        for index in inspect(connection).get_indexes(table)
        if not index.get("duplicates_constraint")
    }
    assert made == {index.name for table in metadata.tables.values() for index in table.indexes}


def test_the_migrations_make_the_schema_the_code_queries(owner: Engine):
    with owner.connect() as connection:
        assert_schema_is_the_code_s(connection)


def test_two_upgrades_at_once_migrate_a_fresh_database_once(
    recording: Stack, postgres: Postgres, owner: Engine
):
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("CREATE DATABASE fresh OWNER realty"))
    env = recording.env | {
        "REALTY_DATABASE_URL": recording.env["REALTY_DATABASE_URL"].replace("/realty", "/fresh")
    }
    command = [sys.executable, "-m", "shared.tools.cli", "db", "upgrade"]
    runs = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    head = outputs[0].split()[-1]
    assert all(f"revision {head}" in out for out in outputs)
    fresh = sync_engine(postgres.settings(database_url=env["REALTY_DATABASE_URL"]), "test-fresh")
    try:
        with fresh.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            assert_schema_is_the_code_s(connection)
    finally:
        fresh.dispose()


def test_every_single_and_batch_row_is_recorded_with_what_was_answered(
    recording: Stack, anna: requests.Session, owner: Engine, future_rows: list[dict]
):
    singles = [anna.post("/v1/predict", json=row) for row in future_rows[:5]]
    minimal = anna.post("/v1/predict/minimal", json={f: future_rows[5][f] for f in MINIMAL_FIELDS})
    crm = as_key(recording, "crm", Role.BATCH)
    job = crm.post("/v1/batch", json={"rows": future_rows[:40]}).json()
    results = wait_batch(crm, job["job_id"])["results"]
    assert all(a.status_code == 200 for a in [*singles, minimal])

    answers = [a.json() for a in singles]
    batch_ids = [f"{job['job_id']}-{row}" for row in range(40)]
    ids = [a["request_id"] for a in answers] + [minimal.json()["request_id"], *batch_ids]
    recorded = wait_recorded(owner, ids)

    for answer, house in zip(answers, future_rows, strict=False):
        row = recorded[answer["request_id"]]
        assert (row.key_name, row.variant, row.job_id, row.row) == ("anna", "full", None, None)
        assert (row.model_version, row.model_kind) == (
            answer["model_version"],
            answer["model_kind"],
        )
        assert row.prediction == answer["prediction"]
        assert (row.low_80, row.high_80) == tuple(answer["interval_80"].values())
        assert (row.confidence, row.fsd, row.as_of) == (
            answer["confidence"],
            answer["fsd"],
            answer["as_of"],
        )
        assert row.warnings == answer["warnings"]
        assert row.house["zipcode"] == str(house["zipcode"])
        assert row.house["sqft_living"] == house["sqft_living"]
        assert abs(row.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert recorded[minimal.json()["request_id"]].variant == "minimal"
    for result, request_id in zip(results, batch_ids, strict=True):
        row = recorded[request_id]
        assert (row.key_name, row.job_id, row.row) == ("crm", job["job_id"], result["row"])
        assert row.prediction == result["prediction"]


def test_a_key_reads_back_its_own_estimates_and_an_admin_any(
    recording: Stack, anna: requests.Session, ben: requests.Session, owner: Engine, house: dict
):
    answer = anna.post("/v1/predict", json=house).json()
    wait_recorded(owner, [answer["request_id"]])
    path = f"/v1/estimates/{answer['request_id']}"

    own = anna.get(path)
    assert own.status_code == 200
    body = own.json()
    assert (body["request_id"], body["key_name"]) == (answer["request_id"], "anna")
    for field in ("prediction", "model_version", "interval_80", "interval_95", "confidence"):
        assert body[field] == answer[field], field
    assert body["house"]["zipcode"] == str(house["zipcode"])
    assert recording.http.get(recording.api_url + path).json() == body  # the admin key

    others = ben.get(path)
    unknown = ben.get("/v1/estimates/0123456789abcdef0123456789abcdef")
    assert others.status_code == unknown.status_code == 404
    assert "no estimate" in others.json()["detail"]
    assert "anna" not in others.text and str(answer["prediction"]) not in others.text
    assert anna.get("/v1/estimates/" + "x" * 200).status_code == 422


def test_with_postgres_down_estimates_answer_records_wait_and_none_is_lost_or_doubled(
    recording: Stack,
    postgres: Postgres,
    anna: requests.Session,
    owner: Engine,
    future_rows: list[dict],
):
    client = recording.redis_client()
    wait_until(lambda: client.llen(names.RECORDS) == 0, 30, "an empty buffer")
    before = count(owner)
    postgres.kill()
    try:
        answers = [anna.post("/v1/predict", json=row) for row in future_rows[:20]]
        assert [a.status_code for a in answers] == [200] * 20
        ids = [a.json()["request_id"] for a in answers]

        def degraded() -> dict | None:
            ready = requests.get(recording.api_url + "/health/ready", timeout=5)
            return ready.json() if ready.json()["status"] == "degraded" else None

        body = wait_until(degraded, 30, "readiness to say degraded")
        assert body["reason"].startswith("recording delayed: PostgreSQL is unreachable")
        assert requests.get(recording.api_url + "/health/ready", timeout=5).status_code == 200
        assert anna.get(f"/v1/estimates/{ids[0]}").status_code == 503
        assert int(client.get(names.RECORDS_ROWS)) >= 20
    finally:
        postgres.start()

    wait_recorded(owner, ids)
    wait_until(
        lambda: (
            requests.get(recording.api_url + "/health/ready", timeout=5).json()["status"] == "ready"
        ),
        30,
        "readiness to recover",
    )
    assert count(owner) == before + 20
    assert client.llen(names.RECORDS) == 0
    assert int(client.get(names.RECORDS_ROWS)) == 0
    assert anna.get(f"/v1/estimates/{ids[0]}").status_code == 200


def test_export_writes_the_days_estimates_as_csv(
    recording: Stack, owner: Engine, house: dict, tmp_path: Path
):
    anna = as_key(recording, "anna.export")
    ids = [anna.post("/v1/predict", json=house).json()["request_id"] for _ in range(3)]
    wait_recorded(owner, ids)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    done = recording.realty("estimates", "export", "--since", yesterday)
    assert done.returncode == 0, done.stderr
    lines = list(csv.reader(io.StringIO(done.stdout)))
    assert tuple(lines[0]) == CSV_COLUMNS
    exported = [dict(zip(CSV_COLUMNS, line, strict=True)) for line in lines[1:]]
    with owner.connect() as connection:
        since = datetime.fromisoformat(yesterday).replace(tzinfo=UTC)
        made = select(func.count()).where(estimates.c.created_at >= since)
        assert len(exported) == connection.scalar(made) == len({e["request_id"] for e in exported})
    mine = [e for e in exported if e["request_id"] in ids]
    assert [e["key_name"] for e in mine] == ["anna.export"] * 3
    assert mine[0]["zipcode"] == str(house["zipcode"])
    assert f"exported {len(exported)} estimates" in done.stderr

    empty = recording.realty(
        "estimates", "export", "--since", "2000-01-01", "--until", "2000-01-02"
    )
    assert empty.stdout.splitlines() == [",".join(CSV_COLUMNS)]

    into = tmp_path / "estimates.csv"
    to_file = recording.realty("estimates", "export", "--since", yesterday, "--out", str(into))
    assert to_file.returncode == 0 and into.read_text() == done.stdout

    closed = "postgresql+psycopg://127.0.0.1:1/realty"
    away = tmp_path / "away.csv"
    refused = recording.realty(
        "estimates", "export", "--since", yesterday, "--out", str(away), database_url=closed
    )
    assert refused.returncode == 1 and not away.exists() and sorted(tmp_path.iterdir()) == [into]
    assert refused.stderr.startswith("realty: PostgreSQL is unreachable")


def test_retention_deletes_old_estimates_and_keeps_their_sales(recording: Stack, owner: Engine):
    old = datetime.now(UTC) - timedelta(days=800)
    with owner.begin() as connection:
        connection.execute(
            estimates.insert().values(
                request_id="old-1",
                key_name="anna",
                created_at=old,
                model_version="v1",
                model_kind="baseline",
                variant="full",
                house={"zipcode": "98118"},
                prediction=300_000.0,
            )
        )
        connection.execute(
            sales.insert().values(
                request_id="old-1",
                price=310_000.0,
                sale_date=old.date(),
                key_name="anna",
                source="api",
            )
        )
    before = count(owner)

    done = recording.realty("estimates", "purge")
    assert done.returncode == 0, done.stderr
    assert "deleted 1 estimates older than 730 days" in done.stdout
    assert count(owner) == before - 1
    with owner.connect() as connection:
        kept = connection.execute(select(sales).where(sales.c.price == 310_000.0)).one()
    assert kept.request_id is None


# --- the recorder itself, on a Redis of its own and the module's PostgreSQL -----------------
def push(client: redis.Redis, first: int, rows: int, prefix: str, **values: Any) -> None:
    """One buffer item, as a worker pushes it."""
    fields: dict[str, Any] = {
        "key": "anna",
        "model_version": "v2",
        "model_kind": "gbm",
        "variant": "full",
        "house": {"zipcode": "98118"},
    } | values
    records = [
        EstimateRecord(
            request_id=f"{prefix}{n}",
            at_ms=1_790_000_000_000 + n,
            prediction=350_000.0 + n,
            **fields,
        )
        for n in range(first, first + rows)
    ]
    client.rpush(names.RECORDS, RECORD_BATCH.dump_json(records))
    client.incrby(names.RECORDS_ROWS, rows)


def recorded_with(engine: Engine, prefix: str) -> list[str]:
    with engine.connect() as connection:
        query = select(estimates.c.request_id).where(estimates.c.request_id.like(f"{prefix}%"))
        return sorted(connection.scalars(query))


@pytest.fixture
def worker_engine(postgres: Postgres) -> Iterator[Engine]:
    engine = postgres.engine("worker")
    yield engine
    engine.dispose()


def test_two_recorders_write_each_record_once_and_trim_only_what_they_wrote(
    redis_stack: Stack, postgres: Postgres, worker_engine: Engine, owner: Engine
):
    client = redis_stack.redis_client()
    settings = postgres.settings("worker", records_write_rows=100)
    a = Recorder(settings, client, worker_engine, name="a")
    b = Recorder(settings, client, worker_engine, name="b")
    for first in (0, 64, 128):
        push(client, first, 64, "lock-")

    assert a.step() == 0.0  # one item (a second would pass 100 rows); more wait
    assert b.step() == settings.records_poll_s  # a holds the lock: b writes nothing
    assert (client.llen(names.RECORDS), len(recorded_with(owner, "lock-"))) == (2, 64)

    client.delete(names.RECORDER_LOCK)  # a's lock lapses (a stalled write), b takes over
    assert b.step() == 0.0
    late = a.read()
    a.write(late)  # a's late write of the head item: on record once, and trimmed by b only
    assert (client.llen(names.RECORDS), client.get(names.RECORDS_ROWS)) == (1, "64")
    assert b.step() == settings.records_poll_s
    assert recorded_with(owner, "lock-") == sorted(f"lock-{n}" for n in range(192))
    assert (client.llen(names.RECORDS), client.get(names.RECORDS_ROWS)) == (0, "0")


def test_a_bad_item_or_record_is_dropped_alone_and_the_rest_recorded(
    redis_stack: Stack, postgres: Postgres, worker_engine: Engine, owner: Engine
):
    client = redis_stack.redis_client()
    recorder = Recorder(postgres.settings("worker"), client, worker_engine)
    push(client, 0, 3, "bad-")
    client.rpush(names.RECORDS, "not an item")
    push(client, 3, 3, "bad-", as_of="2015-05\x00")  # text PostgreSQL cannot store (a NUL)
    push(client, 6, 3, "bad-")

    recorder.step()
    assert recorded_with(owner, "bad-") == [f"bad-{n}" for n in (0, 1, 2, 6, 7, 8)]
    assert (client.llen(names.RECORDS), client.get(names.RECORDS_ROWS)) == (0, "0")


def test_an_item_postgresql_refuses_is_validated_and_dropped_alone_and_the_rest_recorded(
    redis_stack: Stack,
    postgres: Postgres,
    worker_engine: Engine,
    owner: Engine,
    caplog: pytest.LogCaptureFixture,
):
    """An array of objects goes to PostgreSQL unvalidated; one lacking the record's fields is
    refused there (NOT NULL), and only then validated and taken out."""
    client = redis_stack.redis_client()
    recorder = Recorder(postgres.settings("worker"), client, worker_engine)
    push(client, 0, 3, "refused-")
    client.rpush(names.RECORDS, '[{"request_id": "refused-x"}, {"request_id": "refused-y"}]')
    client.incrby(names.RECORDS_ROWS, 2)
    push(client, 3, 3, "refused-")

    with caplog.at_level("WARNING", logger="shared.records.recorder"):
        recorder.step()
    assert recorded_with(owner, "refused-") == [f"refused-{n}" for n in range(6)]
    assert (client.llen(names.RECORDS), client.get(names.RECORDS_ROWS)) == (0, "0")
    assert "PostgreSQL refused a write of 3 buffer items" in caplog.text
    assert "dropping an invalid item of the record's buffer (2 rows)" in caplog.text


def test_an_unreachable_postgres_keeps_the_records_and_says_so_with_growing_pauses(
    redis_stack: Stack, postgres: Postgres
):
    client = redis_stack.redis_client()
    closed = postgres.settings(
        "worker", database_url="postgresql+psycopg://127.0.0.1:1/realty", records_poll_s=0.2
    )
    engine = sync_engine(closed, "test-closed")
    recorder = Recorder(closed, client, engine, name="cut-off")
    push(client, 0, 10, "down-")

    pauses = [recorder.step() for _ in range(3)]
    assert pauses == [0.4 * 2**n for n in range(3)]  # doubling from records_poll_s (0.2)
    assert (client.llen(names.RECORDS), client.get(names.RECORDS_ROWS)) == (1, "10")
    assert client.get(names.RECORDER_LOCK) is None  # let go: another host may reach it
    state = RecorderState.model_validate_json(client.get(names.RECORDER_STATE))
    assert (state.recorder, state.error, state.backlog_rows) == (
        "cut-off",
        "PostgreSQL is unreachable",
        10,
    )
    assert delay_reason(state, 60) == (
        "recording delayed: PostgreSQL is unreachable; 10 estimates wait in Redis"
    )
    engine.dispose()


def test_a_backlog_drains_in_writes_of_records_write_rows(
    redis_stack: Stack, postgres: Postgres, worker_engine: Engine, owner: Engine, house: dict
):
    """What a recorder catches up with after an outage: 50 batch chunks of 1,000 rows (the rate
    is printed with -s: docs/operations.md, Record of estimates)."""
    client = redis_stack.redis_client()
    settings = postgres.settings("worker")
    recorder = Recorder(settings, client, worker_engine)
    answer = {"low_80": 294768.43, "high_80": 445916.8, "low_95": 253128.38, "high_95": 519270.88}
    answer |= {"confidence": "C", "fsd": 0.1539, "as_of": "2015-05", "house": house}
    for chunk in range(50):
        push(client, chunk * 1000, 1000, "drain-", job_id=f"drain{chunk}", **answer)
    size = client.memory_usage(names.RECORDS) / 50_000

    started, writes = time.perf_counter(), 0
    while client.llen(names.RECORDS):
        recorder.step()
        writes += 1
    elapsed = time.perf_counter() - started

    assert writes == 50_000 // settings.records_write_rows
    assert len(recorded_with(owner, "drain-")) == 50_000
    assert client.get(names.RECORDS_ROWS) == "0"
    print(
        f"\n50,000 estimates ({size:.0f} bytes each in Redis) in {writes} writes, "
        f"{elapsed:.1f} s: {50_000 / elapsed:,.0f} a second"
    )
