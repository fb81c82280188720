"""When `realty market refresh` writes a version (shared/tools/market_refresh.py): only when the
sales on record carry the index further than the bundle's own; and how the held-out protocols
replay a weekly refresh."""

import numpy as np
import pandas as pd
import pytest

from shared.model.market import MarketIndex, month_key
from shared.tools.market_refresh import (
    REPORT_LAG_DAYS,
    RefreshRefused,
    check_refresh,
    weekly_factors,
)

FEB, MAR, APR = month_key(2015, 2), month_key(2015, 3), month_key(2015, 4)
TRAINED = MarketIndex(month_key(2014, 5), tuple(np.linspace(-0.04, 0, 10)), FEB)


def _sold(*months: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.concatenate([np.full(n, m) for m, n in months])
    return keys, np.full(len(keys), 0.03)


def test_a_refresh_that_carries_the_index_further_is_written() -> None:
    months, ratios = _sold((MAR, 250), (APR, 250))
    check_refresh("v2", TRAINED, TRAINED.extended(months, ratios), months)  # no refusal


def test_a_refresh_that_changes_nothing_is_refused_and_says_what_is_missing() -> None:
    months, ratios = _sold((MAR, 120))
    with pytest.raises(
        RefreshRefused, match=r"needs 200 sales on record \(latest month: 120 in 2015-03\)"
    ):
        check_refresh("v2", TRAINED, TRAINED.extended(months, ratios), months)


def test_a_refresh_that_would_drop_months_the_index_knew_is_refused() -> None:
    """v3 knew April from 250 sales; their estimates were purged since, 40 are left."""
    refreshed = TRAINED.extended(*_sold((MAR, 250), (APR, 250)))
    months, ratios = _sold((MAR, 250), (APR, 40))
    with pytest.raises(RefreshRefused, match="back from 2015-04 to 2015-03"):
        check_refresh("v3", refreshed, refreshed.extended(months, ratios), months)


def _sales_on(*days: tuple[np.datetime64, int]) -> pd.DataFrame:
    dates = [f"{str(day).replace('-', '')}T000000" for day, n in days for _ in range(n)]
    return pd.DataFrame({"date": dates})


DAY = np.timedelta64(1, "D")
FIRST = np.datetime64("2015-03-02")  # the replay's weeks start here, the first sale's day
REFRESH = FIRST + 21 * DAY  # a refresh: the start of the fourth week


@pytest.mark.parametrize(
    ("closed", "moved"),
    [(REFRESH - REPORT_LAG_DAYS * DAY, False), (REFRESH - (REPORT_LAG_DAYS + 1) * DAY, True)],
    ids=["closed-lag-days-before-is-not-on-record", "closed-a-day-earlier-is"],
)
def test_a_refresh_counts_the_sales_reported_before_its_day(
    closed: np.datetime64, moved: bool
) -> None:
    """March's level needs 200 sales: 199 from the first day and one that closed `closed`. A
    sale is reported REPORT_LAG_DAYS after it closed, and a refresh counts the sales reported
    before its day: the sale of the refresh's week is moved by March's level only if the 200th
    sale was reported by then. No sale ever moves its own estimate."""
    later = _sales_on((FIRST, 199), (closed, 1), (REFRESH, 1))
    factors = weekly_factors(TRAINED, later, np.full(len(later), 0.03))
    assert np.all(factors[:199] == 1.0)
    expected = np.exp(0.03) if moved else 1.0
    assert factors[-1] == pytest.approx(expected)
