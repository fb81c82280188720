"""The CSV export: whole UTC days, one line per estimate with the record's fields then the
house's, times in ISO 8601 UTC, warnings joined as batch results join them."""

from datetime import UTC, date, datetime, timedelta, timezone

from shared.model.contract import HOUSE_COLUMNS
from shared.records.export import CSV_COLUMNS, RECORD_COLUMNS, csv_line, day_bounds


def test_since_and_until_are_whole_days_in_utc():
    start, end = day_bounds(date(2026, 11, 1), date(2026, 11, 30))
    assert start == datetime(2026, 11, 1, tzinfo=UTC)
    assert end == datetime(2026, 12, 1, tzinfo=UTC)


def test_without_until_the_export_runs_past_now():
    _, end = day_bounds(date(2026, 11, 1), None)
    assert end > datetime.now(UTC) + timedelta(hours=23)


def test_a_line_holds_the_record_then_the_house_with_blanks_for_fields_not_sent():
    estimate = {name: None for name in RECORD_COLUMNS} | {
        "request_id": "job1-4",
        "created_at": datetime(2026, 11, 29, 1, 30, tzinfo=timezone(timedelta(hours=-8))),
        "prediction": 365550.5,
        "warnings": ["sqft_above 9,800 is above…", "second"],
        "house": {"zipcode": "98118", "sqft_living": 1680},
    }
    line = dict(zip(CSV_COLUMNS, csv_line(estimate), strict=True))  # type: ignore[arg-type]
    assert CSV_COLUMNS[: len(RECORD_COLUMNS)] == RECORD_COLUMNS
    assert CSV_COLUMNS[len(RECORD_COLUMNS) :] == HOUSE_COLUMNS
    assert line["created_at"] == "2026-11-29T09:30:00+00:00"
    assert line["warnings"] == "sqft_above 9,800 is above… | second"
    assert (line["zipcode"], line["sqft_living"], line["grade"]) == ("98118", 1680, None)
