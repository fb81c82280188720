"""Retention: estimates older than `records_retention_days` are deleted (sales are kept; a
sale's link to a deleted estimate becomes empty). Run by the recorder every
`records_purge_interval_s` and by `realty estimates purge`."""

from collections.abc import Callable

from sqlalchemy import Engine

from shared.records.queries import purge_batch


def purge_expired(
    engine: Engine,
    retention_days: int,
    batch_rows: int,
    *,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Delete the expired estimates, `batch_rows` at a time, each batch its own short
    transaction (a first purge of years of estimates never holds locks for long); stops early
    when `keep_going` says so. How many were deleted."""
    deleted = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(purge_batch(retention_days, batch_rows)).rowcount
        deleted += count
        if count < batch_rows or not keep_going():
            return deleted
