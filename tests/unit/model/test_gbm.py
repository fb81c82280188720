"""The improved model (bundle kind `gbm`, shared/model/kinds/gbm.py) on the client's real data: it
beats the client's model and the issue's thresholds, its ranges cover what they promise, and its
answers carry factors and warnings. Trained once per session (`trained_gbm`)."""

import math
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from shared.model.bundles import Manifest, load_bundle
from shared.model.comps import ComparableSales
from shared.model.contract import GBM, MINIMAL_FIELDS, cents
from shared.model.demographics import join_demographics
from shared.model.kinds.gbm import GbmModel
from shared.model.market import AsOfError, MarketIndex
from shared.model.predictor import Predictor
from shared.settings import Settings
from shared.tools.training import client_sales_split, load_client_data
from shared.wire.messages import Estimate

METRICS_HIGHER = ("r2", "within_10pct", "within_20pct")
METRICS_LOWER = ("mae", "rmse", "mape", "median_ape")


@pytest.fixture(scope="module")
def predictor(trained_gbm: tuple[Settings, Manifest], bundle_key: SecretStr) -> Predictor:
    settings, manifest = trained_gbm
    return Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))


@pytest.fixture(scope="module")
def test_sales(trained_gbm: tuple[Settings, Manifest]) -> pd.DataFrame:
    return client_sales_split(load_client_data(trained_gbm[0]))[1]


@pytest.fixture(scope="module")
def future(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "future_unseen_examples.csv", dtype={"zipcode": str})


def test_full_model_meets_the_issue_thresholds_on_the_clients_split(
    trained_gbm: tuple[Settings, Manifest],
) -> None:
    test = trained_gbm[1].metrics["test"]
    assert test["rows"] == 5404
    assert test["r2"] >= 0.91
    assert test["mae"] <= 64_000
    assert test["mape"] <= 0.12


@pytest.mark.parametrize("variant", ["full", "minimal"])
def test_each_variant_beats_the_clients_model_on_every_metric(
    trained_gbm: tuple[Settings, Manifest], trained: tuple[Settings, Manifest], variant: str
) -> None:
    metrics = trained_gbm[1].metrics
    mine = metrics["test"] if variant == "full" else metrics["minimal"]["test"]
    client = trained[1].metrics["test"]
    assert round(client["r2"], 3) == 0.728  # the baseline is unchanged
    for name in METRICS_HIGHER:
        assert mine[name] > client[name], name
    for name in METRICS_LOWER:
        assert mine[name] < client[name], name


@pytest.mark.parametrize("variant", ["full", "minimal"])
def test_ranges_cover_held_out_prices_within_2_points_of_nominal(
    predictor: Predictor, test_sales: pd.DataFrame, variant: str
) -> None:
    """Each held-out sale estimated as of its own sale month, as an agent would have had it."""
    months = test_sales["date"].str[:4] + "-" + test_sales["date"].str[4:6]
    answers: dict[int, Estimate] = {}
    for month, rows in test_sales.groupby(months):
        estimates = predictor.estimate(rows, variant, explain=False, as_of=str(month))
        answers |= dict(zip(rows.index, estimates, strict=True))
    ordered = [answers[i] for i in test_sales.index]
    actual = test_sales["price"].to_numpy()
    for level in (80, 95):
        low = np.array([getattr(a, f"interval_{level}").low for a in ordered])
        high = np.array([getattr(a, f"interval_{level}").high for a in ordered])
        assert (low < high).all()
        coverage = ((actual >= low) & (actual <= high)).mean()
        assert abs(coverage - level / 100) <= 0.02, (variant, level, coverage)


def test_ranges_contain_the_price_and_fit_each_home(predictor: Predictor, future) -> None:
    """Ranges nest around the estimate and differ in relative width from home to home: the
    difficulty model widens them where estimates are less reliable."""
    answers = predictor.estimate(future, explain=False)
    for answer in answers:
        price = answer.prediction
        i80, i95 = answer.interval_80, answer.interval_95
        assert i80 is not None and i95 is not None
        assert i95.low < i80.low < price < i80.high < i95.high
    ratios = np.array([a.interval_80.high / a.prediction for a in answers if a.interval_80])
    assert ratios.max() - ratios.min() > 0.05
    fsd = np.array([a.fsd for a in answers])
    assert np.corrcoef(fsd, np.log(ratios))[0, 1] > 0.99  # one difficulty behind both


def test_estimate_price_is_the_predict_price_in_cents(predictor: Predictor, future) -> None:
    prices = predictor.predict(future)
    answers = predictor.estimate(future)
    assert [a.prediction for a in answers] == [cents(p) for p in prices]
    amounts = [
        amount
        for a in answers
        for amount in (
            a.interval_80.low if a.interval_80 else 0.0,
            a.interval_95.high if a.interval_95 else 0.0,
            *(f.effect_usd for f in a.factors),
        )
    ]
    assert all(amount == cents(amount) for amount in amounts)


def test_a_rows_price_does_not_depend_on_its_batch(predictor: Predictor, future) -> None:
    batch = predictor.predict(future)
    single = [predictor.predict(future.iloc[[i]])[0] for i in (0, 42, 99)]
    assert single == [batch[0], batch[42], batch[99]]
    np.testing.assert_array_equal(predictor.predict(future.iloc[::-1]), batch[::-1])


def test_every_answer_explains_itself_in_dollars_and_words(predictor: Predictor, future) -> None:
    answers = predictor.estimate(future.head(5))
    for answer in answers:
        factors = answer.factors
        assert 1 <= len(factors) <= 5
        effects = [abs(f.effect_usd) for f in factors]
        assert effects == sorted(effects, reverse=True)
        for factor in factors:
            assert factor.text.startswith(factor.value + ": ")
            assert "$" in factor.text and factor.text.endswith("k")
    texts = " ".join(f.text for f in answers[0].factors)
    assert "sq ft" in texts or "grade" in texts or "zipcode" in texts


def test_dollar_effects_add_up_to_the_price_minus_the_typical_home(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    model = predictor.bundle.model
    assert isinstance(model, GbmModel)
    variant = model.variant("full")
    houses = join_demographics(future.head(10), predictor.bundle.demographics)
    matrix = variant.matrix(houses)
    prices = variant.predict_matrix(matrix)
    dollars = variant.dollar_contributions(matrix, prices)
    _, base = variant.contributions(matrix)
    np.testing.assert_allclose(dollars.sum(axis=1), prices - np.exp(base), rtol=1e-6)
    assert "living_area" in dollars.columns and "census" in dollars.columns


def test_inputs_inside_the_training_range_give_no_warning(predictor: Predictor, future) -> None:
    assert all(a.warnings == [] for a in predictor.estimate(future, explain=False))


def test_input_outside_the_training_range_is_warned_about(predictor: Predictor, future) -> None:
    house = future.head(1).assign(sqft_living=20_000, sqft_above=20_000, sqft_lot=50)
    for variant in ("full", "minimal"):
        (answer,) = predictor.estimate(house, variant)
        text = " ".join(answer.warnings)
        assert "sqft_living 20,000 is above the largest" in text
        assert "sqft_above" in text
        assert "sqft_lot 50 is below the smallest" in text


def test_minimal_variant_reads_only_the_minimal_fields(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    model = predictor.bundle.model
    minimal = model.variant("minimal")
    assert GBM.variant_request_fields("minimal") == MINIMAL_FIELDS
    assert set(minimal.ranges) == set(MINIMAL_FIELDS) - {"zipcode"}
    demographics = set(minimal.demo_cols)
    house_inputs = [f for f in minimal.features if f not in demographics]
    assert set(house_inputs) <= {*MINIMAL_FIELDS, "zip_level"}
    # Only the 8 fields are needed, and the other columns cannot change the answer.
    only_minimal = future[list(MINIMAL_FIELDS)]
    expected = predictor.predict(only_minimal, "minimal")
    changed = future.assign(grade=13, waterfront=1, view=4, lat=47.7, long=-122.0)
    np.testing.assert_array_equal(predictor.predict(changed, "minimal"), expected)
    assert not np.array_equal(predictor.predict(changed, "full"), predictor.predict(future))


def test_manifest_records_variants_ranges_and_the_lightgbm_version(
    trained_gbm: tuple[Settings, Manifest],
) -> None:
    manifest = trained_gbm[1]
    assert manifest.kind == "gbm"
    assert manifest.libraries["lightgbm"] == package_version("lightgbm")
    variants = manifest.training["variants"]
    assert set(variants) == {"full", "minimal"}
    assert variants["minimal"]["request_fields"] == list(MINIMAL_FIELDS)
    assert variants["full"]["ranges"]["sqft_living"][1] >= 10_000
    difficulty = variants["full"]["difficulty"]
    assert set(difficulty["quantiles"]) == {"80", "95", "68"}
    bands = len(difficulty["band_edges"]) + 1
    assert all(len(q) == bands for q in difficulty["quantiles"].values())
    assert manifest.as_of_months == ["2014-05", "2015-05"]  # what the API checks as_of by
    assert manifest.request_fields == list(GBM.request_fields)
    assert manifest.input_features == variants["full"]["features"]


def test_baseline_answers_both_variants_with_the_same_knn_and_no_extras(
    trained: tuple[Settings, Manifest], future: pd.DataFrame, bundle_key: SecretStr
) -> None:
    settings, manifest = trained
    baseline = Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))
    np.testing.assert_array_equal(
        baseline.predict(future, "minimal"), baseline.predict(future[list(MINIMAL_FIELDS)])
    )
    (answer,) = baseline.estimate(future.head(1), "minimal")
    assert answer.interval_80 is None and answer.interval_95 is None
    assert answer.factors == [] and answer.warnings == []


def test_every_answer_says_its_market_month_grade_and_fsd(predictor: Predictor, future) -> None:
    assert predictor.as_of_months() == ("2014-05", "2015-05")
    assert predictor.default_as_of() == "2015-05"
    for variant in ("full", "minimal"):
        for answer in predictor.estimate(future.head(10), variant, explain=False):
            assert answer.as_of == "2015-05"
            assert answer.confidence in ("A", "B", "C", "D")
            assert answer.fsd is not None and 0.0 < answer.fsd < 0.5
            assert answer.comps == []


def test_an_earlier_as_of_month_moves_the_estimate_by_the_market_index(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    market = predictor.bundle.model.market
    now = predictor.estimate(future.head(5), explain=False)
    then = predictor.estimate(future.head(5), explain=True, as_of="2014-06")
    factor = math.exp(market.shift(market.resolve("2014-06")))
    assert factor < 1  # prices rose over the year
    for a, b in zip(now, then, strict=True):
        assert b.as_of == "2014-06"
        assert b.prediction == pytest.approx(a.prediction * factor, abs=0.02)
        assert b.interval_80.low == pytest.approx(a.interval_80.low * factor, abs=0.02)
        assert b.fsd == a.fsd and b.confidence == a.confidence
    dollars = predictor.bundle.model.variant("full").dollar_contributions
    houses = join_demographics(future.head(5), predictor.bundle.demographics)
    matrix = predictor.bundle.model.variant("full").matrix(houses)
    prices = np.array([b.prediction for b in then])
    effects = dollars(matrix, prices, math.log(factor))
    assert (effects["market"] < 0).all()  # "market of 2014-06" explains the lower price


def test_an_as_of_month_outside_the_data_is_refused_naming_the_range(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    for as_of in ("2015-06", "2014-04", "2015/01"):
        with pytest.raises(AsOfError, match="2014-05 to 2015-05"):
            predictor.estimate(future.head(1), as_of=as_of)


def test_comps_are_returned_on_request_most_similar_first(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    full = predictor.estimate(future.head(3), explain=False, comps=5)
    minimal = predictor.estimate(future.head(3), "minimal", explain=False, comps=3)
    for answer in full:
        assert len(answer.comps) == 5
        assert all(c.distance_miles is not None and c.distance_miles < 5 for c in answer.comps)
        similarity = [c.similarity for c in answer.comps]
        assert similarity == sorted(similarity, reverse=True) and 0 < similarity[-1] <= 1
    for answer in minimal:
        assert len(answer.comps) == 3
        assert all(c.distance_miles is None for c in answer.comps)
    assert Estimate.model_validate(full[0].model_dump()).comps == full[0].comps


def test_the_baseline_ignores_as_of_and_comps(
    trained: tuple[Settings, Manifest], future: pd.DataFrame, bundle_key: SecretStr
) -> None:
    settings, manifest = trained
    baseline = Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))
    assert baseline.as_of_months() is None and baseline.default_as_of() is None
    (answer,) = baseline.estimate(future.head(1), as_of="1999-01", comps=5)
    assert answer.as_of is None and answer.confidence is None and answer.fsd is None
    assert answer.comps == []


def test_the_date_ordered_model_learns_nothing_after_its_cut(data_dir: Path) -> None:
    """Index, comps and calibration of a model fitted on the sales before 2015-03-01 come from
    those sales only: it cannot estimate at a later month and cites no later sale."""
    sales = pd.read_csv(data_dir / "kc_house_data.csv", dtype={"zipcode": str})
    demographics = pd.read_csv(data_dir / "zipcode_demographics.csv", dtype={"zipcode": str})
    earlier = join_demographics(sales[sales["date"] < "20150301"], demographics)
    market = MarketIndex.fit(earlier)
    assert market.months() == ("2014-05", "2015-02")
    comparables = ComparableSales.fit(earlier)
    assert comparables.column("date").max() < 20150301
