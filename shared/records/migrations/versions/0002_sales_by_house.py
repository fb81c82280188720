"""Sales matched to estimates by the house's fields (shared/monitoring/sales.py) find their
estimate through an index on the house's zipcode and living area, instead of reading every
estimate for each sale. jsonb values, not text: 1680 and 1680.0 are the same area.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_estimates_house_match ON estimates "
        "((house -> 'zipcode'), (house -> 'sqft_living'))"
    )


def downgrade() -> None:
    op.drop_index("ix_estimates_house_match", table_name="estimates")
