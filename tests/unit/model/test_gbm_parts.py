"""Pure parts of the improved model: derived features, out-of-fold location levels, the
conformal quantile, the dollar conversion, and the evaluation's "beats the baseline" check."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shared.model.confidence import conformal_quantile
from shared.model.contract import BASELINE, GBM, MINIMAL_FIELDS, VARIANTS
from shared.model.derived import LocationContext, derive_features
from shared.model.kinds.gbm import VARIANT_CONFIGS, _log_mean, training_matrix
from shared.tools.evaluation import METRICS, _bands, _beats


def _sales(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    living = rng.integers(800, 4000, n)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "price": living * rng.uniform(200, 400, n),
            "sqft_living": living,
            "sqft_lot": rng.integers(2000, 20000, n),
            "sqft_living15": rng.integers(800, 4000, n),
            "yr_built": rng.integers(1900, 2010, n),
            "yr_renovated": 0,
            "zipcode": rng.choice(["98001", "98002", "98003"], n),
            "lat": rng.uniform(47.2, 47.8, n),
            "long": rng.uniform(-122.5, -121.8, n),
        }
    )
    return frame


def test_every_kind_has_both_variants_and_minimal_fields_are_the_endpoints() -> None:
    assert VARIANTS == ("full", "minimal")
    for kind in (BASELINE, GBM):
        assert kind.variant_request_fields("minimal") == MINIMAL_FIELDS
    assert BASELINE.variant_request_fields("full") == MINIMAL_FIELDS
    assert len(GBM.request_fields) == 18 and GBM.request_fields[-1] == "zipcode"
    with pytest.raises(ValueError, match="unknown variant"):
        GBM.variant_features("medium")


def test_zip_level_is_smoothed_towards_the_overall_level() -> None:
    sales = _sales()
    context = LocationContext.fit(sales, neighbours=False)
    level = np.log(sales["price"] / sales["sqft_living"])
    assert context.overall_level == pytest.approx(level.mean())
    for zipcode, values in level.groupby(sales["zipcode"]):
        raw, n = values.mean(), len(values)
        expected = (raw * n + level.mean() * 20) / (n + 20)
        assert context.zip_level[zipcode] == pytest.approx(expected)


def test_derived_features_need_only_the_fields_of_their_groups() -> None:
    sales = _sales()
    context = LocationContext.fit(sales, neighbours=True)
    derived = derive_features(sales, context, ("rotated_coordinates", "ratios", "zip_level"))
    assert derived.index.equals(sales.index)
    assert derived["living_lot_ratio"].tolist() == (sales.sqft_living / sales.sqft_lot).tolist()
    unknown = sales.head(2).assign(zipcode="99999")
    assert (
        derive_features(unknown, context, ("zip_level",))["zip_level"] == context.overall_level
    ).all()
    minimal = sales[["sqft_living", "sqft_lot", "zipcode"]]
    assert list(derive_features(minimal, context, ("ratios", "zip_level"))) == [
        "living_lot_ratio",
        "zip_level",
    ]


def test_nearest_sales_level_averages_the_ten_nearest() -> None:
    sales = _sales()
    context = LocationContext.fit(sales, neighbours=True)
    level, km = context.neighbour_levels(sales.lat.to_numpy()[:1], sales.long.to_numpy()[:1])
    dist = np.hypot(sales.lat - sales.lat[0], (sales.long - sales.long[0]) * math.cos(0.83))
    nearest = np.argsort(dist.to_numpy())[:10]
    expected = np.log(sales.price / sales.sqft_living).to_numpy()[nearest].mean()
    assert level[0] == pytest.approx(expected)
    assert km[0] > 0


def test_nearest_sales_distance_is_the_great_circle_distance_in_km() -> None:
    """The k-d tree measures chords of the unit sphere; the mean distance it reports is the
    arc (haversine) distance, in km."""
    sales = _sales(n=10)
    context = LocationContext.fit(sales, neighbours=True)
    lat, long = np.array([47.5]), np.array([-122.2])
    _, km = context.neighbour_levels(lat, long)
    la1, lo1 = np.deg2rad(lat[0]), np.deg2rad(long[0])
    la2, lo2 = np.deg2rad(sales.lat.to_numpy()), np.deg2rad(sales.long.to_numpy())
    haversine = 2 * np.arcsin(
        np.sqrt(
            np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
        )
    )
    assert km[0] == pytest.approx(haversine.mean() * 6371.0, rel=1e-9)


def test_a_training_sale_never_sees_its_own_price_in_its_location_features() -> None:
    sales = _sales()
    config = replace(
        VARIANT_CONFIGS["full"],
        house_features=("sqft_living", "lat", "long"),
        derived=("zip_level", "neighbour_level"),
    )
    matrix, _ = training_matrix(sales, config, demo_cols=[])
    changed = sales.copy()
    changed.loc[0, "price"] *= 10
    matrix_changed, _ = training_matrix(changed, config, demo_cols=[])
    for column in ("zip_level", "neighbour_level"):
        assert matrix_changed.loc[0, column] == matrix.loc[0, column]
        assert not matrix_changed[column].equals(matrix[column])  # others do see it


def test_conformal_quantile_is_the_finite_sample_quantile() -> None:
    scores = np.arange(9, 0, -1) / 100  # 0.09 … 0.01, in any order
    assert conformal_quantile(scores, 0.80) == pytest.approx(0.08)  # ceil(10 * 0.8) = 8th
    assert conformal_quantile(scores, 0.95) == pytest.approx(0.09)  # 10th > n: the largest


def test_log_mean_converts_log_effects_to_dollars_stably() -> None:
    a, b = np.array([200.0, 100.0, 50.0]), np.array([100.0, 100.0, 100.0])
    rate = _log_mean(a, b)
    assert rate[0] == pytest.approx(100 / math.log(2))
    assert rate[1] == 100.0
    assert rate[2] * (math.log(50) - math.log(100)) == pytest.approx(-50)


def test_price_bands_cover_every_price() -> None:
    bands = _bands(pd.Series([75_000, 299_999, 300_000, 7_700_000]))
    assert bands.isna().sum() == 0
    assert bands.cat.categories[0] == "$0k-300k" and bands.cat.categories[-1] == "$2,000k+"


def test_beats_lists_each_metric_where_a_challenger_is_not_better() -> None:
    good = {"r2": 0.9, "mae": 1, "rmse": 1, "mape": 0.1, "median_ape": 0.1}
    good |= {"within_10pct": 0.6, "within_20pct": 0.9}
    bad = {"r2": 0.5, "mae": 5, "rmse": 5, "mape": 0.5, "median_ape": 0.5}
    bad |= {"within_10pct": 0.1, "within_20pct": 0.2}
    cv = {m: {"mean": v} for m, v in good.items()}
    results = {
        "splits": {
            "client": {"baseline": {"test": bad}, "gbm": {"test": good}},
            "temporal": {"baseline": {"test": good}, "gbm": {"test": bad}},
        },
        "cv": {"baseline": cv, "gbm": cv, "gbm_minimal": cv},
    }
    beats = _beats(results)
    assert beats["gbm"]["client"] == []
    assert beats["gbm"]["temporal"] == list(METRICS)
    assert len(beats["gbm"]["cv"]) == 7  # ties are not wins
