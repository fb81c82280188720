"""Today's market: a monthly price index learned from the training sales, and the as-of month an
estimate is made for.

Prices in King County rose about 6 % over the year of the client's data, so a model that ignores
the sale date prices every home at the average market of its training year. The gbm kind instead
learns a monthly index (a hedonic regression, below), trains on prices moved to the latest month
it learned ("the reference month") and moves its estimates to the requested as-of month. On
`make evaluate`'s date-ordered holdout this beat giving the trees the sale month as a feature
(docs/model_report.md): trees cannot carry a trend beyond the months they saw, while the
index-deflated training set puts every sale on the latest month's footing.

The index is fitted on the training rows only, so in a date-ordered test it knows nothing of the
months after the cut. Once the service is in use, the sales fed back to the record (issue 14)
tell what the market did since: `MarketIndex.extended` carries the index past the training
months by the median ratio of each later month's sale prices to the model's estimates of those
homes at the reference month (a sales-ratio study, as assessors run them), and `realty market
refresh` writes that as a new bundle version with the same trees. Months are handled as integers
(year * 12 + month - 1) on the served path and shown as "YYYY-MM".
"""

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Self

import numpy as np
import pandas as pd

from shared.model.contract import TARGET, ZIPCODE, as_of_problem

# House columns of the hedonic regression; logs where a price effect is proportional.
_LINEAR = ("bedrooms", "bathrooms", "floors", "waterfront", "view", "condition", "grade")
_LOGGED = ("sqft_living", "sqft_lot")
# Sales a month after the training months needs before the index takes its level from them: the
# median log ratio of 200 sales with the holdout's spread (about 0.15) has a standard error near
# 1.3 % (1.25 * 0.15 / sqrt(200)), small against the 2-5 % a month's market moved in 2015.
MIN_MONTH_SALES = 200


class AsOfError(ValueError):
    """An as-of month the bundle cannot estimate at (outside the months it learned from, or not
    a YYYY-MM month). The API answers it with a 422."""


def month_key(year: int, month: int) -> int:
    return year * 12 + month - 1


def month_label(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def month_start(key: int) -> date:
    """The first day of month `key`: where a query for that month's sales starts."""
    return date(key // 12, key % 12 + 1, 1)


def sale_months(sales: pd.DataFrame) -> np.ndarray:
    """The month key of each sale, from the sales file's `date` ("20141013T000000")."""
    digits = sales["date"].astype(str).str[:6].to_numpy(dtype=str).astype(int)
    return month_key(digits // 100, digits % 100)


def sale_dates(sales: pd.DataFrame) -> np.ndarray:
    """Each sale's date as the integer YYYYMMDD (exact in a float array, sortable)."""
    return sales["date"].astype(str).str[:8].to_numpy(dtype=str).astype(int)


def _hedonic_columns(sales: pd.DataFrame) -> np.ndarray:
    """House characteristics and zipcode fixed effects: what the index must hold constant so a
    month's coefficient measures the market, not the mix of homes sold that month."""
    parts = [sales[c].to_numpy(dtype=float)[:, None] for c in _LINEAR]
    parts += [np.log(sales[c].to_numpy(dtype=float))[:, None] for c in _LOGGED]
    built = sales["yr_built"].to_numpy(dtype=float) - 1970
    parts += [built[:, None], (built**2 / 100)[:, None]]
    zips = pd.get_dummies(sales[ZIPCODE].astype(str), dtype=float).to_numpy()
    return np.hstack([*parts, zips])  # the zipcode dummies hold the intercept


@dataclass(frozen=True)
class MarketIndex:
    """log price level of each month from `first_month` on, relative to `reference_month` (its
    level is 0: the latest month of the training sales, the one the trees learned prices at):
    moving a price from month a to month b multiplies it by e^(level[b] - level[a]). Months
    after the reference come from sales fed back (`extended`)."""

    first_month: int
    log_levels: tuple[float, ...]
    reference_month: int

    @classmethod
    def fit(cls, sales: pd.DataFrame) -> Self:
        """A hedonic monthly index: least squares of log price on month dummies, zipcode fixed
        effects and the house's size, rooms, grade, condition, view, waterfront and age. Only
        `sales` (training rows) are read. A month without sales inside the range is
        interpolated from its neighbours."""
        months = sale_months(sales)
        first, last = int(months.min()), int(months.max())
        present = np.unique(months)
        dummies = (months[:, None] == present[None, 1:]).astype(float)  # first month = base
        design = np.hstack([_hedonic_columns(sales), dummies])
        coef, *_ = np.linalg.lstsq(design, np.log(sales[TARGET].to_numpy(dtype=float)), rcond=None)
        levels = np.concatenate([[0.0], coef[-len(present) + 1 :]])
        every = np.arange(first, last + 1)
        filled = np.interp(every, present, levels)
        return cls(first, tuple(float(v) for v in filled - filled[-1]), last)

    def extended(
        self, months: np.ndarray, log_ratios: np.ndarray, min_sales: int = MIN_MONTH_SALES
    ) -> Self:
        """The index with each month after the reference that has at least `min_sales` sales
        in `months` set to the median of their `log_ratios` (log of the sale price over the
        estimate of the same home at the reference month); months between are interpolated,
        months before the reference kept. Any earlier extension is replaced, so refreshing from
        a refreshed index gives the same result. Unchanged when no later month has enough."""
        months, log_ratios = np.asarray(months, dtype=int), np.asarray(log_ratios, dtype=float)
        later = sorted(int(m) for m in np.unique(months[months > self.reference_month]))
        levels = {
            m: float(np.median(log_ratios[months == m]))
            for m in later
            if np.count_nonzero(months == m) >= min_sales
        }
        learned = self.log_levels[: self.reference_month - self.first_month + 1]
        if not levels:
            return replace(self, log_levels=learned)
        known = [self.reference_month, *levels]
        every = np.arange(self.reference_month + 1, known[-1] + 1)
        filled = np.interp(every, known, [0.0, *levels.values()])
        return replace(self, log_levels=(*learned, *(float(v) for v in filled)))

    @property
    def last_month(self) -> int:
        return self.first_month + len(self.log_levels) - 1

    def months(self) -> tuple[str, str]:
        """First and last month it can estimate at, "YYYY-MM"."""
        return month_label(self.first_month), month_label(self.last_month)

    def default_as_of(self) -> str:
        """The latest month known: the reference month, or the latest month of sales fed
        back."""
        return month_label(self.last_month)

    def resolve(self, as_of: str | None) -> int:
        """The month key of `as_of` ("YYYY-MM"; None: the latest month learned); AsOfError for
        anything else, naming the range it accepts."""
        if as_of is None:
            return self.last_month
        if problem := as_of_problem(as_of, *self.months()):
            raise AsOfError(problem)
        return _parse(as_of)

    def log_level(self, months: np.ndarray) -> np.ndarray:
        """Each month's log level; months outside the range take the nearest end (what the
        index knows of them)."""
        position = np.clip(
            np.asarray(months, dtype=int) - self.first_month, 0, len(self.log_levels) - 1
        )
        return np.asarray(self.log_levels)[position]

    def shift(self, month: int) -> float:
        """log factor from the reference month to `month`."""
        return float(self.log_level(np.array([month]))[0])

    def to_reference(self, sales: pd.DataFrame) -> pd.DataFrame:
        """`sales` with each price moved from its sale month to the reference month: what the
        trees learn from."""
        factor = np.exp(-self.log_level(sale_months(sales)))
        return sales.assign(**{TARGET: sales[TARGET].to_numpy(dtype=float) * factor})

    def spec(self) -> dict[str, Any]:
        return {
            "first_month": month_label(self.first_month),
            "log_levels": self.log_levels,
            "reference_month": month_label(self.reference_month),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Self:
        return cls(
            _parse(spec["first_month"]), tuple(spec["log_levels"]), _parse(spec["reference_month"])
        )


def _parse(label: str) -> int:
    year, month = label.split("-")
    return month_key(int(year), int(month))
