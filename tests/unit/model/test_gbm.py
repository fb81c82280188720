"""The improved model (bundle kind `gbm`, shared/model/kinds/gbm.py) on the client's real data: it
beats the client's model and the issue's thresholds, its ranges cover what they promise, and its
answers carry factors and warnings. Trained once per session (`trained_gbm`)."""

from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from shared.model.bundles import Manifest, load_bundle
from shared.model.contract import GBM, MINIMAL_FIELDS, cents
from shared.model.demographics import join_demographics
from shared.model.kinds.gbm import GbmModel
from shared.model.predictor import Predictor
from shared.settings import Settings
from shared.tools.training import client_sales_split, load_client_data

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
def test_ranges_cover_held_out_prices_within_3_points_of_nominal(
    predictor: Predictor, test_sales: pd.DataFrame, variant: str
) -> None:
    answers = predictor.estimate(test_sales, variant, explain=False)
    actual = test_sales["price"].to_numpy()
    for level in (80, 95):
        low = np.array([getattr(a, f"interval_{level}").low for a in answers])
        high = np.array([getattr(a, f"interval_{level}").high for a in answers])
        assert (low < high).all()
        coverage = ((actual >= low) & (actual <= high)).mean()
        assert abs(coverage - level / 100) <= 0.03, (variant, level, coverage)


def test_ranges_are_relative_to_the_price_and_contain_it(predictor: Predictor, future) -> None:
    answers = predictor.estimate(future, explain=False)
    for answer in answers:
        price = answer.prediction
        i80, i95 = answer.interval_80, answer.interval_95
        assert i80 is not None and i95 is not None
        assert i95.low < i80.low < price < i80.high < i95.high
    ratios = [a.interval_80.high / a.prediction for a in answers if a.interval_80]
    assert max(ratios) - min(ratios) < 1e-6  # one ratio, up to the rounding to cents


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
    assert set(variants["full"]["interval_log_halfwidths"]) == {"80", "95"}
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
