"""The training profile (shared/monitoring/profile.py) that drift is measured against: built at
training, kept in the signed manifest, absent from older bundles."""

import json

import pytest

from shared.model.bundles import Manifest
from shared.model.contract import HOUSE_COLUMNS, ZIPCODE
from shared.monitoring.profile import (
    OTHER,
    CategoryShares,
    NumericBins,
    TrainingProfile,
    category_shares,
    numeric_bins,
    training_profile,
)
from shared.settings import Settings


def test_a_profile_of_given_columns_and_estimates() -> None:
    profile = training_profile(
        {"bedrooms": [1, 2, 2, 3, None], "sqft_living": [float(v) for v in range(100, 1100)]},
        {ZIPCODE: ["98001", "98002", None, "98001"]},
        [float(v) for v in range(1000)],
        "in-sample",
    )
    assert list(profile.features) == ["bedrooms", "sqft_living", ZIPCODE]
    assert profile.rows == 1000
    bedrooms = profile.features["bedrooms"]
    assert isinstance(bedrooms, NumericBins)
    assert sum(bedrooms.shares) == pytest.approx(1.0)  # the missing value is left out
    zipcodes = profile.features[ZIPCODE]
    assert isinstance(zipcodes, CategoryShares)
    assert zipcodes.shares == {
        "98001": pytest.approx(2 / 3),
        "98002": pytest.approx(1 / 3),
        OTHER: 0,
    }
    assert profile.prediction.shares == [0.1] * 10


def test_deciles_interpolate_as_numpy_does() -> None:
    import numpy as np

    values = [float(v) for v in np.random.default_rng(3).lognormal(7.5, 0.4, 2_001)]
    expected = np.quantile(values, np.arange(1, 10) / 10)
    assert numeric_bins(values).cuts == pytest.approx(list(expected), rel=1e-12)


def test_nothing_to_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        numeric_bins([None, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        category_shares([None])


def test_a_profile_survives_the_manifest_json_round_trip() -> None:
    profile = training_profile({"floors": [1.0, 2.0]}, {ZIPCODE: ["98001"]}, [1.0, 2.0], "x")
    again = TrainingProfile.model_validate_json(profile.model_dump_json())
    assert again == profile
    assert isinstance(again.features[ZIPCODE], CategoryShares)


def test_trained_bundles_carry_a_profile_of_every_house_column(
    trained: tuple[Settings, Manifest],
) -> None:
    manifest = trained[1]
    assert manifest.profile is not None
    numeric = [c for c in HOUSE_COLUMNS if c != ZIPCODE]
    assert list(manifest.profile.features) == [*numeric, ZIPCODE]
    assert manifest.profile.rows == manifest.metrics["train"]["rows"]
    assert manifest.profile.prediction_source == "in-sample estimates"
    living = manifest.profile.features["sqft_living"]
    assert isinstance(living, NumericBins)
    assert len(living.cuts) == 9 and sum(living.shares) == pytest.approx(1.0)


def test_a_manifest_written_before_profiles_still_reads(trained: tuple[Settings, Manifest]) -> None:
    older = json.loads(trained[1].model_dump_json())
    del older["profile"]
    assert Manifest.model_validate(older).profile is None
