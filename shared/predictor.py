"""The one prediction code path: houses in, dollars out. Workers, `realty predict` and the
tests all call `Predictor.predict`, so offline scores and served answers cannot drift apart."""

import numpy as np
import pandas as pd

from shared.bundles import Bundle
from shared.demographics import join_demographics
from shared.features import MODEL_KINDS


class Predictor:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.kind = MODEL_KINDS[bundle.manifest.kind]

    @property
    def version(self) -> str:
        return self.bundle.version

    def features(self, houses: pd.DataFrame) -> pd.DataFrame:
        """The model's input matrix, columns in training order."""
        frame = houses[list(self.kind.request_fields)]
        if self.kind.uses_demographics:
            frame = join_demographics(frame, self.bundle.demographics)
        return frame[self.bundle.manifest.input_features]

    def predict(self, houses: pd.DataFrame) -> np.ndarray:
        """Prices in USD, one per row; UnknownZipcodeError for areas the model never saw."""
        return np.asarray(self.bundle.model.predict(self.features(houses)), dtype=float)
