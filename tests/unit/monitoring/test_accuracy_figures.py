"""The AVM figures (shared/monitoring/accuracy.py), computed by hand, and `realty evaluate`'s
figures coming from that one definition."""

import numpy as np
import pandas as pd
import pytest

from shared.monitoring.accuracy import accuracy, coverage
from shared.tools.training import range_coverage, regression_metrics

# Five sales and their estimates; signed errors -10 %, +5 %, -25 %, 0 %, +20 %.
PRICES = [100_000.0, 200_000.0, 400_000.0, 250_000.0, 500_000.0]
ESTIMATES = [90_000.0, 210_000.0, 300_000.0, 250_000.0, 600_000.0]


def test_the_figures_of_five_sales_worked_out_by_hand() -> None:
    figures = accuracy(ESTIMATES, PRICES)
    assert figures.n == 5
    assert figures.median_ape == pytest.approx(0.10)  # APEs 0, 5, 10, 20, 25 %
    assert figures.ppe5 == pytest.approx(2 / 5)  # 0 and 5 %
    assert figures.ppe10 == pytest.approx(3 / 5)  # a miss of exactly 10 % counts as within
    assert figures.ppe20 == pytest.approx(4 / 5)  # so does exactly 20 %
    assert figures.over_20 == pytest.approx(1 / 5)
    assert figures.bias == pytest.approx(0.0)  # signed: -25, -10, 0, +5, +20 %
    assert figures.coverage_80 is None and figures.coverage_95 is None


def test_an_even_number_of_sales_takes_the_mean_of_the_middle_two() -> None:
    figures = accuracy([110.0, 90.0, 130.0, 100.0], [100.0] * 4)  # APE 10, 10, 30, 0 %
    assert figures.median_ape == pytest.approx(0.10)
    assert figures.bias == pytest.approx(0.05)  # signed -10, 0, 10, 30 %: mean of 0 and 10
    figures = accuracy([80.0, 90.0, 105.0, 130.0], [100.0] * 4)  # -20, -10, 5, 30 %
    assert figures.bias == pytest.approx((-0.10 + 0.05) / 2)


def test_coverage_counts_prices_on_a_bound_as_inside() -> None:
    lows = [90_000.0, 150_000.0, 350_000.0, 250_000.0, 400_000.0]
    highs = [100_000.0, 190_000.0, 450_000.0, 260_000.0, 480_000.0]
    figures = accuracy(ESTIMATES, PRICES, lows, highs)
    # inside: 100k on its upper bound, 400k, 250k on its lower bound; 200k above, 500k above
    assert figures.coverage_80 == pytest.approx(3 / 5)


def test_coverage_is_over_the_estimates_that_had_a_range() -> None:
    assert coverage([100.0, 100.0, 100.0], [90.0, None, 120.0], [110.0, None, 130.0]) == 0.5
    assert coverage([100.0], [None], [None]) is None


def test_no_sales_and_impossible_prices_are_refused() -> None:
    with pytest.raises(ValueError, match="no sales"):
        accuracy([], [])
    with pytest.raises(ValueError, match="positive"):
        accuracy([100.0], [0.0])
    with pytest.raises(ValueError, match="2 estimates for 1 prices"):
        accuracy([1.0, 2.0], [1.0])


def test_evaluate_reports_the_same_figures_as_numpy_gives_bit_for_bit() -> None:
    """`realty evaluate`'s figures (regression_metrics, range_coverage) now come from the plain
    Python definition; they must equal what NumPy computed before, to the last bit, on data
    with misses exactly on the 10 % and 20 % bounds."""
    rng = np.random.default_rng(7)
    for n in (1, 2, 5403, 4752):
        actual = pd.Series(np.round(rng.lognormal(13, 0.5, n)))
        predicted = actual.to_numpy() * rng.lognormal(0, 0.15, n)
        predicted[: n // 5] = actual.to_numpy()[: n // 5] * 1.2
        values = actual.to_numpy(dtype=float)
        signed = (predicted - values) / values
        ape = np.abs(signed)
        scores = regression_metrics(actual, predicted)
        assert scores["median_ape"] == float(np.median(ape))
        assert scores["within_5pct"] == float((ape <= 0.05).mean())
        assert scores["within_10pct"] == float((ape <= 0.10).mean())
        assert scores["within_20pct"] == float((ape <= 0.20).mean())
        assert scores["over_20pct"] == float((ape > 0.20).mean())
        assert scores["bias"] == float(np.median(signed))
        low, high = predicted * 0.9, predicted * 1.1
        assert range_coverage(actual, low, high) == float(
            ((values >= low) & (values <= high)).mean()
        )
