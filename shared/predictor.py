"""The one prediction code path: houses in, dollars out. Workers, `realty predict` and the
tests all call `Predictor.predict` / `Predictor.estimate`, so offline scores and served answers
cannot drift apart.

A bundle answers two request variants (`shared.features.VARIANTS`): `full` and `minimal`. The
baseline's two variants are the same KNN on the 8 fields; a gbm bundle holds one estimator per
variant, and its estimates also carry price ranges, contributing factors and input warnings.
"""

from typing import Any

import numpy as np
import pandas as pd

from shared.bundles import Bundle
from shared.demographics import join_demographics
from shared.features import MODEL_KINDS
from shared.models.gbm import GbmModel, describe_factors


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

    def features(self, houses: pd.DataFrame, variant: str = "full") -> pd.DataFrame:
        """The model's input matrix, columns in training order."""
        frame = self._houses(houses, variant)
        model = self.bundle.model
        if isinstance(model, GbmModel):
            return model.variant(variant).matrix(frame)
        return frame[self.bundle.manifest.input_features]

    def predict(self, houses: pd.DataFrame, variant: str = "full") -> np.ndarray:
        """Prices in USD, one per row; UnknownZipcodeError for areas the model never saw."""
        model = self.bundle.model
        if isinstance(model, GbmModel):
            return model.variant(variant).predict(self._houses(houses, variant))
        return np.asarray(model.predict(self.features(houses, variant)), dtype=float)

    def estimate(
        self, houses: pd.DataFrame, variant: str = "full", explain: bool = True
    ) -> list[dict[str, Any]]:
        """One answer per row: `prediction` (the same number `predict` gives), and for kinds
        that support them `interval_80` / `interval_95` ({low, high}), `factors` (the largest
        contributions, in dollars and words; only with `explain`) and `warnings` (inputs outside
        what the model saw in training). Baseline answers carry None / empty lists."""
        model = self.bundle.model
        if not isinstance(model, GbmModel):
            prices = self.predict(houses, variant)
            return [
                {"prediction": float(p), "interval_80": None, "interval_95": None}
                | {"factors": [], "warnings": []}
                for p in prices
            ]
        estimator = model.variant(variant)
        frame = self._houses(houses, variant)
        matrix = estimator.matrix(frame)
        prices = estimator.predict_matrix(matrix)
        ranges = estimator.intervals(prices)
        warnings = estimator.warnings(frame)
        factors: list[list[dict[str, Any]]] = [[] for _ in range(len(frame))]
        if explain:
            factors = describe_factors(estimator.dollar_contributions(matrix, prices), frame)
        answers = []
        for i, price in enumerate(prices):
            answer: dict[str, Any] = {"prediction": float(price)}
            for level, (low, high) in ranges.items():
                answer[f"interval_{level}"] = {
                    "low": round(float(low[i]), 2),
                    "high": round(float(high[i]), 2),
                }
            answer["factors"] = factors[i]
            answer["warnings"] = warnings[i]
            answers.append(answer)
        return answers
