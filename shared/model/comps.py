"""Comparable sales: the training sales most like a house, as an agent would pick them for a
comparative market analysis, each with its price moved to the estimate's as-of month.

The rule (one weighted distance, smaller = more comparable; similarity = 1 / (1 + distance)):

    distance² = (miles apart / 0.5)² + (ln(living area ratio) / 0.15)² + (grade steps / 1)²
              + (months between the sale and the as-of month / 6)²
              + (bedrooms apart / 2)² + (bathrooms apart / 2)²

so one unit of distance is "half a mile away", "15 % larger or smaller", "one construction grade
apart" or "sold six months from the as-of month": the agents' rules of thumb (within 0.5-1 mile,
sold in the last 3-6 months, living area within 10-20 %, same grade) become one score, and a comp
that is a little worse on each is preferred to one that is perfect on one and far on another.
The `minimal` variant has no coordinates and no grade: its comps come from the house's own
zipcode only, by living area, bedrooms, bathrooms and recency (the same scales) and two stand-ins
for where in the zipcode and what kind of house it is:

    + (ln(lot size ratio) / 0.5)² + (share of the living area above ground apart / 0.2)²

(a lot twice the size is 1.4 units: the rural edge of a zipcode against its town centre; a
split-level or daylight-basement home against one without). Both were chosen on the training
sales alone (comps of the sales from 2014-12 to 2015-02 among those before: 57.7 % within 15 %
by the first rule, 61.0 % with both; `pytest -s tests/unit/model/test_comps.py -k chosen`), and
their `distance_miles` is None.

Each rule is one k-d tree over the training sales, its coordinates pre-scaled so that Euclidean
distance is the score (3-D unit vectors in miles for the location: chord and arc differ by less
than 0.01 % below 20 miles); a query for a whole micro-batch is one tree call, built once per
process on first use. The sales are stored in the bundle as arrays (`ComparableSales.save`).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from shared.model.contract import TARGET, ZIPCODE, cents
from shared.model.files import BundleFiles, write_array
from shared.model.market import MarketIndex, sale_dates, sale_months
from shared.wire.messages import Comp

MAX_COMPS = 10
EARTH_MILES = 3958.8
# The rule's units (module docstring).
MILES_UNIT = 0.5
LIVING_UNIT = 0.15
GRADE_UNIT = 1.0
MONTHS_UNIT = 6.0
ROOMS_UNIT = 2.0
LOT_UNIT = 0.5  # of ln(lot size): the minimal rule only
ABOVE_UNIT = 0.2  # of the share of the living area above ground: the minimal rule only
# Zipcodes are set this far apart in the minimal tree, so no other zipcode's sale is ever nearer
# than one of the house's own; farther than it means "another zipcode" and is dropped.
_ZIP_APART = 1e6
_COLUMNS = (
    "date",
    "month",
    "price",
    "lat",
    "long",
    "bedrooms",
    "bathrooms",
    "sqft_living",
    "grade",
    "zipcode",
    "sqft_lot",
    "sqft_above",
)
IDS_FILE = "comps-id.npy"
SALES_FILE = "comps-sales.npy"


def unit_vectors(lat: np.ndarray, long: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: Euclidean (chord) distance between them orders pairs exactly
    as the great-circle distance does, and a k-d tree on them is far cheaper than a haversine
    ball tree."""
    la, lo = np.deg2rad(lat), np.deg2rad(long)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def chord_to_arc(chord: np.ndarray) -> np.ndarray:
    """Great-circle angle (radians) of a chord of the unit sphere."""
    return 2 * np.arcsin(np.clip(chord / 2, 0, 1))


@dataclass
class ComparableSales:
    """The training sales a bundle can cite, one row each: `ids` (the sales file's id) and
    `sales` (float columns `_COLUMNS`: date as YYYYMMDD, month key, price, ...)."""

    ids: np.ndarray
    sales: np.ndarray
    _trees: dict[str, cKDTree] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def fit(cls, sales: pd.DataFrame) -> Self:
        """From training rows only (the sales file's columns)."""
        columns = {
            "date": sale_dates(sales),
            "month": sale_months(sales),
            "price": sales[TARGET].to_numpy(dtype=float),
            ZIPCODE: sales[ZIPCODE].astype(int).to_numpy(),
        }
        table = np.column_stack(
            [np.asarray(columns.get(c, sales.get(c)), dtype=float) for c in _COLUMNS]
        )
        return cls(sales["id"].to_numpy(dtype=np.int64), table)

    def column(self, name: str) -> np.ndarray:
        return self.sales[:, _COLUMNS.index(name)]

    def _points(self, houses: dict[str, np.ndarray], months: np.ndarray, full: bool) -> np.ndarray:
        """The rule's coordinates of sales or houses (each distance unit = 1)."""
        parts = [
            np.log(houses["sqft_living"])[:, None] / LIVING_UNIT,
            months[:, None] / MONTHS_UNIT,
            houses["bedrooms"][:, None] / ROOMS_UNIT,
            houses["bathrooms"][:, None] / ROOMS_UNIT,
        ]
        if full:
            where = unit_vectors(houses["lat"], houses["long"]) * EARTH_MILES / MILES_UNIT
            parts += [where, houses["grade"][:, None] / GRADE_UNIT]
        else:
            parts += [
                houses[ZIPCODE][:, None] * _ZIP_APART,
                np.log(houses["sqft_lot"])[:, None] / LOT_UNIT,
                (houses["sqft_above"] / houses["sqft_living"])[:, None] / ABOVE_UNIT,
            ]
        return np.hstack(parts)

    def _tree(self, full: bool) -> cKDTree:
        key = "full" if full else "minimal"
        if key not in self._trees:
            own = {c: self.column(c) for c in _COLUMNS}
            self._trees[key] = cKDTree(self._points(own, own["month"], full))
        return self._trees[key]

    def find(
        self, houses: pd.DataFrame, month: int, n: int, market: MarketIndex
    ) -> list[list[Comp]]:
        """Up to `n` comps per house, most similar first, prices moved to `month`. Houses with
        lat, long and grade use the full rule, others their zipcode's sales."""
        if n <= 0:
            return [[] for _ in range(len(houses))]
        n = min(n, MAX_COMPS)
        full = all(c in houses for c in ("lat", "long", "grade"))
        needed = ("sqft_living", "bedrooms", "bathrooms") + (
            ("lat", "long", "grade") if full else ("sqft_lot", "sqft_above")
        )
        query = {c: houses[c].to_numpy(dtype=float) for c in needed}
        if not full:
            query[ZIPCODE] = houses[ZIPCODE].astype(int).to_numpy(dtype=float)
        points = self._points(query, np.full(len(houses), month, dtype=float), full)
        distance, index = self._tree(full).query(points, k=n)
        distance, index = distance.reshape(len(houses), n), index.reshape(len(houses), n)
        keep = distance < _ZIP_APART / 2  # the minimal rule stays inside the zipcode
        index = np.where(keep, index, 0)
        price = self.column("price")[index]
        moved = price * np.exp(
            market.log_level(np.array([month])) - market.log_level(self.column("month")[index])
        )
        miles = None
        if full:
            chord = np.linalg.norm(
                unit_vectors(query["lat"], query["long"])[:, None, :]
                - unit_vectors(self.column("lat")[index], self.column("long")[index]),
                axis=2,
            )
            miles = chord_to_arc(chord) * EARTH_MILES
        return _comps(self, index, keep, price, moved, miles, 1 / (1 + distance))

    def save(self, directory: Path) -> list[str]:
        return [
            write_array(directory, IDS_FILE, self.ids),
            write_array(directory, SALES_FILE, self.sales),
        ]

    @classmethod
    def load(cls, files: BundleFiles) -> Self:
        return cls(files.array(IDS_FILE), files.array(SALES_FILE))

    def spec(self) -> dict[str, Any]:
        return {"columns": list(_COLUMNS), "rows": len(self.ids)}


def _comps(
    source: ComparableSales,
    index: np.ndarray,
    keep: np.ndarray,
    price: np.ndarray,
    moved: np.ndarray,
    miles: np.ndarray | None,
    similarity: np.ndarray,
) -> list[list[Comp]]:
    """The chosen sales as messages, built unvalidated (every value is computed here) from
    plain lists: indexing NumPy arrays one element at a time would cost more than the search."""
    date = source.column("date")[index].astype(int)
    days = (date % 100).tolist()
    months = (date // 100 % 100).tolist()
    years = (date // 10000).tolist()
    ids = source.ids[index].tolist()
    facts = [
        source.column(c)[index].tolist() for c in ("bedrooms", "bathrooms", "sqft_living", "grade")
    ]
    prices, moved_prices = price.tolist(), moved.tolist()
    distances = None if miles is None else miles.round(3).tolist()
    similarities = similarity.round(4).tolist()
    return [
        [
            Comp.model_construct(
                id=str(ids[row][j]),
                sale_date=f"{years[row][j]:04d}-{months[row][j]:02d}-{days[row][j]:02d}",
                price=cents(prices[row][j]),
                price_as_of=cents(moved_prices[row][j]),
                distance_miles=None if distances is None else distances[row][j],
                bedrooms=facts[0][row][j],
                bathrooms=facts[1][row][j],
                sqft_living=facts[2][row][j],
                grade=facts[3][row][j],
                similarity=similarities[row][j],
            )
            for j in np.flatnonzero(keep[row]).tolist()
        ]
        for row in range(index.shape[0])
    ]
