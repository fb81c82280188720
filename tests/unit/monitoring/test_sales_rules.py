"""The rules a reported sale is checked by on its own (shared/monitoring/sales.py): every refusal
names its row, the field to blame and why. (The checks against the record and its clock, a
date in the future, the estimate's existence and month, duplicates, run on PostgreSQL:
tests/integration/test_sales_record.py.)"""

from datetime import date
from typing import Any

import pytest
from houses import MINIMAL_HOUSE

from shared.model.contract import MINIMAL_FIELDS
from shared.monitoring.sales import Refusal, Sale, check_rows, csv_rows


def refusals(*rows: Any) -> list[tuple[int, str | None, str]]:
    checked = check_rows(rows)
    assert len(checked.sales) + len({r.row for r in checked.refused}) == len(rows)
    return [(r.row, r.field, r.reason) for r in checked.refused]


def test_a_sale_by_request_id_and_one_by_the_house_are_accepted() -> None:
    checked = check_rows(
        [
            {"request_id": "abc-0", "price": 500_000, "date": "2015-05-01"},
            {
                **MINIMAL_HOUSE,
                "zipcode": 8118,
                "price": 450_000.0,
                "date": "2026-11-29",
                "lat": 47.5,
            },
        ]
    )
    good = checked.sales
    assert checked.refused == []
    assert good[0] == Sale(0, 500_000.0, date(2015, 5, 1), "abc-0", None)
    # a zipcode sent as a number is read as the API reads it, with its leading zeros
    assert good[1].request_id is None
    assert good[1].house == {**MINIMAL_HOUSE, "zipcode": "08118", "lat": 47.5}
    assert isinstance(good[1].house["bedrooms"], int)  # as the estimate's record holds it


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0, "a price of $0 is not plausible ($10,000 to $100,000,000)"),
        (-5, "a price of $-5 is not plausible ($10,000 to $100,000,000)"),
        (500, "a price of $500 is not plausible ($10,000 to $100,000,000)"),
        (2e9, "a price of $2,000,000,000 is not plausible ($10,000 to $100,000,000)"),
        ("500000", "the price must be a number of US dollars, not '500000'"),
        (True, "the price must be a number of US dollars, not True"),
        (None, "the price must be a number of US dollars, not None"),
        (float("nan"), "the price must be a number of US dollars, not nan"),
    ],
)
def test_an_impossible_price_is_refused(price: Any, reason: str) -> None:
    row = {"request_id": "abc-0", "price": price, "date": "2015-05-01"}
    assert refusals(row) == [(0, "price", reason)]


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2015-02-30", "'2015-02-30' is not a real day written YYYY-MM-DD"),
        ("20150301", "'20150301' is not a real day written YYYY-MM-DD"),
        ("2015-W10-1", "'2015-W10-1' is not a real day written YYYY-MM-DD"),
        (20150301, "the date must be a YYYY-MM-DD text, not 20150301"),
        (None, "the date must be a YYYY-MM-DD text, not None"),
    ],
)
def test_an_impossible_date_is_refused(day: Any, reason: str) -> None:
    row = {"request_id": "abc-0", "price": 500_000, "date": day}
    assert refusals(row) == [(0, "date", reason)]


def test_a_sale_names_its_estimate_or_its_house_not_both_nor_neither() -> None:
    both = {"request_id": "abc-0", **MINIMAL_HOUSE, "price": 500_000, "date": "2015-05-01"}
    neither = {"price": 500_000, "date": "2015-05-01", "bedrooms": 3}
    found = refusals(both, neither)
    assert found[0] == (0, "request_id", "give the estimate's request_id or the house, not both")
    row, field, reason = found[1]
    assert (row, field) == (1, "request_id")
    missing = ", ".join(f for f in MINIMAL_FIELDS if f != "bedrooms")
    assert reason.startswith(f"no request_id, and the house lacks {missing}")


def test_house_fields_follow_the_feature_contract() -> None:
    row = {
        **MINIMAL_HOUSE,
        "zipcode": "9811",
        "bedrooms": 2.5,
        "sqft_living": 50,
        "price": 500_000,
        "date": "2015-05-01",
    }
    assert refusals(row) == [
        (0, "bedrooms", "bedrooms must be a whole number, not 2.5"),
        (0, "sqft_living", "sqft_living 50 is outside 100 to 60000"),
        (0, "zipcode", "zipcode must be five digits, not '9811'"),
    ]


def test_an_unknown_column_and_a_row_that_is_not_an_object_are_refused() -> None:
    typo = {"request_id": "abc-0", "price": 500_000, "date": "2015-05-01", "prise": 1}
    found = refusals(typo, ["abc-0", 500_000, "2015-05-01"])
    assert found[0] == (
        0,
        "prise",
        "not a column of a sale (request_id, price, date or a house column): a typo?",
    )
    assert found[1] == (1, None, "a sale is an object of request_id, price and date")


def test_every_problem_of_every_row_is_named_in_row_order() -> None:
    found = refusals(
        {"request_id": "ok-0", "price": 500_000, "date": "2015-05-01"},
        {"request_id": "", "price": 0, "date": "yesterday"},
        {"request_id": "ok-2", "price": 500_000, "date": "2015-05-01"},
        {"request_id": 7, "price": 500_000, "date": "2015-05-01"},
    )
    assert [(row, field) for row, field, _ in found] == [
        (1, "price"),
        (1, "date"),
        (1, "request_id"),
        (3, "request_id"),
    ]
    assert str(Refusal(3, "request_id", "why")) == "row 3, request_id: why"


def test_csv_cells_become_what_a_json_client_sends() -> None:
    body = (
        "request_id,price,date,zipcode,bathrooms\n"
        "abc-0,500000,2015-05-01,,\n"
        ",4.5e5,2015-05-02,01234,2.5\n"
        ",4.5e5,2015-05-02,1234,2.5\n"
    )
    rows = list(csv_rows(body))
    assert rows == [
        {"request_id": "abc-0", "price": 500_000.0, "date": "2015-05-01"},
        {"price": 450_000.0, "date": "2015-05-02", "zipcode": "01234", "bathrooms": 2.5},
        # a spreadsheet's zipcode that lost its leading zero: the number, as JSON may send
        {"price": 450_000.0, "date": "2015-05-02", "zipcode": 1234, "bathrooms": 2.5},
    ]


def test_a_csv_line_of_the_wrong_width_is_refused_with_its_line() -> None:
    with pytest.raises(ValueError, match="CSV line 3 has 2 cells where the header has 3"):
        list(csv_rows("request_id,price,date\na,1,2015-05-01\nb,2\n"))


def test_a_csv_header_is_checked_once_by_column() -> None:
    with pytest.raises(ValueError) as caught:
        list(csv_rows("request_id,prise,dat\nx,1,2015-05-01\n"))
    assert str(caught.value) == (
        "CSV header: missing column(s) ['price', 'date']; unknown column(s) ['prise', 'dat'] "
        "(a sale's are request_id, price, date and the house's)"
    )
