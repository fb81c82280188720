"""Model kinds: what the predictor and the bundles ask of a kind's fitted model.

Each kind's class writes itself into a bundle as plain files (`save`) and reads itself back
from one (`load`); `shared.model.bundles.MODELS` maps a manifest's `kind` to the class. The
files say nothing about which code wrote them, so the classes may move or be renamed freely.
"""

from pathlib import Path
from typing import ClassVar, Protocol, Self

import numpy as np
import pandas as pd

from shared.model.comps import ComparableSales
from shared.model.confidence import Uncertainty
from shared.model.files import BundleFiles
from shared.model.market import MarketIndex


class Estimator(Protocol):
    """One request variant's fitted estimator, as `shared.model.predictor.Predictor` uses it.
    A kind without ranges, warnings or explanations answers with empty ones."""

    def matrix(self, houses: pd.DataFrame) -> pd.DataFrame:
        """The input matrix, in training column order, of houses with demographics joined."""
        ...

    def predict_matrix(self, matrix: pd.DataFrame) -> np.ndarray: ...

    def uncertainty(
        self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0
    ) -> Uncertainty | None:
        """Per row FSD, grade and ranges {"80": (low, high), "95": (...)} around
        prices * e^shift; None for a kind without them."""
        ...

    def warnings(self, houses: pd.DataFrame) -> list[list[str]]: ...

    def dollar_contributions(
        self, matrix: pd.DataFrame, prices: np.ndarray, shift: float = 0.0
    ) -> pd.DataFrame:
        """One column per plain-language factor, in dollars, one row per house."""
        ...


class Model(Protocol):
    """A kind's fitted model: an estimator per request variant, stored as plain files."""

    KIND: ClassVar[str]
    # How its files are written (`shared.model.bundles`): a bundle of another format is not
    # served.
    FORMAT: ClassVar[int]
    # The monthly market index estimates are moved by and the sales comps are drawn from; None
    # for a kind that knows no time (its estimates carry no as_of and no comps).
    market: MarketIndex | None
    comparables: ComparableSales | None

    def variant(self, name: str) -> Estimator: ...

    def save(self, directory: Path) -> list[str]:
        """Write the model's files into a bundle being built; their names."""
        ...

    @classmethod
    def load(cls, files: BundleFiles, *, artifacts: bool) -> Self:
        """The model from a verified bundle; `artifacts=False` leaves files that only speed
        it up unused."""
        ...
