"""Sale prices fed back: the one set of rules `POST /v1/sales` and `realty sales import` check
each reported sale by, and the one place it is written to the record's `sales` table.

A sale is linked to the estimate it scores, either by the estimate's `request_id` (a batch row's
is `<job id>-<row>`), or by the house: at least the 8 fields of `/v1/predict/minimal`, which
every estimate carries, and any other house column given, must equal the recorded estimate's;
the most recently made such estimate is the one. A sale is refused, row by row with the reason:
- a column that is none of request_id, price, date or a house column (a typo);
- a price that is not a number from PRICE_RANGE (USD);
- a date that is not a real YYYY-MM-DD day;
- neither a request_id nor the 8 house fields (or both), or a house field outside the
  contract's bounds;
  (these first, row by row on its own, `check_rows`: what the API's schema also states; then,
  against the record, `record_sales`:)
- a date after today (by the database's clock, UTC);
- no recorded estimate of that id or house;
- a date before the month the estimate priced the home at (its `as_of`; for a kind without
  months, before the day it was made): such a price was known, not an outcome of the estimate;
- a second sale of the same estimate, in the same body or already on record.

All or nothing: if any row is refused, none is recorded and every refused row is named, so
the corrected file is simply sent again (a partial write would make its good rows duplicates).
The API answers 422 when a row is wrong on its own, and 409 when every refused row is valid on
its own but contradicted by the record (`Refusal.conflict`): the body itself was well formed.
"""

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Text, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.model.contract import FIELDS_BY_NAME, HOUSE_COLUMNS, MINIMAL_FIELDS, ZIPCODE
from shared.records.schema import estimates, sales

PRICE_RANGE = (10_000.0, 100_000_000.0)  # below: thousands typed as dollars; above: no home here
SALE_COLUMNS = ("request_id", "price", "date")
COLUMNS = frozenset(SALE_COLUMNS + HOUSE_COLUMNS)
SOURCES = ("api", "import")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# One writer of sales at a time (a transaction-scoped PostgreSQL advisory lock), so that two
# bodies reporting the same estimate cannot both pass the duplicate check.
_SALES_LOCK = 0x5A1E5


@dataclass(frozen=True)
class Refusal:
    """Why row `row` (numbered from 0 in the order sent) was refused; `field` when one is to
    blame. A `conflict` is a row valid on its own that the record contradicts (no such
    estimate, a second sale of one, a sale before what it priced)."""

    row: int
    field: str | None
    reason: str
    conflict: bool = False

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.reason}"


class SalesRefused(ValueError):
    """Some rows were refused: nothing was recorded."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__(f"{len(refusals)} refused row(s), nothing recorded")
        self.refusals = refusals

    @property
    def conflicts_only(self) -> bool:
        """Every row was valid on its own: only the record contradicts them (the API's 409
        rather than 422)."""
        return all(r.conflict for r in self.refusals)


@dataclass(frozen=True)
class Sale:
    """A reported sale whose own fields are valid; the record decides the rest."""

    row: int
    price: float
    sale_date: date
    request_id: str | None
    house: dict[str, int | float | str] | None


@dataclass(frozen=True)
class Recorded:
    sales: int
    by_house: int  # of which matched by the house's fields


# --- one row on its own -----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _WrongValue(ValueError):
    """A value of a sale that breaks its rules (the message says which and how)."""


def _price(value: Any) -> float:
    price = _number(value)
    low, high = PRICE_RANGE
    if price is None:
        raise _WrongValue(f"the price must be a number of US dollars, not {value!r}")
    if not low <= price <= high:
        raise _WrongValue(
            f"a price of ${price:,.0f} is not plausible (${low:,.0f} to ${high:,.0f})"
        )
    return price


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise _WrongValue(f"the date must be a YYYY-MM-DD text, not {value!r}")
    try:
        if _ISO_DAY.fullmatch(value) is None:  # fromisoformat also takes 20150301, 2015-W10-1
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise _WrongValue(f"{value[:40]!r} is not a real day written YYYY-MM-DD") from None
    return day


def _house_value(name: str, value: Any) -> int | float | str:
    """The value as an estimate's record keeps it (a zipcode as text, counts as integers), or
    _WrongValue."""
    spec = FIELDS_BY_NAME[name]
    if spec.kind == "zipcode":
        # as the API reads one: five digits of text, or a whole number with its leading zeros
        number = _number(value)
        if number is not None and number.is_integer() and 0 <= number <= 99_999:
            return f"{int(number):05d}"
        if isinstance(value, str) and len(value) == 5 and value.isascii() and value.isdigit():
            return value
        raise _WrongValue(f"{name} must be five digits, not {value!r}")
    number = _number(value)
    if number is None:
        raise _WrongValue(f"{name} must be a number, not {value!r}")
    if (spec.ge is not None and number < spec.ge) or (spec.le is not None and number > spec.le):
        raise _WrongValue(f"{name} {number:g} is outside {spec.ge:g} to {spec.le:g}")
    if spec.kind == "int":
        if not number.is_integer():
            raise _WrongValue(f"{name} must be a whole number, not {value!r}")
        return int(number)
    return number


def check_row(row: int, given: Mapping[str, Any]) -> Sale | list[Refusal]:
    """The sale of one row, or every reason to refuse it that it shows on its own."""
    if not isinstance(given, Mapping):
        return [Refusal(row, None, "a sale is an object of request_id, price and date")]
    refused = [
        Refusal(
            row,
            str(name),
            "not a column of a sale (request_id, price, date or a house column): a typo?",
        )
        for name in given
        if name not in COLUMNS
    ]
    price = day = None
    try:
        price = _price(given.get("price"))
    except _WrongValue as exc:
        refused.append(Refusal(row, "price", str(exc)))
    try:
        day = _date(given.get("date"))
    except _WrongValue as exc:
        refused.append(Refusal(row, "date", str(exc)))
    request_id = given.get("request_id")
    house: dict[str, int | float | str] = {}
    for name in HOUSE_COLUMNS:
        if given.get(name) is None:
            continue
        try:
            house[name] = _house_value(name, given[name])
        except _WrongValue as exc:
            refused.append(Refusal(row, name, str(exc)))
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        refused.append(Refusal(row, "request_id", f"not an estimate's id: {request_id!r}"))
    elif request_id is not None and house:
        refused.append(
            Refusal(row, "request_id", "give the estimate's request_id or the house, not both")
        )
    elif request_id is None:
        missing = [f for f in MINIMAL_FIELDS if f not in house]
        if missing and not any(r.field in MINIMAL_FIELDS for r in refused):
            refused.append(
                Refusal(
                    row,
                    "request_id",
                    "no request_id, and the house lacks "
                    f"{', '.join(missing)}: a sale is matched by the estimate's id or by at "
                    f"least {', '.join(MINIMAL_FIELDS)}",
                )
            )
    if refused:
        return refused
    assert price is not None and day is not None
    return Sale(row, price, day, request_id, house or None)


@dataclass(frozen=True)
class Checked:
    """Rows checked on their own: the sales of the good ones, the refusals of the others."""

    sales: list[Sale]
    refused: list[Refusal]


def check_rows(rows: Iterable[Any]) -> Checked:
    """Each row checked on its own (`check_row`), in row order. Plain Python, no database: the
    API runs it in a thread, away from its event loop."""
    checked = Checked([], [])
    for index, given in enumerate(rows):
        result = check_row(index, given)
        if isinstance(result, Sale):
            checked.sales.append(result)
        else:
            checked.refused.extend(result)
    return checked


# --- CSV ------------------------------------------------------------------------------------


def csv_rows(body: str) -> Iterator[dict[str, Any]]:
    """The rows of a CSV with a header line, cells as a JSON client would send them: the price
    and house numbers as numbers, the zipcode, date and request_id as text, an empty cell as
    nothing. ValueError for a CSV that cannot be read."""
    reader = csv.reader(io.StringIO(body), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        _check_header(header)
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                width = f"{len(cells)} cells where the header has {len(header)}"
                raise ValueError(f"CSV line {line} has {width}")
            yield {
                name: _cell(name, cell)
                for name, cell in zip(header, cells, strict=True)
                if cell != ""
            }
    except csv.Error as exc:
        raise ValueError(f"the CSV could not be read: {exc}") from exc


def _check_header(header: list[str]) -> None:
    """Header problems once, by column, rather than once per row."""
    problems = []
    if missing := [c for c in ("price", "date") if c not in header]:
        problems.append(f"missing column(s) {missing}")
    if unknown := [c for c in header if c not in COLUMNS]:
        problems.append(
            f"unknown column(s) {unknown} (a sale's are request_id, price, date and the house's)"
        )
    if problems:
        raise ValueError("CSV header: " + "; ".join(problems))


def _cell(name: str, cell: str) -> Any:
    if name == ZIPCODE and cell.isascii() and cell.isdigit() and len(cell) < 5:
        return int(cell)  # a spreadsheet's 8118 for 08118: read as the number it became
    if name in ("request_id", "date", ZIPCODE) or name not in COLUMNS:
        return cell
    try:
        return float(cell)
    except ValueError:
        return cell


# --- against the record ---------------------------------------------------------------------

# The most recent estimate of each house given by its fields: the index on the zipcode and
# living area (migration 0002) finds the candidates, containment checks every field given.
_MATCH = text(
    """
    SELECT given.row AS row, found.request_id AS request_id
    FROM jsonb_to_recordset(:houses) AS given("row" integer, house jsonb)
    LEFT JOIN LATERAL (
        SELECT e.request_id FROM estimates e
        WHERE e.house -> 'zipcode' = given.house -> 'zipcode'
          AND e.house -> 'sqft_living' = given.house -> 'sqft_living'
          AND e.house @> given.house
        ORDER BY e.created_at DESC, e.request_id DESC
        LIMIT 1
    ) AS found ON true
    """
).bindparams(bindparam("houses", type_=JSONB))


# Today by the record's clock, the one every API process and `realty` share.
_TODAY = text("SELECT (now() AT TIME ZONE 'UTC')::date")


def _first_day(as_of: str | None, made: datetime) -> date:
    """The earliest day a sale may score an estimate: the first of its as_of month, or the day
    it was made for a kind that prices no month."""
    if as_of:
        year, month = as_of.split("-")
        return date(int(year), int(month), 1)
    return made.astimezone(UTC).date()


def _linked(conn: Connection, given: list[Sale]) -> tuple[dict[int, str], list[Refusal]]:
    """The estimate each sale scores, by its row; refusals for houses that match none."""
    linked = {s.row: s.request_id for s in given if s.request_id is not None}
    by_house = [{"row": s.row, "house": s.house} for s in given if s.request_id is None]
    refused = []
    if by_house:
        for row, request_id in conn.execute(_MATCH, {"houses": by_house}):
            if request_id is None:
                reason = "no recorded estimate of a house with these fields"
                refused.append(Refusal(row, None, reason, conflict=True))
            else:
                linked[row] = request_id
    return linked, refused


def _refusals(conn: Connection, given: list[Sale], linked: dict[int, str]) -> list[Refusal]:
    """What the record says against each linked sale: no such estimate, a date before what it
    priced, a second sale of the same estimate (in this body, or on record)."""
    ids = bindparam("ids", sorted(set(linked.values())), type_=ARRAY(Text))
    columns = (estimates.c.request_id, estimates.c.created_at, estimates.c.as_of)
    found = conn.execute(select(*columns).where(estimates.c.request_id == any_(ids)))
    known = {r.request_id: r for r in found}
    found = conn.execute(
        select(sales.c.request_id, sales.c.recorded_at).where(sales.c.request_id == any_(ids))
    )
    reported = {r.request_id: r.recorded_at for r in found}
    first_row: dict[str, int] = {}
    refused = []
    for sale in given:
        request_id = linked.get(sale.row)
        if request_id is None:
            continue
        field = "request_id" if sale.request_id else None
        estimate = known.get(request_id)
        if estimate is None:
            reason = f"no recorded estimate {request_id!r}"
            refused.append(Refusal(sale.row, field, reason, conflict=True))
            continue
        earliest = _first_day(estimate.as_of, estimate.created_at)
        if sale.sale_date < earliest:
            priced = f"priced the home at {estimate.as_of}" if estimate.as_of else "was made"
            refused.append(
                Refusal(
                    sale.row,
                    "date",
                    f"the sale ({sale.sale_date}) is before estimate {request_id} {priced} "
                    f"({earliest}): its price was known, not an outcome of the estimate",
                    conflict=True,
                )
            )
        if request_id in reported:
            when = reported[request_id].astimezone(UTC).date()
            reason = f"a sale of estimate {request_id} was recorded on {when}"
            refused.append(Refusal(sale.row, field, reason, conflict=True))
        elif request_id in first_row:
            refused.append(
                Refusal(
                    sale.row,
                    field,
                    f"row {first_row[request_id]} already reports the sale of estimate "
                    f"{request_id}",
                    conflict=True,
                )
            )
        else:
            first_row[request_id] = sale.row
    return refused


def record_sales(conn: Connection, checked: Checked, *, key_name: str, source: str) -> Recorded:
    """Check the sales of `checked` against the record and record them all, in the caller's
    transaction; SalesRefused naming every refused row (`checked`'s own refusals too), and
    nothing written, if any is refused."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {SOURCES}")
    given = checked.sales
    conn.execute(select(func.pg_advisory_xact_lock(_SALES_LOCK)))
    today = conn.scalar(_TODAY)
    future = [
        Refusal(s.row, "date", f"{s.sale_date} is in the future (today is {today}, UTC)")
        for s in given
        if s.sale_date > today
    ]
    linked, unmatched = _linked(conn, given)
    refused = checked.refused + future + unmatched + _refusals(conn, given, linked)
    if refused:
        raise SalesRefused(sorted(refused, key=lambda r: r.row))
    if not given:
        return Recorded(0, 0)
    conn.execute(
        insert(sales),
        [
            {
                "request_id": linked[s.row],
                "price": s.price,
                "sale_date": s.sale_date,
                "house": s.house,
                "key_name": key_name,
                "source": source,
            }
            for s in given
        ],
    )
    return Recorded(len(given), sum(1 for s in given if s.request_id is None))


def import_file(engine: Engine, path: Path, key_name: str, max_rows: int) -> Recorded:
    """`realty sales import`: the sales of a CSV file, checked and recorded as POST /v1/sales
    does (SalesRefused; ValueError for a file that is not a CSV of at most `max_rows` sales)."""
    try:
        text_body = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it: {exc}") from exc
    rows = list(csv_rows(text_body))
    if not rows:
        raise ValueError("no sales in it")
    if len(rows) > max_rows:
        raise ValueError(f"{len(rows):,} sales; import at most {max_rows:,} at once")
    checked = check_rows(rows)
    with engine.begin() as connection:
        return record_sales(connection, checked, key_name=key_name, source="import")
