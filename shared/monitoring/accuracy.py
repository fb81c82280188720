"""The AVM industry's accuracy figures, one definition for `realty evaluate`'s held-out sales
and for the sale prices fed back to the running service.

An estimate's signed error is (estimate - price) / price; its APE the absolute value of that.
- median APE: the median of the APEs (half the estimates miss by less);
- PPE5 / PPE10 / PPE20: the share of estimates with APE <= 5 / 10 / 20 %;
- over 20 %: the share with APE > 20 % (1 - PPE20);
- bias: the median signed error (negative: estimates run low);
- coverage: the share of prices inside an estimate's range, bounds included.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

# The PPE thresholds, as fractions of the sale price.
PPE = (0.05, 0.10, 0.20)


@dataclass(frozen=True)
class Accuracy:
    """The figures of `n` estimates against their sale prices; shares and errors are fractions
    (0.1 = 10 %). A coverage is None when no estimate had that range (a kind without ranges)."""

    n: int
    median_ape: float
    ppe5: float
    ppe10: float
    ppe20: float
    over_20: float
    bias: float
    coverage_80: float | None = None
    coverage_95: float | None = None


def signed_errors(predictions: Sequence[float], prices: Sequence[float]) -> list[float]:
    """(estimate - price) / price per sale; ValueError for a price that is not positive."""
    if len(predictions) != len(prices):
        raise ValueError(f"{len(predictions)} estimates for {len(prices)} prices")
    errors = []
    for predicted, price in zip(predictions, prices, strict=True):
        if not price > 0:
            raise ValueError(f"a sale price must be positive, not {price}")
        errors.append((predicted - price) / price)
    return errors


def share_within(errors: Sequence[float], threshold: float) -> float:
    """The share of `errors` whose absolute value is at most `threshold` (a PPE)."""
    return sum(1 for e in errors if abs(e) <= threshold) / len(errors)


def coverage(
    prices: Sequence[float], lows: Sequence[float | None], highs: Sequence[float | None]
) -> float | None:
    """The share of prices inside [low, high], over the estimates that had a range; None when
    none had one."""
    ranged = [
        low <= price <= high
        for price, low, high in zip(prices, lows, highs, strict=True)
        if low is not None and high is not None
    ]
    return sum(ranged) / len(ranged) if ranged else None


def _coverage_if_given(
    prices: Sequence[float],
    lows: Sequence[float | None] | None,
    highs: Sequence[float | None] | None,
) -> float | None:
    return None if lows is None or highs is None else coverage(prices, lows, highs)


def accuracy(
    predictions: Sequence[float],
    prices: Sequence[float],
    low_80: Sequence[float | None] | None = None,
    high_80: Sequence[float | None] | None = None,
    low_95: Sequence[float | None] | None = None,
    high_95: Sequence[float | None] | None = None,
) -> Accuracy:
    """The figures of estimates against the prices the homes sold for (ValueError for none)."""
    if not prices:
        raise ValueError("no sales to measure accuracy on")
    signed = signed_errors(predictions, prices)
    ape = [abs(e) for e in signed]
    within = [share_within(signed, t) for t in PPE]
    return Accuracy(
        n=len(signed),
        median_ape=median(ape),
        ppe5=within[0],
        ppe10=within[1],
        ppe20=within[2],
        over_20=sum(1 for e in ape if e > PPE[-1]) / len(ape),
        bias=median(signed),
        coverage_80=_coverage_if_given(prices, low_80, high_80),
        coverage_95=_coverage_if_given(prices, low_95, high_95),
    )
