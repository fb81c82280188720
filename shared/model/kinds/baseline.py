"""The `baseline` kind: the client's model, `make_pipeline(RobustScaler(), KNeighborsRegressor())`.

Both request variants are the same KNN on the client's 8 fields. The bundle stores the training
matrix and prices (plain arrays) and the pipeline is refitted from them when loaded: a scaler's
quantiles and a neighbour search over the same rows are deterministic and take milliseconds,
and so the loaded pipeline predicts exactly as the trained one without pickling it. Its other
parameters are scikit-learn's defaults, fixed by the scikit-learn version a bundle records and
`shared.model.bundles.verify_bundle` requires.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import RobustScaler

from shared.model.contract import BASELINE
from shared.model.files import BundleFiles, write_array, write_json

MODEL_FILE = "model.json"
X_FILE = "train-x.npy"
Y_FILE = "train-y.npy"
N_NEIGHBORS = 5  # KNeighborsRegressor's default, which the client's script kept


@dataclass
class BaselineModel:
    """The client's fitted pipeline and the training rows it is refitted from."""

    KIND: ClassVar[str] = BASELINE.name
    FORMAT: ClassVar[int] = 2
    # The client's model knows no sale dates and cites no sales.
    market: ClassVar[None] = None
    comparables: ClassVar[None] = None

    features: list[str]
    x: np.ndarray  # training matrix, float64, columns `features`
    y: np.ndarray  # training prices
    n_neighbors: int = N_NEIGHBORS
    pipeline: Pipeline = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Training and loading both fit here, on the same float64 matrix, so the pipeline a
        # bundle serves is the one whose metrics training recorded.
        frame = pd.DataFrame(self.x, columns=self.features)
        estimator = make_pipeline(RobustScaler(), KNeighborsRegressor(n_neighbors=self.n_neighbors))
        self.pipeline = estimator.fit(frame, self.y)

    @classmethod
    def fit(cls, x: pd.DataFrame, y: pd.Series) -> Self:
        return cls(list(x.columns), x.to_numpy(dtype=float), y.to_numpy(dtype=float))

    def variant(self, name: str) -> Self:
        return self

    def matrix(self, houses: pd.DataFrame) -> pd.DataFrame:
        return houses[self.features]

    def predict_matrix(self, matrix: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(matrix), dtype=float)

    def predict(self, houses: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.matrix(houses))

    def uncertainty(self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0) -> None:
        return None  # the client's model has no calibrated ranges

    def warnings(self, houses: pd.DataFrame) -> list[list[str]]:
        return [[] for _ in range(len(houses))]

    def dollar_contributions(
        self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0
    ) -> pd.DataFrame:
        return pd.DataFrame(index=matrix.index)  # a KNN has no per-feature effects to show

    def save(self, directory: Path) -> list[str]:
        spec = {"features": self.features, "n_neighbors": self.n_neighbors}
        return [
            write_json(directory, MODEL_FILE, spec),
            write_array(directory, X_FILE, self.x),
            write_array(directory, Y_FILE, self.y),
        ]

    @classmethod
    def load(cls, files: BundleFiles, *, artifacts: bool) -> Self:
        spec = files.json(MODEL_FILE)
        return cls(spec["features"], files.array(X_FILE), files.array(Y_FILE), spec["n_neighbors"])
