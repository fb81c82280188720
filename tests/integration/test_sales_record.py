"""Sales against the record, on a real PostgreSQL (shared/monitoring/sales.py, live.py): the
checks that need the estimates (their existence, the month they priced, a sale already
reported), matching by the house, all or nothing, as the API's own database role; and the live
figures read back from what was recorded."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from houses import MINIMAL_HOUSE
from postgres import Postgres
from sqlalchemy import Engine, delete, func, insert, select

from shared.monitoring.live import NO_ESTIMATES, NO_PROFILE, read_rows, snapshot_of
from shared.monitoring.profile import training_profile
from shared.monitoring.sales import Refusal, SalesRefused, check_rows, record_sales
from shared.records.schema import estimates, sales

pytestmark = pytest.mark.integration

MADE = datetime(2026, 11, 1, 12, tzinfo=UTC)


def estimate(request_id: str, **values: Any) -> dict[str, Any]:
    row = {
        "request_id": request_id,
        "key_name": "anna",
        "created_at": MADE,
        "model_version": "v1",
        "model_kind": "gbm",
        "variant": "full",
        "house": MINIMAL_HOUSE,
        "prediction": 500_000.0,
        "low_80": 450_000.0,
        "high_80": 550_000.0,
        "as_of": "2015-02",
        "warnings": [],
    }
    return row | values


@pytest.fixture(scope="module")
def api_role(postgres: Postgres) -> Iterator[Engine]:
    """The API's own role: reads estimates, reads and adds sales, nothing more."""
    engine = postgres.engine("api")
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_record(owner: Engine) -> None:
    with owner.begin() as connection:
        connection.execute(delete(sales))
        connection.execute(delete(estimates))


def put(owner: Engine, *rows: dict[str, Any]) -> None:
    with owner.begin() as connection:
        connection.execute(insert(estimates), list(rows))


def report(engine: Engine, *rows: dict[str, Any], source: str = "api"):
    with engine.begin() as connection:
        return record_sales(connection, check_rows(rows), key_name="crm", source=source)


def refused(engine: Engine, *rows: dict[str, Any]) -> list[Refusal]:
    with pytest.raises(SalesRefused) as caught:
        report(engine, *rows)
    return caught.value.refusals


def recorded(owner: Engine) -> list[tuple[str | None, float, date, str]]:
    with owner.connect() as connection:
        query = select(sales.c.request_id, sales.c.price, sales.c.sale_date, sales.c.source)
        return [tuple(r) for r in connection.execute(query.order_by(sales.c.id))]


def test_sales_by_request_id_are_recorded_by_the_apis_role(owner: Engine, api_role: Engine) -> None:
    put(owner, estimate("job-0"), estimate("job-1"))
    done = report(
        api_role,
        {"request_id": "job-0", "price": 510_000, "date": "2015-03-02"},
        {"request_id": "job-1", "price": 480_000.5, "date": "2015-02-01"},  # its as_of month
    )
    assert (done.sales, done.by_house) == (2, 0)
    assert recorded(owner) == [
        ("job-0", 510_000.0, date(2015, 3, 2), "api"),
        ("job-1", 480_000.5, date(2015, 2, 1), "api"),
    ]


def test_every_refused_row_is_named_and_nothing_is_recorded(
    owner: Engine, api_role: Engine
) -> None:
    put(owner, estimate("job-0"), estimate("job-1"), estimate("job-2"))
    report(api_role, {"request_id": "job-2", "price": 500_000, "date": "2015-04-01"})
    refusals = refused(
        api_role,
        {"request_id": "job-0", "price": 500_000, "date": "2015-04-01"},  # good on its own
        {"request_id": "nope", "price": 500_000, "date": "2015-04-01"},
        {"request_id": "job-1", "price": 500_000, "date": "2015-01-31"},
        {"request_id": "job-0", "price": 505_000, "date": "2015-04-02"},
        {"request_id": "job-2", "price": 500_000, "date": "2015-04-01"},
        {"request_id": "job-1", "price": 0, "date": "2015-04-01"},
    )
    today = datetime.now(UTC).date()
    assert [(r.row, r.field) for r in refusals] == [
        (1, "request_id"),
        (2, "date"),
        (3, "request_id"),
        (4, "request_id"),
        (5, "price"),
    ]
    reasons = [r.reason for r in refusals]
    assert reasons[0] == "no recorded estimate 'nope'"
    assert reasons[1] == (
        "the sale (2015-01-31) is before estimate job-1 priced the home at 2015-02 "
        "(2015-02-01): its price was known, not an outcome of the estimate"
    )
    assert reasons[2] == "row 0 already reports the sale of estimate job-0"
    assert reasons[3] == f"a sale of estimate job-2 was recorded on {today}"
    assert reasons[4].startswith("a price of $0 is not plausible")
    assert [r[0] for r in recorded(owner)] == ["job-2"]  # only the earlier report


def test_a_sale_dated_after_today_by_the_databases_clock_is_refused(
    owner: Engine, api_role: Engine
) -> None:
    put(owner, estimate("job-0"))
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    [refusal] = refused(api_role, {"request_id": "job-0", "price": 5e5, "date": tomorrow})
    assert (refusal.row, refusal.field) == (0, "date")
    assert refusal.reason == f"{tomorrow} is in the future (today is {today}, UTC)"
    report(api_role, {"request_id": "job-0", "price": 5e5, "date": today.isoformat()})


def test_a_kind_without_months_takes_the_day_the_estimate_was_made(
    owner: Engine, api_role: Engine
) -> None:
    put(owner, estimate("base-0", model_kind="baseline", as_of=None, low_80=None, high_80=None))
    day_before = (MADE - timedelta(days=1)).date().isoformat()
    [refusal] = refused(api_role, {"request_id": "base-0", "price": 5e5, "date": day_before})
    assert refusal.reason.startswith(f"the sale ({day_before}) is before estimate base-0 was made")
    report(api_role, {"request_id": "base-0", "price": 5e5, "date": MADE.date().isoformat()})


def test_a_sale_by_the_house_scores_its_latest_estimate(owner: Engine, api_role: Engine) -> None:
    older = estimate("old", created_at=MADE - timedelta(days=3))
    other = estimate("other", house=MINIMAL_HOUSE | {"zipcode": "98103"})
    newer = estimate("new", house=MINIMAL_HOUSE | {"lat": 47.5354, "long": -122.273})
    put(owner, older, newer, other)
    # the house as a CSV gives it: every number a float; more fields than the 8 narrow it
    given = {k: (float(v) if k != "zipcode" else v) for k, v in MINIMAL_HOUSE.items()}
    done = report(api_role, given | {"lat": 47.5354, "price": 600_000, "date": "2015-03-01"})
    assert (done.sales, done.by_house) == (1, 1)
    with owner.connect() as connection:
        row = connection.execute(select(sales.c.request_id, sales.c.house)).one()
    assert row.request_id == "new"
    assert row.house == MINIMAL_HOUSE | {"lat": 47.5354}


def test_a_house_with_no_estimate_and_a_second_sale_of_one_are_refused(
    owner: Engine, api_role: Engine
) -> None:
    put(owner, estimate("only"))
    sold = {**MINIMAL_HOUSE, "price": 600_000, "date": "2015-03-01"}
    refusals = refused(api_role, sold, sold, {**sold, "sqft_lot": 5044})
    assert [(r.row, r.field, r.reason) for r in refusals] == [
        (1, None, "row 0 already reports the sale of estimate only"),
        (2, None, "no recorded estimate of a house with these fields"),
    ]


def test_the_live_figures_read_back_what_was_recorded(
    owner: Engine, api_role: Engine, postgres: Postgres
) -> None:
    """Accuracy from the sales joined to their estimates, each version and variant its own
    window of the latest sales; drift over the latest estimates of a version with a profile."""
    put(
        owner,
        *(
            estimate(f"a-{i}", prediction=p)
            for i, p in enumerate([90e3, 210e3, 300e3, 250e3, 600e3])
        ),
        estimate("m-0", variant="minimal", prediction=100e3),
        estimate("v2-0", model_version="v2", created_at=MADE + timedelta(hours=1)),
    )
    prices = [100e3, 200e3, 400e3, 250e3, 500e3]
    report(
        api_role,
        *(
            {"request_id": f"a-{i}", "price": p, "date": f"2015-03-0{i + 1}"}
            for i, p in enumerate(prices)
        ),
        {"request_id": "m-0", "price": 125_000, "date": "2015-03-01"},
    )
    settings = postgres.settings("api", accuracy_window_sales=4, drift_window_requests=1)
    profile = training_profile({"sqft_living": [1000.0, 2000.0]}, {}, [4e5, 6e5], "x")
    with api_role.connect() as connection:
        rows = read_rows(connection, ["v2"], settings)
    snapshot = snapshot_of(rows, {"v1": None, "v2": profile, "v3": profile}, settings)
    by_variant = {(a.version, a.variant): a.figures for a in snapshot.accuracy}
    assert set(by_variant) == {("v1", "full"), ("v1", "minimal")}
    full = by_variant[("v1", "full")]
    # the latest 4 by sale date: a-1..a-4, signed errors +5, -25, 0, +20 %
    assert full.n == 4
    assert full.median_ape == pytest.approx(0.125)
    assert full.ppe10 == pytest.approx(0.5) and full.ppe20 == pytest.approx(0.75)
    assert full.bias == pytest.approx(0.025)
    # 80 % ranges 450k-550k: only a-4's 500k inside
    assert full.coverage_80 == pytest.approx(0.25) and full.coverage_95 is None
    assert by_variant[("v1", "minimal")].bias == pytest.approx(-0.2)
    drifts = {d.version: d for d in snapshot.drift}
    assert drifts["v1"].note == NO_PROFILE and drifts["v3"].note == NO_ESTIMATES
    assert drifts["v2"].drift is not None and drifts["v2"].drift.requests == 1
    with owner.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(sales)) == 6
