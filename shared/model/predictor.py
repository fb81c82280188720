"""The one prediction code path: houses in, dollars out. Workers, `realty predict` and the
tests all call `Predictor.predict` / `Predictor.estimate`, so offline scores and served answers
cannot drift apart.

A bundle answers two request variants (`shared.model.contract.VARIANTS`): `full` and `minimal`.
The baseline's two variants are the same KNN on the 8 fields; a gbm bundle holds one estimator
per variant, and its estimates also carry price ranges, contributing factors and input warnings.
Every kind answers through the same `shared.model.kinds.Estimator` calls.
"""

import math

import numpy as np
import pandas as pd

from shared.model.bundles import Bundle
from shared.model.contract import MODEL_KINDS, cents
from shared.model.demographics import join_demographics
from shared.model.kinds import Estimator
from shared.model.kinds.gbm import describe_factors
from shared.model.market import month_label
from shared.wire.messages import Estimate, Factor, PriceRange


class Predictor:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.kind = MODEL_KINDS[bundle.manifest.kind]

    @property
    def version(self) -> str:
        return self.bundle.version

    def _houses(self, houses: pd.DataFrame, variant: str) -> pd.DataFrame:
        """The request fields of the variant, demographics joined (UnknownZipcodeError for
        areas the model never saw)."""
        frame = houses[list(self.kind.variant_request_fields(variant))]
        if self.kind.uses_demographics:
            frame = join_demographics(frame, self.bundle.demographics)
        return frame

    def _estimator(self, variant: str) -> Estimator:
        return self.bundle.model.variant(variant)

    def features(self, houses: pd.DataFrame, variant: str = "full") -> pd.DataFrame:
        """The model's input matrix, columns in training order."""
        return self._estimator(variant).matrix(self._houses(houses, variant))

    def as_of_months(self) -> tuple[str, str] | None:
        """First and last month ("YYYY-MM") the bundle can estimate at; None for a kind that
        knows no sale dates."""
        market = self.bundle.model.market
        return None if market is None else market.months()

    def default_as_of(self) -> str | None:
        """The month estimates are for unless asked otherwise: the latest the bundle learned."""
        market = self.bundle.model.market
        return None if market is None else market.default_as_of()

    def predict(self, houses: pd.DataFrame, variant: str = "full") -> np.ndarray:
        """Prices in USD at the default as-of month, one per row, unrounded;
        UnknownZipcodeError for areas the model never saw."""
        return self._estimator(variant).predict_matrix(self.features(houses, variant))

    def estimate(
        self,
        houses: pd.DataFrame,
        variant: str = "full",
        explain: bool = True,
        as_of: str | None = None,
        comps: int = 0,
    ) -> list[Estimate]:
        """One answer per row, every amount in cents: `prediction` (the price `predict` gives,
        moved to the `as_of` month: None = the latest month learned; AsOfError outside the
        months the bundle knows), and for kinds that support them `as_of`, `interval_80` /
        `interval_95`, `fsd` and the `confidence` grade, `factors` (the largest contributions,
        in dollars and words; only with `explain`), `warnings` (inputs outside what the model
        saw in training) and up to `comps` (0-10) comparable sales. Baseline answers carry
        None / empty lists and ignore `as_of` and `comps`."""
        frame = self._houses(houses, variant)
        estimator = self._estimator(variant)
        matrix = estimator.matrix(frame)
        prices = estimator.predict_matrix(matrix)
        none: list[list] = [[] for _ in range(len(frame))]
        market, comparables = self.bundle.model.market, self.bundle.model.comparables
        label, shift, found = None, 0.0, none
        if market is not None:
            month = market.resolve(as_of)
            label, shift = month_label(month), market.shift(month)
            if comps > 0 and comparables is not None:
                found = comparables.find(frame, month, comps, market)
        prices_as_of = prices * math.exp(shift)
        uncertainty = estimator.uncertainty(matrix, prices, shift)
        ranges = {} if uncertainty is None else uncertainty.ranges
        warnings = estimator.warnings(frame)
        factors = (
            describe_factors(
                estimator.dollar_contributions(matrix, prices_as_of, shift), frame, as_of=label
            )
            if explain
            else none
        )

        def price_range(level: str, row: int) -> PriceRange | None:
            if level not in ranges:
                return None
            low, high = ranges[level]
            return PriceRange.model_construct(low=cents(low[row]), high=cents(high[row]))

        fsd = None if uncertainty is None else uncertainty.fsd.round(4).tolist()
        grades = None if uncertainty is None else uncertainty.grades.tolist()
        # Built without validation (every value is computed right here, as its type says): a
        # micro-batch of 64 estimates validated field by field cost the worker ~10 % per call.
        # The API validates the reply it receives.
        return [
            Estimate.model_construct(
                prediction=cents(price),
                interval_80=price_range("80", row),
                interval_95=price_range("95", row),
                factors=[Factor.model_construct(**factor) for factor in factors[row]],
                warnings=warnings[row],
                as_of=label,
                confidence=None if grades is None else grades[row],
                fsd=None if fsd is None else fsd[row],
                comps=found[row],
            )
            for row, price in enumerate(prices_as_of)
        ]
