"""The record's statements, built once from `schema.py`: run by the recorder and `realty`
(blocking engines) and by the API (its async engine) alike."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Delete,
    Float,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from shared.records.schema import estimates

# The fields of an `EstimateRecord` (shared/wire/messages.py) as the buffer's JSON holds them,
# with the SQL type PostgreSQL reads each as.
RECORD_FIELDS = {
    "request_id": Text,
    "key": Text,
    "at_ms": BigInteger,
    "model_version": Text,
    "model_kind": Text,
    "variant": Text,
    "job_id": Text,
    "row": Integer,
    "house": JSONB,
    "prediction": Float(precision=53),
    "low_80": Float(precision=53),
    "high_80": Float(precision=53),
    "low_95": Float(precision=53),
    "high_95": Float(precision=53),
    "confidence": Text,
    "fsd": Float(precision=53),
    "as_of": Text,
    "warnings": JSONB,
}


def _insert_records() -> Select:
    """Many records in one statement with one parameter, their JSON array: PostgreSQL unpacks
    it (jsonb_to_recordset), so a write of thousands of rows costs one round trip and no
    per-row work in Python. A record already there (written before a crash, or by another
    recorder) is skipped: writing the buffer twice changes nothing. Its one value is how many
    rows were new."""
    rows = (
        func.jsonb_to_recordset(cast(bindparam("records", type_=Text), JSONB))
        .table_valued(*(column(name, kind) for name, kind in RECORD_FIELDS.items()))
        .render_derived(name="r", with_types=True)
    )
    values = {name: rows.c[name] for name in RECORD_FIELDS if name in estimates.c}
    values |= {
        "key_name": rows.c.key,
        "created_at": func.to_timestamp(rows.c.at_ms / literal(1000.0)),
        "warnings": func.coalesce(rows.c.warnings, cast(literal("[]"), JSONB)),
    }
    columns = list(values)
    inserted = (
        insert(estimates)
        .from_select(columns, select(*(values[name] for name in columns)))
        .on_conflict_do_nothing(index_elements=[estimates.c.request_id])
        .returning(literal(1))
        .cte("inserted")
    )
    return select(func.count()).select_from(inserted)


INSERT_RECORDS = _insert_records()


def estimate_by_id(request_id: str) -> Select:
    return select(estimates).where(estimates.c.request_id == request_id)


def export_page(
    since: datetime, until: datetime, after: tuple[datetime, str] | None, limit: int
) -> Select:
    """Estimates made in [since, until), oldest first, the `limit` that follow `after` (the
    last one of the previous page): each page one short query on the time index, however large
    the export, and none read twice or skipped while new ones arrive."""
    query = select(estimates).where(estimates.c.created_at >= since, estimates.c.created_at < until)
    if after is not None:
        query = query.where(tuple_(estimates.c.created_at, estimates.c.request_id) > after)
    return query.order_by(estimates.c.created_at, estimates.c.request_id).limit(limit)


def purge_batch(retention_days: int, limit: int) -> Delete:
    """Delete up to `limit` of the oldest estimates past retention (by the database's clock)."""
    cutoff = func.now() - func.make_interval(0, 0, 0, retention_days)
    oldest = (
        select(estimates.c.request_id)
        .where(estimates.c.created_at < cutoff)
        .order_by(estimates.c.created_at)
        .limit(limit)
    )
    return estimates.delete().where(estimates.c.request_id.in_(oldest.scalar_subquery()))
