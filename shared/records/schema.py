"""The record's tables, as SQLAlchemy Core: what the queries are built from. The database itself
is made by the Alembic migrations (migrations/versions), which must say the same;
tests/integration/test_recording.py compares the two on a real PostgreSQL.

`estimates` holds one row per answered estimate (a batch job's row is `<job id>-<row>`), keyed
by the request id the client was given, so writing a record twice changes nothing. `sales` holds
the prices homes actually sold for, linked to an estimate when it is known.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# PostgreSQL's own names for what is not named here (estimates_pkey, sales_request_id_key…), so
# that the migrations, which name everything, and this module agree.
metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "uq": "%(table_name)s_%(column_0_name)s_key",
    }
)

estimates = Table(
    "estimates",
    metadata,
    Column("request_id", Text, primary_key=True),
    Column("key_name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_version", Text, nullable=False),
    Column("model_kind", Text, nullable=False),
    Column("variant", Text, nullable=False),
    Column("job_id", Text),
    Column("row", Integer),
    Column("house", JSONB, nullable=False),
    Column("prediction", Float(precision=53), nullable=False),
    Column("low_80", Float(precision=53)),
    Column("high_80", Float(precision=53)),
    Column("low_95", Float(precision=53)),
    Column("high_95", Float(precision=53)),
    Column("confidence", Text),
    Column("fsd", Float(precision=53)),
    Column("as_of", Text),
    Column("warnings", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The export and the retention purge walk by time; live accuracy per version and time;
    # a key's own estimates by key.
    Index("ix_estimates_created_at", "created_at"),
    Index("ix_estimates_model_version_created_at", "model_version", "created_at"),
    Index("ix_estimates_key_name", "key_name"),
)
# Sales matched to their estimate by the house's fields (migration 0002, shared/monitoring).
Index(
    "ix_estimates_house_match",
    estimates.c.house["zipcode"],
    estimates.c.house["sqft_living"],
)

sales = Table(
    "sales",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column(
        "request_id",
        Text,
        ForeignKey("estimates.request_id", ondelete="SET NULL"),
        unique=True,
    ),
    Column("price", Float(precision=53), nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("house", JSONB),  # the house's fields, when the sale was matched by them
    Column("key_name", Text, nullable=False),  # who reported it
    Column("source", Text, nullable=False),  # 'api' or 'import'
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_sales_sale_date", "sale_date"),
)
