"""The record of estimates and the sales fed back against them, and what each role may do.

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DOUBLE = sa.Float(precision=53)

# realty_api reads estimates and records sales; realty_worker writes estimates, deletes them
# at retention and reads sales. Neither may change the schema: the owner (realty) migrates.
GRANTS = (
    "GRANT SELECT ON estimates TO realty_api",
    "GRANT SELECT, INSERT ON sales TO realty_api",
    "GRANT SELECT, INSERT, DELETE ON estimates TO realty_worker",
    "GRANT SELECT ON sales TO realty_worker",
)


def upgrade() -> None:
    op.create_table(
        "estimates",
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("key_name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("model_kind", sa.Text, nullable=False),
        sa.Column("variant", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("row", sa.Integer),
        sa.Column("house", JSONB, nullable=False),
        sa.Column("prediction", DOUBLE, nullable=False),
        sa.Column("low_80", DOUBLE),
        sa.Column("high_80", DOUBLE),
        sa.Column("low_95", DOUBLE),
        sa.Column("high_95", DOUBLE),
        sa.Column("confidence", sa.Text),
        sa.Column("fsd", DOUBLE),
        sa.Column("as_of", sa.Text),
        sa.Column("warnings", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.PrimaryKeyConstraint("request_id", name="estimates_pkey"),
    )
    op.create_index("ix_estimates_created_at", "estimates", ["created_at"])
    op.create_index(
        "ix_estimates_model_version_created_at", "estimates", ["model_version", "created_at"]
    )
    op.create_index("ix_estimates_key_name", "estimates", ["key_name"])
    op.create_table(
        "sales",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("price", DOUBLE, nullable=False),
        sa.Column("sale_date", sa.Date, nullable=False),
        sa.Column("house", JSONB),
        sa.Column("key_name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="sales_pkey"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["estimates.request_id"],
            name="sales_request_id_fkey",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("request_id", name="sales_request_id_key"),
    )
    op.create_index("ix_sales_sale_date", "sales", ["sale_date"])
    for grant in GRANTS:
        op.execute(grant)


def downgrade() -> None:
    op.drop_table("sales")
    op.drop_table("estimates")
