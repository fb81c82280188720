"""Drift: how far the homes sent to a version, and its estimates of them, have moved from what
it was trained on, as the population stability index (PSI) of each against the version's
training profile (shared/monitoring/profile.py).

PSI = sum over bins of (a - e) * ln(a / e), with e the training share of a bin and a the share
of the recent requests in it; a share of 0 counts as EPSILON, so an empty bin adds a finite
amount. The usual reading: below 0.1 no shift, 0.1 to 0.25 a moderate one, above 0.25 a
significant one (`drift_psi_alert`).

Sampling alone gives a PSI of about (bins - 1) / n for n requests drawn from the training
distribution itself, so a feature is only judged once it has `min_rows_per_bin` requests per
bin of its profile: 10 per bin keeps that noise near 0.1, under the alert threshold (a decile
profile needs 100 requests; the 70 zipcodes about 710).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.monitoring.profile import TrainingProfile

EPSILON = 1e-4
PREDICTION = "prediction"  # the name the estimates' own drift goes by, beside the features


def psi(expected: Sequence[float], counts: Sequence[int]) -> float:
    """The PSI of observed bin `counts` against the `expected` shares of the same bins
    (ValueError when they differ in length or nothing was observed)."""
    if len(expected) != len(counts):
        raise ValueError(f"{len(counts)} counts for {len(expected)} bins")
    total = sum(counts)
    if total == 0:
        raise ValueError("no observations")
    index = 0.0
    for share, count in zip(expected, counts, strict=True):
        e, a = max(share, EPSILON), max(count / total, EPSILON)
        index += (a - e) * math.log(a / e)
    return index


@dataclass(frozen=True)
class Thresholds:
    """When drift is an alert (the settings `drift_psi_alert`, `drift_min_rows_per_bin` and
    `out_of_range_alert`)."""

    psi_alert: float
    min_rows_per_bin: int
    out_of_range_alert: float


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or the prediction's) PSI over `n` recent requests; `needed` is how many it
    takes before an alert is raised (`psi` is still shown below that)."""

    feature: str
    psi: float | None
    n: int
    needed: int
    alert: bool


@dataclass(frozen=True)
class Drift:
    """A version's drift over its `requests` most recent estimates: per feature and for the
    prediction, and the share of estimates that warned of an input outside the training range."""

    requests: int
    features: list[FeatureDrift]
    out_of_range_share: float | None
    out_of_range_alert: bool

    @property
    def alerts(self) -> list[str]:
        return [f.feature for f in self.features if f.alert]


def _present(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def feature_drift(
    name: str, expected: Sequence[float], counts: Sequence[int], thresholds: Thresholds
) -> FeatureDrift:
    """One feature's PSI, and whether it is an alert: above the threshold, over enough
    requests to tell a shift from chance."""
    n = sum(counts)
    needed = thresholds.min_rows_per_bin * len(expected)
    index = psi(expected, counts) if n else None
    alert = index is not None and n >= needed and index > thresholds.psi_alert
    return FeatureDrift(name, index, n, needed, alert)


def drift(
    profile: TrainingProfile,
    houses: Sequence[Mapping[str, Any]],
    predictions: Sequence[float],
    warnings: Sequence[Sequence[str]],
    thresholds: Thresholds,
) -> Drift:
    """The drift of recent estimates (their houses as recorded, their predictions and warnings,
    one entry each) against `profile`. A feature counts the requests that carried it (a
    `/v1/predict/minimal` request has 8 of the 18)."""
    features = [
        feature_drift(
            name,
            distribution.expected,
            distribution.counts(_present(house.get(name) for house in houses)),
            thresholds,
        )
        for name, distribution in profile.features.items()
    ]
    estimated = profile.prediction
    counts = estimated.counts(_present(predictions))
    features.append(feature_drift(PREDICTION, estimated.expected, counts, thresholds))
    share = sum(1 for w in warnings if w) / len(warnings) if warnings else None
    return Drift(
        requests=len(houses),
        features=features,
        out_of_range_share=share,
        out_of_range_alert=share is not None and share > thresholds.out_of_range_alert,
    )
