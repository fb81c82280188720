"""Ranges that fit the home (shared/model/confidence.py): normalized conformal ranges, wider
where the difficulty model expects larger errors, with the FSD and a grade read off it."""

import numpy as np
import pandas as pd
import pytest

from shared.model.confidence import GRADE_FSD, Difficulty, grade


def _residuals(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Homes whose estimates err four times more in one half (`hard` = 1) than the other."""
    rng = np.random.default_rng(seed)
    hard = rng.integers(0, 2, n).astype(float)
    predicted = np.full(n, 500_000.0)
    actual = predicted * np.exp(rng.normal(0, 0.05 + 0.15 * hard))
    return pd.DataFrame({"hard": hard, "other": rng.normal(size=n)}), actual, predicted


def _folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    parts = np.array_split(np.arange(n), 5)
    return [(np.concatenate(parts[:i] + parts[i + 1 :]), parts[i]) for i in range(5)]


def test_ranges_are_wider_where_the_difficulty_model_expects_larger_errors() -> None:
    matrix, actual, predicted = _residuals()
    difficulty = Difficulty.fit(("hard", "other"), matrix, actual, predicted, _folds(len(actual)))
    result = difficulty.uncertainty(matrix, predicted, 0.0)
    low, high = result.ranges["80"]
    hard = matrix["hard"].to_numpy() == 1
    width = np.log(high / low)
    assert width[hard].mean() / width[~hard].mean() == pytest.approx(4, rel=0.25)
    inside = (actual >= low) & (actual <= high)
    for group in (hard, ~hard):  # each kind of home gets what the range promises
        assert inside[group].mean() == pytest.approx(0.80, abs=0.03)
    low95, high95 = result.ranges["95"]
    assert ((actual >= low95) & (actual <= high95)).mean() == pytest.approx(0.95, abs=0.02)


def test_fsd_is_the_68_percent_half_width_and_the_grade_follows_it() -> None:
    matrix, actual, predicted = _residuals()
    difficulty = Difficulty.fit(("hard", "other"), matrix, actual, predicted, _folds(len(actual)))
    result = difficulty.uncertainty(matrix, predicted, 0.0)
    within = np.abs(np.log(actual / predicted)) <= result.fsd
    assert within.mean() == pytest.approx(0.68, abs=0.03)
    hard = matrix["hard"].to_numpy() == 1
    assert set(result.grades[~hard]) == {"A"} and set(result.grades[hard]) == {"D"}


def test_grades_split_the_fsd_at_the_documented_thresholds() -> None:
    assert dict(GRADE_FSD) == {"A": 0.08, "B": 0.12, "C": 0.18}
    fsd = np.array([0.02, 0.0799, 0.08, 0.11, 0.12, 0.179, 0.18, 0.5])
    assert grade(fsd).tolist() == ["A", "A", "B", "B", "C", "C", "D", "D"]


def test_moving_an_estimate_to_another_month_moves_its_range_with_it() -> None:
    matrix, actual, predicted = _residuals(n=1000)
    difficulty = Difficulty.fit(("hard", "other"), matrix, actual, predicted, _folds(1000))
    here = difficulty.uncertainty(matrix, predicted, 0.0)
    later = difficulty.uncertainty(matrix, predicted, 0.05)
    for level in ("80", "95"):
        np.testing.assert_allclose(later.ranges[level][0], here.ranges[level][0] * np.exp(0.05))
    np.testing.assert_array_equal(later.fsd, here.fsd)


def test_the_difficulty_model_round_trips_through_json() -> None:
    matrix, actual, predicted = _residuals(n=500)
    difficulty = Difficulty.fit(("hard", "other"), matrix, actual, predicted, _folds(500))
    assert Difficulty.from_spec(difficulty.spec()) == difficulty
