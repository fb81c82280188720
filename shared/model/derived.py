"""Derived features: ONE function for training and serving.

Location summaries learned from the training sales (a zipcode's price level and the price level
of the nearest sales) are held in a fitted `LocationContext` stored in the bundle (levels as
JSON, the sales' coordinates and levels as arrays); the training rows get values from contexts
fitted without them (out of fold), served houses get them from the context fitted on all
training sales.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from shared.model.comps import chord_to_arc, unit_vectors
from shared.model.contract import TARGET, ZIPCODE

ROTATION_ANGLES = (15, 30, 45, 60)
NEIGHBOURS = 10
_ZIP_SMOOTHING = 20  # sales of pseudo-count pulling a thin zipcode's level towards the mean
_EARTH_KM = 6371.0


@dataclass
class LocationContext:
    """Price levels learned from training sales, as log(price / sqft_living)."""

    zip_level: dict[str, float]
    overall_level: float
    coordinates: np.ndarray | None = None  # radians (lat, long) of the training sales
    levels: np.ndarray | None = None  # their log price per sq ft
    # Built from `coordinates` on first use: cheaper to rebuild than to store.
    _tree: cKDTree | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def fit(cls, sales: pd.DataFrame, *, neighbours: bool) -> "LocationContext":
        level = np.log(sales[TARGET] / sales["sqft_living"])
        stats = level.groupby(sales[ZIPCODE]).agg(["mean", "count"])
        overall = float(level.mean())
        smoothed = (stats["mean"] * stats["count"] + overall * _ZIP_SMOOTHING) / (
            stats["count"] + _ZIP_SMOOTHING
        )
        coordinates = levels = None
        if neighbours:
            coordinates = np.deg2rad(sales[["lat", "long"]].to_numpy(dtype=float))
            levels = level.to_numpy(dtype=float)
        return cls({str(k): float(v) for k, v in smoothed.items()}, overall, coordinates, levels)

    def neighbour_levels(self, lat: np.ndarray, long: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean price level of the NEIGHBOURS nearest training sales, and their mean great-circle
        distance in km (lat/long given in degrees).

        A k-d tree on 3-D unit vectors, not a haversine ball tree: the chord between two points
        of the sphere grows with their arc, so it picks the same nearest sales (up to ties) about
        eight times faster; each chord is converted back to its arc for the distance."""
        if self.coordinates is None or self.levels is None:
            raise ValueError("this context was fitted without neighbours")
        if self._tree is None:
            lat_rad, long_rad = self.coordinates[:, 0], self.coordinates[:, 1]
            self._tree = cKDTree(unit_vectors(np.rad2deg(lat_rad), np.rad2deg(long_rad)))
        chord, index = self._tree.query(unit_vectors(lat, long), k=NEIGHBOURS)
        return self.levels[index].mean(axis=1), chord_to_arc(chord).mean(axis=1) * _EARTH_KM


# Feature groups, in the order they are added in the ablation (docs/model_report.md).
DERIVED_GROUPS: dict[str, tuple[str, ...]] = {
    "rotated_coordinates": tuple(f"rot{a}_{axis}" for a in ROTATION_ANGLES for axis in ("x", "y")),
    "ratios": ("living_lot_ratio", "living_vs_neighbours", "yr_effective"),
    "zip_level": ("zip_level",),
    "neighbour_level": ("neighbour_level", "neighbour_km"),
}


def derive_features(
    houses: pd.DataFrame, context: LocationContext, groups: Iterable[str]
) -> pd.DataFrame:
    """The derived columns of `groups` (keys of DERIVED_GROUPS) for `houses`, index kept.

    Used by training (with out-of-fold contexts) and by serving (with the bundle's context):
    there is no second implementation. Computed on NumPy arrays and framed once at the end:
    a served micro-batch is a few dozen rows, where pandas' per-column overhead would cost
    more than the arithmetic."""
    groups = tuple(groups)

    def column(name: str) -> np.ndarray:
        return houses[name].to_numpy(dtype=float)

    out: dict[str, np.ndarray] = {}
    if "rotated_coordinates" in groups:
        lat, lon = column("lat"), column("long")
        for angle in ROTATION_ANGLES:
            r = np.deg2rad(angle)
            out[f"rot{angle}_x"] = lon * np.cos(r) - lat * np.sin(r)
            out[f"rot{angle}_y"] = lon * np.sin(r) + lat * np.cos(r)
    if "ratios" in groups:
        living = column("sqft_living")
        if "sqft_lot" in houses:
            out["living_lot_ratio"] = living / column("sqft_lot")
        if "sqft_living15" in houses:
            out["living_vs_neighbours"] = living / column("sqft_living15")
        if "yr_built" in houses:
            out["yr_effective"] = np.maximum(column("yr_built"), column("yr_renovated"))
    if "zip_level" in groups:
        level, fallback = context.zip_level, context.overall_level
        out["zip_level"] = np.array([level.get(z, fallback) for z in houses[ZIPCODE]], dtype=float)
    if "neighbour_level" in groups:
        out["neighbour_level"], out["neighbour_km"] = context.neighbour_levels(
            column("lat"), column("long")
        )
    return pd.DataFrame(out, index=houses.index)
