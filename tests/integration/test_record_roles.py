"""What each service role may do in the record's database (shared/records, migration 0001), on
a real PostgreSQL: the API reads estimates and records sales, the workers write and purge
estimates and read sales, and neither may change the schema or the other's data. Only the owner
(realty, what `realty db upgrade` runs as) migrates."""

import pytest
from postgres import Postgres
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from shared.records.database import API_ROLE, WORKER_ROLE

pytestmark = pytest.mark.integration

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# Everything else on these two tables is refused.
GRANTED = {
    (API_ROLE, "estimates"): {"SELECT"},
    (API_ROLE, "sales"): {"SELECT", "INSERT"},
    (WORKER_ROLE, "estimates"): {"SELECT", "INSERT", "DELETE"},
    (WORKER_ROLE, "sales"): {"SELECT"},
}


@pytest.mark.parametrize(("role", "table"), list(GRANTED))
def test_each_role_holds_exactly_its_privileges_on_each_table(
    owner: Engine, role: str, table: str
) -> None:
    with owner.connect() as conn:
        held = {
            privilege
            for privilege in PRIVILEGES
            if conn.scalar(
                text("SELECT has_table_privilege(:role, :table, :privilege)"),
                {"role": role, "table": table, "privilege": privilege},
            )
        }
    assert held == GRANTED[(role, table)]


@pytest.mark.parametrize("role", ["api", "worker"])
def test_no_service_role_may_change_the_schema(postgres: Postgres, role: str) -> None:
    engine = postgres.engine(role)
    try:
        for statement in (
            "CREATE TABLE intruder (x int)",
            "ALTER TABLE estimates ADD COLUMN intruder int",
            "DROP TABLE sales",
        ):
            with engine.connect() as conn, pytest.raises(ProgrammingError, match=r"denied|owner"):
                conn.execute(text(statement))
    finally:
        engine.dispose()
