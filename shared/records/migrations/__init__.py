"""Alembic's migrations of the record (run by `migrate.upgrade`, `realty db upgrade`)."""
