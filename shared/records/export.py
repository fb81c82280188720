"""`realty estimates export`: the record between two dates as CSV, one estimate a line, read a
page at a time so an export of millions of rows holds one page in memory."""

import csv
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO

from sqlalchemy import Engine, RowMapping

from shared.model.contract import HOUSE_COLUMNS
from shared.records.queries import export_page
from shared.wire.messages import ESTIMATE_COLUMNS

RECORD_COLUMNS = (
    "request_id",
    "key_name",
    "created_at",
    "model_version",
    "model_kind",
    "variant",
    "job_id",
    "row",
    *ESTIMATE_COLUMNS,
)
# The house's inputs follow, one column each (empty where a variant does not take the field).
CSV_COLUMNS = RECORD_COLUMNS + HOUSE_COLUMNS
PAGE_ROWS = 5_000


def day_bounds(since: date, until: date | None) -> tuple[datetime, datetime]:
    """[since 00:00 UTC, the day after `until` 00:00 UTC): both days whole. No `until`: up to
    now and a little beyond, so that what is being written as the export runs is in it."""
    start = datetime.combine(since, time(), UTC)
    end = (
        datetime.combine(until + timedelta(days=1), time(), UTC)
        if until is not None
        else datetime.now(UTC) + timedelta(days=1)
    )
    return start, end


def csv_line(estimate: RowMapping) -> list[Any]:
    """One estimate as CSV values: time in ISO 8601 UTC, warnings joined by " | " (as batch
    results are), the house's fields spread into their columns."""
    values: dict[str, Any] = dict(estimate)
    values["created_at"] = estimate["created_at"].astimezone(UTC).isoformat()
    values["warnings"] = " | ".join(estimate["warnings"])
    house = estimate["house"]
    return [values[c] for c in RECORD_COLUMNS] + [house.get(c) for c in HOUSE_COLUMNS]


def pages(engine: Engine, start: datetime, end: datetime) -> Iterator[list[RowMapping]]:
    after: tuple[datetime, str] | None = None
    while True:
        with engine.connect() as connection:
            page = connection.execute(export_page(start, end, after, PAGE_ROWS)).mappings().all()
        if page:
            yield page
        if len(page) < PAGE_ROWS:
            return
        after = (page[-1]["created_at"], page[-1]["request_id"])


def export_csv(engine: Engine, since: date, until: date | None, out: TextIO) -> int:
    """Write the estimates made from `since` to `until` (whole UTC days) to `out`, oldest
    first, with a header line; how many."""
    found = pages(engine, *day_bounds(since, until))
    first = next(found, [])  # a database that cannot be read fails here, before any output
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for page in itertools.chain([first], found):
        writer.writerows(csv_line(estimate) for estimate in page)
        count += len(page)
    return count
