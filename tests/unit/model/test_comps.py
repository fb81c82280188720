"""Comparable sales (shared/model/comps.py): the documented rule, the minimal variant's
zipcode rule, prices moved by the market index, and the held-out test of the issue: comps drawn
from the sales before the date-ordered cut, as an estimate of the later sales by themselves."""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.model import comps
from shared.model.comps import MAX_COMPS, ComparableSales
from shared.model.contract import GBM
from shared.model.market import MarketIndex, month_key

CUTOFF = "20150301"


@pytest.fixture(scope="module")
def sales(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "kc_house_data.csv", dtype={"zipcode": str})


@pytest.fixture(scope="module")
def holdout(sales: pd.DataFrame) -> tuple[ComparableSales, MarketIndex, pd.DataFrame]:
    """Comps and index from the earlier sales only; the later sales to price."""
    earlier, later = sales[sales["date"] < CUTOFF], sales[sales["date"] >= CUTOFF]
    return ComparableSales.fit(earlier), MarketIndex.fit(earlier), later


def _house(**changes: float | str) -> pd.DataFrame:
    house = {
        "lat": 47.55,
        "long": -122.30,
        "grade": 7.0,
        "sqft_living": 1800.0,
        "bedrooms": 3.0,
        "bathrooms": 2.0,
        "sqft_lot": 5000.0,
        "sqft_above": 1800.0,
        "zipcode": "98118",
    }
    return pd.DataFrame([house | changes])


def _source(rows: list[dict[str, float | str]]) -> ComparableSales:
    base = _house().iloc[0].to_dict() | {"price": 500_000.0, "date": "20150215T000000"}
    frame = pd.DataFrame([base | row for row in rows])
    return ComparableSales.fit(frame.assign(id=np.arange(len(frame)) + 1))


def _index() -> MarketIndex:
    # 2014-05 … 2015-05, rising 1 % a month in log; the latest month is 0.
    return MarketIndex(month_key(2014, 5), tuple((np.arange(13) - 12) / 100), month_key(2015, 5))


def test_the_rule_prefers_near_recent_similar_sales() -> None:
    source = _source(
        [
            {},  # identical, same month
            {"lat": 47.58},  # two miles north
            {"sqft_living": 2600.0},  # 44 % larger
            {"grade": 9.0},  # two grades better
            {"date": "20140515T000000"},  # nine months earlier
        ]
    )
    (comps,) = source.find(_house(), month_key(2015, 2), 5, _index())
    assert comps[0].id == "1"
    assert comps[0].similarity == 1.0 and comps[0].distance_miles == 0.0
    assert [c.similarity for c in comps] == sorted((c.similarity for c in comps), reverse=True)
    two_miles = next(c for c in comps if c.id == "2")
    assert two_miles.distance_miles == pytest.approx(2.07, abs=0.01)  # 0.03° of latitude
    assert two_miles.similarity < next(c for c in comps if c.id == "3").similarity


def test_prices_are_moved_to_the_as_of_month_by_the_index() -> None:
    source = _source([{"date": "20140515T000000", "price": 400_000.0}])
    (comps,) = source.find(_house(), month_key(2015, 5), 1, _index())
    assert comps[0].sale_date == "2014-05-15" and comps[0].price == 400_000.0
    assert comps[0].price_as_of == pytest.approx(400_000 * np.exp(0.12), abs=0.01)
    (earlier,) = source.find(_house(), month_key(2014, 5), 1, _index())
    assert earlier[0].price_as_of == 400_000.0


def test_minimal_houses_get_comps_of_their_own_zipcode_without_distances() -> None:
    source = _source([{"zipcode": "98118"}, {"zipcode": "98001", "lat": 47.55}])
    minimal = _house().drop(columns=["lat", "long", "grade"])
    (comps,) = source.find(minimal, month_key(2015, 2), 5, _index())
    assert [c.id for c in comps] == ["1"]  # the other zipcode is never offered
    assert comps[0].distance_miles is None and comps[0].grade == 7.0


def test_the_minimal_rule_prefers_a_like_lot_and_a_like_share_above_ground() -> None:
    """Without coordinates, lot size and the share of the home above ground stand in for where
    in the zipcode and what kind of house it is."""
    source = _source([{"sqft_lot": 40_000.0}, {"sqft_above": 900.0}, {"sqft_lot": 5500.0}])
    minimal = _house().drop(columns=["lat", "long", "grade"])
    (comps,) = source.find(minimal, month_key(2015, 2), 3, _index())
    assert [c.id for c in comps] == ["3", "2", "1"]


def test_zero_comps_cost_nothing_and_ten_is_the_most() -> None:
    source = _source([{}] * 12)
    assert source.find(_house(), month_key(2015, 2), 0, _index()) == [[]]
    (comps,) = source.find(_house(), month_key(2015, 2), 50, _index())
    assert len(comps) == MAX_COMPS


def _as_estimates(
    source: ComparableSales, market: MarketIndex, later: pd.DataFrame, variant: str
) -> tuple[float, list]:
    """The share of `later` sales that the median of 5 comps' moved prices lands within 15 %
    of (priced as of the latest month `market` learned), and the comps."""
    houses = later[list(GBM.variant_request_fields(variant))]
    comps = source.find(houses, market.last_month, 5, market)
    estimate = np.array([np.median([c.price_as_of for c in row]) for row in comps])
    actual = later["price"].to_numpy()
    return float((np.abs(estimate - actual) / actual <= 0.15).mean()), comps


@pytest.mark.parametrize("variant", ["full", "minimal"])
def test_comps_of_the_earlier_sales_price_the_later_ones_within_15_percent(
    holdout: tuple[ComparableSales, MarketIndex, pd.DataFrame], variant: str
) -> None:
    """The issue's held-out test: the median of 5 comps' moved prices, as an estimate by
    itself, lands within 15 % of the sale for at least 60 % of the 4,752 later homes, by the
    full rule and by the minimal one (its own zipcode, no coordinates)."""
    source, market, later = holdout
    assert len(later) == 4752
    within, comps = _as_estimates(source, market, later, variant)
    assert within >= 0.60, within
    later_dates = {f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in later["date"]}
    assert not later_dates & {c.sale_date for row in comps for c in row}  # no future sale cited


def test_comps_for_a_micro_batch_take_a_few_milliseconds(
    holdout: tuple[ComparableSales, MarketIndex, pd.DataFrame],
) -> None:
    source, market, later = holdout
    batch = later[list(GBM.variant_request_fields("full"))].head(30)
    source.find(batch, market.last_month, 5, market)  # the tree is built once per process
    started = time.perf_counter()
    for _ in range(20):
        source.find(batch, market.last_month, 5, market)
    assert (time.perf_counter() - started) / 20 < 0.010


def test_comps_round_trip_through_plain_arrays(tmp_path: Path) -> None:
    from shared.model.files import BundleFiles

    source = _source([{}, {"grade": 8.0}])
    names = source.save(tmp_path)
    loaded = ComparableSales.load(BundleFiles(tmp_path, frozenset(names)))
    np.testing.assert_array_equal(loaded.sales, source.sales)
    assert loaded.ids.dtype == np.int64


def test_the_minimal_rule_s_lot_and_above_ground_terms_were_chosen_on_training_sales(
    sales: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How the two terms were chosen, without the holdout: among the sales before the
    date-ordered cut, the comps of those from 2014-12 on, drawn from the earlier ones, with
    and without the terms (a unit of infinity drops a term). `pytest -s` prints the figures
    docs/model_report.md quotes."""
    earlier = sales[sales["date"] < CUTOFF]
    fit, held = earlier[earlier["date"] < "20141201"], earlier[earlier["date"] >= "20141201"]
    market = MarketIndex.fit(fit)
    with_terms, _ = _as_estimates(ComparableSales.fit(fit), market, held, "minimal")
    monkeypatch.setattr(comps, "LOT_UNIT", np.inf)
    monkeypatch.setattr(comps, "ABOVE_UNIT", np.inf)
    without, _ = _as_estimates(ComparableSales.fit(fit), market, held, "minimal")
    print(f"within 15 %: {without:.1%} without the terms, {with_terms:.1%} with them")
    assert with_terms > without + 0.02
