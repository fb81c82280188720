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


def _sales_on(*days: tuple[str, int]) -> pd.DataFrame:
    dates = [f"{day}T000000" for day, n in days for _ in range(n)]
    return pd.DataFrame({"date": dates})


def test_the_replay_moves_a_week_only_by_the_sales_reported_before_it_began() -> None:
    """March's level needs 200 sales, and a sale is on record REPORT_LAG_DAYS after it closed:
    the 200th sale (03-10) is not on record when its own week (from 03-09) or the next one
    (from 03-16) begins, so neither is moved; the week from 03-30 is, by March's level."""
    assert REPORT_LAG_DAYS == 14
    later = _sales_on(("20150302", 199), ("20150310", 1), ("20150316", 1), ("20150330", 1))
    factors = weekly_factors(TRAINED, later, np.full(len(later), 0.03))
    assert np.all(factors[:201] == 1.0)
    assert factors[201:] == pytest.approx(np.exp(0.03))
