"""A bundle's training profile: how its training homes and its estimates of them were
distributed, written into the manifest at training so that drift can be measured later against
exactly what that version learned from (shared/monitoring/drift.py).

Each numeric house column and the prediction get decile bins: the nine deciles of the training
values are the cut points (repeated ones merged, so a column of a few values, like `waterfront`,
gets one bin per value range that holds rows), and each bin keeps the share of training rows in
it. The zipcode keeps the share of each zipcode, plus OTHER (none at training) for any other.
"""

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from statistics import quantiles
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

DECILES = 10
OTHER = "other"


class NumericBins(BaseModel):
    """Bin i holds the values v with cuts[i-1] < v <= cuts[i]; the first has no lower bound,
    the last (i = len(cuts)) no upper one."""

    kind: Literal["numeric"] = "numeric"
    cuts: list[float]
    shares: list[float]

    @property
    def expected(self) -> list[float]:
        """The training share of each bin, in the order of `counts`."""
        return self.shares

    def counts(self, values: Iterable[Any]) -> list[int]:
        """How many of `values` (numbers) fall in each bin."""
        counts = [0] * (len(self.cuts) + 1)
        for value in values:
            counts[bisect_left(self.cuts, float(value))] += 1
        return counts


class CategoryShares(BaseModel):
    """The share of each category; a value not among them counts as OTHER."""

    kind: Literal["category"] = "category"
    shares: dict[str, float]

    @property
    def expected(self) -> list[float]:
        """The training share of each category, in the order of `counts`."""
        return list(self.shares.values())

    def counts(self, values: Iterable[Any]) -> list[int]:
        """How many of `values` (as text) are each category."""
        found = Counter(str(v) if str(v) in self.shares else OTHER for v in values)
        return [found[category] for category in self.shares]


Distribution = Annotated[NumericBins | CategoryShares, Field(discriminator="kind")]


class TrainingProfile(BaseModel):
    """The distributions of a bundle's training rows: each house column it was given and its
    own estimates of those homes."""

    rows: int
    features: dict[str, Distribution]
    prediction: NumericBins
    prediction_source: str = Field(
        description="Which estimates of the training homes: out-of-fold ones where training "
        "had them (as a new home is estimated by a model that never saw it), else in-sample."
    )


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def numeric_bins(values: Iterable[float | None]) -> NumericBins:
    """Decile bins of `values` (missing and non-finite ones left out; ValueError for none)."""
    ordered = sorted(_finite(values))
    if not ordered:
        raise ValueError("no values to profile")
    # `inclusive`: the deciles of the data itself, interpolated as NumPy's default does.
    deciles = quantiles(ordered, n=DECILES, method="inclusive") if len(ordered) > 1 else []
    bins = NumericBins(cuts=sorted(set(deciles)), shares=[])
    bins.shares = [count / len(ordered) for count in bins.counts(ordered)]
    return bins


def category_shares(values: Iterable[str | None]) -> CategoryShares:
    """The share of each value (missing ones left out), and OTHER at 0."""
    present = [str(v) for v in values if v is not None]
    if not present:
        raise ValueError("no values to profile")
    counts = Counter(present)
    shares = {value: count / len(present) for value, count in sorted(counts.items())}
    return CategoryShares(shares=shares | {OTHER: 0.0})


def training_profile(
    numeric: dict[str, Sequence[float | None]],
    categorical: dict[str, Sequence[str | None]],
    predictions: Sequence[float],
    prediction_source: str,
) -> TrainingProfile:
    """The profile of training rows given column by column (`categorical` ones profiled by
    value, `numeric` ones by decile) and of the model's estimates of them."""
    features: dict[str, NumericBins | CategoryShares] = {
        name: numeric_bins(values) for name, values in numeric.items()
    }
    features |= {name: category_shares(values) for name, values in categorical.items()}
    return TrainingProfile(
        rows=len(predictions),
        features=features,
        prediction=numeric_bins(predictions),
        prediction_source=prediction_source,
    )
