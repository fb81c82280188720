"""When `realty market refresh` writes a version (shared/tools/market_refresh.py): only when the
sales on record carry the index further than the bundle's own."""

import numpy as np
import pytest

from shared.model.market import MarketIndex, month_key
from shared.tools.market_refresh import RefreshRefused, check_refresh

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
