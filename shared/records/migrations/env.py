"""Alembic's entry point, run by `shared.records.migrate.upgrade` on the connection it holds
(with the migration lock taken); there is no alembic.ini and no offline mode."""

from alembic import context

from shared.records.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `realty db upgrade` (shared.records.migrate)")
context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
