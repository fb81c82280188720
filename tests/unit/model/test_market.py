"""Today's market (shared/model/market.py): a monthly index learned from training sales only,
as-of months, and AsOfError for months the bundle does not know."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from shared.model.market import (
    AsOfError,
    MarketIndex,
    month_key,
    month_label,
    month_start,
    sale_months,
)

TEMPORAL_CUTOFF = "20150301"


def _sales(n: int = 6000, rise: float = 0.02, seed: int = 0) -> pd.DataFrame:
    """Synthetic sales over 2014-05 … 2015-04 whose prices rise `rise` in log per month, the
    homes otherwise drawn alike every month."""
    rng = np.random.default_rng(seed)
    month = rng.integers(0, 12, n)
    year, mon = 2014 + (month + 4) // 12, (month + 4) % 12 + 1
    living = rng.integers(900, 3500, n).astype(float)
    zipcode = rng.choice(["98001", "98002", "98003"], n)
    zip_effect = pd.Series({"98001": 0.0, "98002": 0.3, "98003": -0.2})[zipcode].to_numpy()
    log_price = 5.5 + np.log(living) + zip_effect + rise * month + rng.normal(0, 0.05, n)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "date": [f"{y:04d}{m:02d}15T000000" for y, m in zip(year, mon, strict=True)],
            "price": np.exp(log_price),
            "bedrooms": 3,
            "bathrooms": 2.0,
            "floors": 1.0,
            "waterfront": 0,
            "view": 0,
            "condition": 3,
            "grade": 7,
            "sqft_living": living,
            "sqft_lot": 5000.0,
            "yr_built": 1980,
            "zipcode": zipcode,
        }
    )


def test_months_are_integers_shown_as_year_month() -> None:
    assert month_label(month_key(2015, 2)) == "2015-02"
    assert month_start(month_key(2014, 12) + 1) == date(2015, 1, 1)
    assert sale_months(pd.DataFrame({"date": ["20141013T000000"]}))[0] == month_key(2014, 10)


def test_the_index_recovers_the_monthly_rise_and_ends_at_zero() -> None:
    index = MarketIndex.fit(_sales(rise=0.02))
    assert index.months() == ("2014-05", "2015-04")
    assert index.log_levels[-1] == 0.0
    assert np.diff(index.log_levels) == pytest.approx(np.full(11, 0.02), abs=0.01)


def test_the_index_holds_the_mix_of_homes_constant() -> None:
    """A month that sold only dear zipcodes' homes is not a dearer market."""
    sales = _sales(rise=0.0)
    late = sale_months(sales) == month_key(2015, 4)
    dear = sales[~late | (sales["zipcode"] == "98002")]
    assert max(abs(v) for v in MarketIndex.fit(dear).log_levels) < 0.02


def test_as_of_defaults_to_the_latest_month_and_refuses_months_it_never_saw() -> None:
    index = MarketIndex.fit(_sales())
    assert index.default_as_of() == "2015-04"
    assert index.resolve(None) == index.resolve("2015-04") == month_key(2015, 4)
    assert index.shift(index.resolve("2014-05")) == pytest.approx(-0.22, abs=0.03)
    for outside in ("2015-05", "2014-04", "2030-01"):
        with pytest.raises(AsOfError, match="2014-05 to 2015-04"):
            index.resolve(outside)
    for malformed in ("2015-13", "2015-1", "May 2015", ""):
        with pytest.raises(AsOfError, match="not a month"):
            index.resolve(malformed)
    assert issubclass(AsOfError, ValueError)  # the API turns it into a 422


def test_training_prices_are_moved_to_the_latest_month() -> None:
    sales = _sales(rise=0.02)
    index = MarketIndex.fit(sales)
    moved = index.to_reference(sales)
    months = sale_months(sales)
    expected = sales["price"] * np.exp(-np.asarray(index.log_levels)[months - index.first_month])
    np.testing.assert_allclose(moved["price"], expected)
    assert (
        moved.loc[months == index.last_month, "price"] == sales["price"][months == index.last_month]
    ).all()


def test_the_index_is_learned_from_training_rows_only() -> None:
    """Fitted on the sales before a cut, the index knows nothing after it: changing every
    later price leaves it unchanged, and it cannot estimate at a later month."""
    sales = _sales()
    earlier = sales[sales["date"] < TEMPORAL_CUTOFF]
    index = MarketIndex.fit(earlier)
    assert index.months()[1] == "2015-02"
    with pytest.raises(AsOfError):
        index.resolve("2015-03")
    inflated = pd.concat([earlier, sales[sales["date"] >= TEMPORAL_CUTOFF].assign(price=1e9)])
    assert MarketIndex.fit(inflated[inflated["date"] < TEMPORAL_CUTOFF]) == index


def test_the_index_round_trips_through_json() -> None:
    index = MarketIndex.fit(_sales())
    assert MarketIndex.from_spec(index.spec()) == index


def _fed_back(months: list[tuple[int, int, int]], log_ratio: float, seed: int = 1) -> tuple:
    """`count` sales in each (year, month, count), sold at e^log_ratio times the estimate at
    the reference month, give or take 10 %."""
    rng = np.random.default_rng(seed)
    keys = np.concatenate([np.full(n, month_key(y, m)) for y, m, n in months])
    return keys, log_ratio + rng.normal(0, 0.1, len(keys))


def test_sales_fed_back_carry_the_index_past_its_training_months() -> None:
    earlier = _sales()
    index = MarketIndex.fit(earlier[earlier["date"] < TEMPORAL_CUTOFF])
    months, ratios = _fed_back([(2015, 3, 300), (2015, 4, 300)], log_ratio=0.04)
    extended = index.extended(months, ratios)
    assert extended.months() == ("2014-05", "2015-04")
    assert extended.default_as_of() == "2015-04"  # estimates are now for the latest month sold
    assert extended.shift(month_key(2015, 4)) == pytest.approx(0.04, abs=0.02)
    # The months the trees learned are untouched: the reference month is still level 0.
    assert extended.log_levels[: len(index.log_levels)] == index.log_levels
    assert extended.shift(extended.reference_month) == 0.0
    assert MarketIndex.from_spec(extended.spec()) == extended


def test_a_month_with_too_few_sales_fed_back_is_not_taken_for_the_market() -> None:
    index = MarketIndex.fit(_sales()[lambda s: s["date"] < TEMPORAL_CUTOFF])
    months, ratios = _fed_back([(2015, 3, 250), (2015, 4, 20)], log_ratio=0.5)
    assert index.extended(months, ratios).default_as_of() == "2015-03"
    assert index.extended(*_fed_back([(2015, 4, 20)], 0.5)) == index  # nothing to go on
    # Sales from before the reference month say nothing of the months after it.
    assert index.extended(*_fed_back([(2014, 12, 500)], 0.5)) == index


def test_a_month_between_known_ones_is_interpolated_and_a_refresh_can_be_refreshed() -> None:
    index = MarketIndex.fit(_sales()[lambda s: s["date"] < TEMPORAL_CUTOFF])
    months, ratios = _fed_back([(2015, 3, 300), (2015, 5, 300)], log_ratio=0.06)
    extended = index.extended(months, ratios)
    assert extended.months()[1] == "2015-05"
    april = extended.shift(month_key(2015, 4))
    assert april == pytest.approx(
        (extended.shift(month_key(2015, 3)) + extended.shift(month_key(2015, 5))) / 2
    )
    assert extended.extended(months, ratios) == extended  # the same sales, the same index
