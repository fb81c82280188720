"""Today's market from the sales fed back: a bundle's market index carried past its training
months by the sales on record (`MarketIndex.extended`), written as a new bundle version with the
same trees, ranges and comps (`realty market refresh`), and the same refresh replayed on
`make evaluate`'s date-ordered holdout to measure what it is worth (`rolling_estimates`).

A refresh needs no retraining and no training data: each sale on record is compared with what
the bundle's own trees say of that home at the reference month, so the index measures the
market the way the model sees homes. A new version (not an edited one) keeps every estimate on
record traceable to the exact index it used, and rolls out like any other.
"""

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from shared.model.bundles import Bundle, write_bundle
from shared.model.contract import GBM, TARGET, ZIPCODE
from shared.model.kinds import gbm
from shared.model.market import (
    MIN_MONTH_SALES,
    MarketIndex,
    month_label,
    month_start,
    sale_dates,
    sale_months,
)
from shared.model.signing import signing_key
from shared.records.schema import estimates, sales
from shared.settings import Settings
from shared.tools.training import SaleEstimates, estimate_sales

# How often the replay on the holdout refreshes the index: the cadence docs/operations.md
# recommends to operators.
REFRESH_DAYS = 7
# How long after closing the replay assumes a sale reaches the record (an agent's report, or the
# county's recorded sales imported); a refresh counts the sales reported before its day.
REPORT_LAG_DAYS = 14


class RefreshRefused(ValueError):
    """A refresh that would change nothing or cannot run (wrong kind, too few sales)."""


def log_ratios(model: gbm.GbmModel, houses: pd.DataFrame, variants: np.ndarray) -> np.ndarray:
    """log(sale price / the variant's estimate of the home at the reference month), per row of
    `houses` (demographics joined, TARGET the sale price)."""
    ratios = np.empty(len(houses))
    for variant in np.unique(variants):
        rows = variants == variant
        at_reference = model.variant(str(variant)).predict(houses[rows])
        ratios[rows] = np.log(houses[TARGET].to_numpy(dtype=float)[rows] / at_reference)
    return ratios


def weekly_factors(market: MarketIndex, later: pd.DataFrame, ratios: np.ndarray) -> np.ndarray:
    """Per held-out sale, e^(the move from the reference month to the latest month the index
    knew when the sale's week (REFRESH_DAYS) began), that index being `market` extended by the
    `ratios` (`log_ratios`) of the held-out sales reported before that day, each reported
    REPORT_LAG_DAYS after it closed: a sale never informs its own estimate, nor those of the
    days until it is reported."""
    days = pd.to_datetime(sale_dates(later).astype(str), format="%Y%m%d").to_numpy()
    months = sale_months(later)
    factor = np.ones(len(later))
    step = np.timedelta64(REFRESH_DAYS, "D")
    start = days.min()
    while start <= days.max():
        week = (days >= start) & (days < start + step)
        known = days < start - np.timedelta64(REPORT_LAG_DAYS, "D")
        extended = market.extended(months[known], ratios[known])
        factor[week] = np.exp(extended.shift(extended.last_month))
        start += step
    return factor


def rolling_estimates(model: gbm.GbmModel, variant: str, later: pd.DataFrame) -> SaleEstimates:
    """The held-out sales as a service refreshing its index every REFRESH_DAYS from the sales
    fed back would have estimated them (`weekly_factors`, from the full variant's ratios)."""
    static = estimate_sales(model.variant(variant), model.market, later)
    ratios = log_ratios(model, later, np.full(len(later), "full"))
    factor = weekly_factors(model.market, later, ratios)
    ranges = {k: (low * factor, high * factor) for k, (low, high) in static.ranges.items()}
    return SaleEstimates(static.prices * factor, static.fsd, static.grades, ranges)


def _sales_on_record(after_month: int) -> Any:
    """The sales on record from the month after `after_month` on, with the house they were
    estimated for and that estimate's variant. Once an estimate is purged (retention), its
    variant is None and its house is the sale's own if it was matched by the house's fields,
    else None (such a sale is left out)."""
    return (
        select(
            sales.c.price,
            sales.c.sale_date,
            func.coalesce(estimates.c.house, sales.c.house).label("house"),
            estimates.c.variant,
        )
        .select_from(sales.outerjoin(estimates, sales.c.request_id == estimates.c.request_id))
        .where(sales.c.sale_date >= month_start(after_month + 1))
    )


def _variant_of(house: dict[str, Any], recorded: str | None) -> str | None:
    if recorded is not None:
        return recorded
    for variant in ("full", "minimal"):
        if all(house.get(f) is not None for f in GBM.variant_request_fields(variant)):
            return variant
    return None


def fed_back(engine: Engine, bundle: Bundle, after_month: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The sales on record after `after_month` the bundle can estimate (a variant's fields
    present, a zipcode it knows), as sales rows (house fields, demographics joined, TARGET,
    `date`), with each row's variant."""
    with engine.connect() as conn:
        rows = conn.execute(_sales_on_record(after_month)).all()
    known = set(bundle.demographics[ZIPCODE].astype(str))
    kept, variants = [], []
    for price, sale_date, house, recorded in rows:
        variant = _variant_of(house or {}, recorded)
        if variant is None or str(house.get(ZIPCODE)) not in known:
            continue
        kept.append(house | {TARGET: price, "date": sale_date.strftime("%Y%m%dT000000")})
        variants.append(variant)
    frame = pd.DataFrame(kept)
    if frame.empty:
        return frame, np.array([], dtype=str)
    frame[ZIPCODE] = frame[ZIPCODE].astype(str)
    demographics = bundle.demographics.assign(**{ZIPCODE: bundle.demographics[ZIPCODE].astype(str)})
    return frame.merge(demographics, on=ZIPCODE, how="left"), np.array(variants)


def check_refresh(version: str, old: MarketIndex, new: MarketIndex, months: np.ndarray) -> None:
    """RefreshRefused unless `new` (from the sales on record in `months`) carries `version`'s
    index further: a refresh that would change nothing, or would drop months the old index
    knew (its sales' estimates purged since, say), writes no version."""
    counted = (
        f"{np.count_nonzero(months == months.max())} in {month_label(int(months.max()))}"
        if len(months)
        else "none"
    )
    needs = (
        f"a month after {month_label(old.reference_month)} needs {MIN_MONTH_SALES} sales on "
        f"record (latest month: {counted})"
    )
    if new.last_month < old.last_month:
        raise RefreshRefused(
            f"the {len(months)} sales on record would take {version}'s index back from "
            f"{month_label(old.last_month)} to {month_label(new.last_month)} ({needs}): "
            "keep serving it"
        )
    if new == old:
        raise RefreshRefused(
            f"{version}'s index already says what the {len(months)} sales on record say: {needs}"
        )


def refresh(settings: Settings, bundle: Bundle, engine: Engine) -> tuple[str, MarketIndex]:
    """Write `bundle` again as a new version whose index is extended by the sales on record;
    returns the new version and its index. RefreshRefused for a kind without an index and when
    `check_refresh` refuses."""
    model = bundle.model
    if not isinstance(model, gbm.GbmModel):
        raise RefreshRefused(f"{bundle.version} is a {bundle.manifest.kind} bundle: no index")
    reference = model.market.reference_month
    sold, variants = fed_back(engine, bundle, reference)
    months = sale_months(sold) if len(sold) else np.array([], dtype=int)
    ratios = log_ratios(model, sold, variants) if len(sold) else np.array([])
    market = model.market.extended(months, ratios)
    check_refresh(bundle.version, model.market, market, months)
    manifest = bundle.manifest
    _, counts = np.unique(months, return_counts=True)
    used = int(counts[counts >= MIN_MONTH_SALES].sum())  # the sales of the months measured
    written = write_bundle(
        settings.model_dir,
        model=replace(model, market=market),
        input_features=manifest.input_features,
        demographics=bundle.demographics,
        data_files=manifest.data_files,
        metrics=manifest.metrics,
        training=manifest.training
        | {
            "market_refresh": {
                "from_version": bundle.version,
                "sales_on_record": used,
                "months": {
                    month_label(m): round(market.shift(m), 4)
                    for m in range(model.market.reference_month + 1, market.last_month + 1)
                },
                "rule": "median log ratio of sale price to the estimate at the reference "
                f"month, per month with at least {MIN_MONTH_SALES} sales "
                "(shared/model/market.py)",
            }
        },
        key=signing_key(settings, create=False),
        profile=manifest.profile,
    )
    return written.version, market
