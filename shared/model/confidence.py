"""Price ranges that fit the home, the forecast standard deviation (FSD) and a confidence grade.

Normalized split-conformal ranges: a small linear "difficulty model" predicts, from a few of
the estimator's inputs and the estimate itself, how far off an estimate of this home typically
is (sigma, fitted to the log of out-of-fold |log residuals| of the training sales); the conformal
quantile q of the normalised scores |log residual| / sigma then gives each home its own range,
estimate * e^(∓q·sigma). One quantile for every home was too narrow below $300k and above $1M
and wider than needed in between (docs/model_report.md measures both). sigma is cross-fitted
(each training sale's score uses a sigma fitted without its fold), so the quantile is not
flattered by sigma having seen the residual it scales. Linear: at serving time it is one small
matrix product.

Price bands (RANGE_BANDS): sigma alone still left the ranges short for homes that *sell* below
$300k or above $1M (an estimate is pulled toward the middle, so the homes that end up at the
extremes are the ones it missed most), and agents read coverage by sale price. An estimate
cannot know its sale price, so each band's quantile is taken from the training sales that sold
in that band (never narrower than the one for all sales; the overall one for a band with
fewer than MIN_BAND_SALES) and applied to the estimates that fall in it. An approximation, not
a guarantee per band: docs/model_report.md measures coverage per sale-price band and per grade.

FSD is the half-width (in log price, ≈ a fraction of the estimate) of the home's 68 % range: the
sale lands within ±FSD of the estimate about 68 % of the time, the industry's meaning. The
grade is read off the FSD (GRADE_FSD): A below 0.08, B below 0.12, C below 0.18, D otherwise;
docs/model_report.md reports, per grade, the share of sales within 10 % and the range coverage.
"""

import math
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from shared.model.contract import GRADE_FSD, LAST_GRADE

INTERVAL_LEVELS = (0.80, 0.95)
FSD_LEVEL = 0.68
# Estimate bands (dollars at the reference month) with a quantile of their own: below $300k,
# $300k-$1M, from $1M, the report's bands where one quantile fell short (module docstring).
RANGE_BANDS = (300_000.0, 1_000_000.0)
# Fewer training sales than this in a band and it takes the overall quantile: a handful of
# sales would give the 95 % range their largest miss.
MIN_BAND_SALES = 100
GRADES = (*(g for g, _ in GRADE_FSD), LAST_GRADE)
# Inputs of the difficulty model per variant, read from the estimator's matrix; those in
# _LOGGED are taken as logarithms (effects proportional to size).
DIFFICULTY_INPUTS: dict[str, tuple[str, ...]] = {
    "full": (
        "neighbour_km",
        "grade",
        "sqft_living",
        "sqft_lot",
        "yr_built",
        "condition",
        "view",
        "waterfront",
        "lat",
        "long",
    ),
    "minimal": ("sqft_living", "sqft_lot", "bedrooms", "bathrooms", "zip_level"),
}
_LOGGED = frozenset({"neighbour_km", "sqft_living", "sqft_lot"})
_FLOOR = 1e-3  # |log residual| floor before its log: an exact estimate is luck, not ease


def _design(values: np.ndarray, logged: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """[1, log price, (log price)², inputs (logged where flagged)]."""
    x = np.where(logged, np.log(np.maximum(values, _FLOOR)), values)
    lp = np.log(prices)[:, None]
    return np.hstack([np.ones_like(lp), lp, lp**2, x])


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ⌈(n+1)·level⌉-th smallest score: split-conformal's finite-sample quantile."""
    ordered = np.sort(scores)
    n = len(ordered)
    return float(ordered[min(math.ceil((n + 1) * level), n) - 1])


@dataclass(frozen=True)
class Uncertainty:
    """Per row: the FSD, the grade and each range (low, high) in dollars."""

    fsd: np.ndarray
    grades: np.ndarray
    ranges: dict[str, tuple[np.ndarray, np.ndarray]]


def grade(fsd: np.ndarray) -> np.ndarray:
    bounds = np.array([b for _, b in GRADE_FSD])
    return np.array(GRADES)[np.searchsorted(bounds, fsd, side="right")]


@dataclass(frozen=True)
class Difficulty:
    """The fitted difficulty model and the conformal quantiles of its normalised scores."""

    inputs: tuple[str, ...]
    weights: tuple[float, ...]
    # The price bands' edges (RANGE_BANDS when fitted) and, per level ("80", "95", "68"), one
    # multiple of sigma per band: below the first edge, between, from the last.
    band_edges: tuple[float, ...]
    quantiles: dict[str, tuple[float, ...]]

    @classmethod
    def fit(
        cls,
        inputs: tuple[str, ...],
        matrix: pd.DataFrame,
        actual: np.ndarray,
        predicted: np.ndarray,
        folds: list[tuple[Any, Any]],
    ) -> Self:
        """From out-of-fold `predicted` prices of training sales (never a test row) and their
        `matrix`: sigma cross-fitted on `folds` for the scores, then refitted on all rows."""
        values = matrix[list(inputs)].to_numpy(dtype=float)
        logged = np.array([c in _LOGGED for c in inputs])
        design = _design(values, logged, predicted)
        residual = np.abs(np.log(actual) - np.log(predicted))
        target = np.log(np.maximum(residual, _FLOOR))

        def solve(rows: Any) -> np.ndarray:
            return np.linalg.lstsq(design[rows], target[rows], rcond=None)[0]

        sigma = np.empty(len(actual))
        for fit_rows, apply_rows in folds:
            sigma[apply_rows] = np.exp(design[apply_rows] @ solve(fit_rows))
        scores = residual / sigma
        sold_in = np.searchsorted(RANGE_BANDS, actual, side="right")
        # Each band's scores; a band with too few sales is scored as all of them.
        per_band = [scores[sold_in == band] for band in range(len(RANGE_BANDS) + 1)]
        per_band = [b if len(b) >= MIN_BAND_SALES else scores for b in per_band]
        quantiles = {}
        for level in (*INTERVAL_LEVELS, FSD_LEVEL):
            overall = conformal_quantile(scores, level)
            quantiles[f"{round(level * 100)}"] = tuple(
                max(overall, conformal_quantile(band, level)) for band in per_band
            )
        weights = solve(np.arange(len(actual)))
        return cls(inputs, tuple(float(w) for w in weights), RANGE_BANDS, quantiles)

    def sigma(self, matrix: pd.DataFrame, prices: np.ndarray) -> np.ndarray:
        """The expected |log residual| scale of each row. Its inputs are taken by position
        from one array: selecting columns by name in pandas cost more than the model."""
        positions = matrix.columns.get_indexer(self.inputs)
        values = matrix.to_numpy(dtype=float)[:, positions]
        logged = np.array([c in _LOGGED for c in self.inputs])
        return np.exp(_design(values, logged, prices) @ np.asarray(self.weights))

    def uncertainty(self, matrix: pd.DataFrame, prices: np.ndarray, shift: float) -> Uncertainty:
        """Ranges around prices * e^shift (the estimates moved to the as-of month); sigma is read at
        `prices` (the reference month's, which the model was calibrated on), so moving an
        estimate to another month moves its range with it, its width in percent unchanged."""
        sigma = self.sigma(matrix, prices)
        band = np.searchsorted(self.band_edges, prices, side="right")

        def half(level: str) -> np.ndarray:
            return np.asarray(self.quantiles[level])[band] * sigma

        shown = prices * math.exp(shift)
        ranges = {}
        for level in ("80", "95"):
            width = half(level)
            ranges[level] = (shown * np.exp(-width), shown * np.exp(width))
        fsd = half("68")
        return Uncertainty(fsd, grade(fsd), ranges)

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "weights": self.weights,
            "band_edges": self.band_edges,
            "quantiles": self.quantiles,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Self:
        return cls(
            tuple(spec["inputs"]),
            tuple(spec["weights"]),
            tuple(spec["band_edges"]),
            {level: tuple(q) for level, q in spec["quantiles"].items()},
        )
