"""Drift (shared/monitoring/drift.py): the population stability index against a training
profile, when it is an alert, and the share of estimates warning of out-of-range inputs."""

import math
import random

import pytest

from shared.monitoring.drift import EPSILON, PREDICTION, Thresholds, drift, psi
from shared.monitoring.profile import (
    TrainingProfile,
    category_shares,
    numeric_bins,
    training_profile,
)

LIMITS = Thresholds(psi_alert=0.25, min_rows_per_bin=10, out_of_range_alert=0.05)


def test_psi_of_the_training_distribution_itself_is_zero() -> None:
    assert psi([0.25, 0.25, 0.5], [25, 25, 50]) == 0.0
    assert psi([0.25, 0.25, 0.5], [1, 1, 2]) == 0.0


def test_psi_worked_out_by_hand() -> None:
    # actual 0.4 / 0.6 against expected 0.5 / 0.5
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.6 - 0.5) * math.log(0.6 / 0.5)
    assert psi([0.5, 0.5], [40, 60]) == pytest.approx(expected)
    assert expected == pytest.approx(0.0405, abs=1e-4)


def test_an_empty_bin_counts_as_epsilon_not_as_infinity() -> None:
    value = psi([0.5, 0.5], [100, 0])
    expected = (1 - 0.5) * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert value == pytest.approx(expected)
    assert math.isfinite(value)


def test_psi_needs_as_many_counts_as_bins_and_some_observations() -> None:
    with pytest.raises(ValueError, match="3 counts for 2 bins"):
        psi([0.5, 0.5], [1, 2, 3])
    with pytest.raises(ValueError, match="no observations"):
        psi([0.5, 0.5], [0, 0])


def _profile(seed: int = 1) -> tuple[list[float], TrainingProfile]:
    rng = random.Random(seed)
    living = [rng.lognormvariate(7.5, 0.4) for _ in range(5_000)]
    zipcodes = [rng.choice(["98001", "98002", "98003"]) for _ in range(5_000)]
    profile = training_profile(
        {"sqft_living": living}, {"zipcode": zipcodes}, [v * 250 for v in living], "in-sample"
    )
    return living, profile


def test_homes_like_the_training_ones_raise_no_alert() -> None:
    living, profile = _profile()
    rng = random.Random(2)
    sample = rng.sample(range(len(living)), 500)
    zipcodes = ["98001", "98002", "98003"]
    houses = [{"sqft_living": living[i], "zipcode": zipcodes[i % 3]} for i in sample]
    found = drift(profile, houses, [living[i] * 250 for i in sample], [[]] * 500, LIMITS)
    by_name = {f.feature: f for f in found.features}
    assert set(by_name) == {"sqft_living", "zipcode", PREDICTION}
    assert by_name["sqft_living"].psi < 0.1
    assert found.alerts == []
    assert found.out_of_range_share == 0.0 and not found.out_of_range_alert


def test_doubled_living_areas_are_an_alert_on_that_feature_and_the_prediction() -> None:
    living, profile = _profile()
    houses = [{"sqft_living": 2 * v, "zipcode": "98002"} for v in living[:200]]
    found = drift(profile, houses, [2 * v * 250 for v in living[:200]], [[]] * 200, LIMITS)
    by_name = {f.feature: f for f in found.features}
    assert by_name["sqft_living"].psi > 1.0
    assert by_name["sqft_living"].alert
    assert by_name[PREDICTION].alert
    assert "sqft_living" in found.alerts


def test_no_alert_before_enough_estimates_per_bin_however_large_the_psi() -> None:
    living, profile = _profile()
    houses = [{"sqft_living": 2 * v} for v in living[:99]]  # 10 bins need 100
    found = drift(profile, houses, [], [[]] * 99, LIMITS)
    feature = next(f for f in found.features if f.feature == "sqft_living")
    assert feature.psi > 1.0 and feature.needed == 100 and feature.n == 99
    assert not feature.alert
    # the zipcode was not sent at all: no figure, no alert
    zipcode = next(f for f in found.features if f.feature == "zipcode")
    assert zipcode.psi is None and zipcode.n == 0 and not zipcode.alert


def test_an_unknown_zipcode_counts_as_other() -> None:
    shares = category_shares(["98001", "98001", "98002"])
    assert shares.counts(["98001", "99999", "98103"]) == [1, 0, 2]


def test_the_share_of_estimates_warning_of_out_of_range_inputs() -> None:
    living, profile = _profile()
    warnings = [["sqft_living 20,000 is above the largest value"]] * 6 + [[]] * 94
    houses = [{"sqft_living": v} for v in living[:100]]
    found = drift(profile, houses, [], warnings, LIMITS)
    assert found.out_of_range_share == pytest.approx(0.06)
    assert found.out_of_range_alert  # above 5 %
    found = drift(profile, houses, [], [*warnings[1:], []], LIMITS)
    assert found.out_of_range_share == pytest.approx(0.05)
    assert not found.out_of_range_alert


def test_numeric_bins_profile_deciles_and_merge_repeated_cuts() -> None:
    bins = numeric_bins(range(1, 101))
    assert len(bins.cuts) == 9 and bins.shares == [0.1] * 10
    # a column of mostly one value: one bin up to it, one above
    waterfront = numeric_bins([0] * 99 + [1])
    assert waterfront.cuts == [0.0] and waterfront.shares == [0.99, 0.01]
    assert waterfront.counts([0, 0, 1, 1]) == [2, 2]
