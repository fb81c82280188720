"""The live figures of every version, read from the record: accuracy over its latest sales fed
back, and drift over its latest estimates. One snapshot serves `/metrics` (as gauges, cached
for `live_cache_s`) and `realty monitor` (as a table).

Reading (`read_rows`, blocking SQLAlchemy Core on a Connection: the API runs it through its
async engine's `run_sync`) is kept apart from computing (`snapshot_of`, plain Python: the API
runs it in a thread), so neither the event loop nor the database waits on the other.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Connection, func, select

from shared.monitoring.accuracy import Accuracy, accuracy
from shared.monitoring.drift import Drift, Thresholds, drift
from shared.monitoring.profile import TrainingProfile
from shared.records.schema import estimates, sales
from shared.settings import Settings

NO_PROFILE = "no training profile in this bundle (trained before drift was kept): retrain it"
NO_ESTIMATES = "no recorded estimates yet"


@dataclass(frozen=True)
class SaleRow:
    """A sale joined to the estimate it scores."""

    model_version: str
    variant: str
    prediction: float
    price: float
    low_80: float | None
    high_80: float | None
    low_95: float | None
    high_95: float | None


@dataclass(frozen=True)
class EstimateRow:
    house: dict[str, Any]
    prediction: float
    warnings: list[str]


@dataclass(frozen=True)
class LiveRows:
    """What the record holds for the figures: each version's latest sales and estimates."""

    sales: list[SaleRow]
    estimates: dict[str, list[EstimateRow]]


@dataclass(frozen=True)
class VersionAccuracy:
    version: str
    variant: str
    figures: Accuracy


@dataclass(frozen=True)
class VersionDrift:
    """A version's drift, or why there is none (`note`)."""

    version: str
    drift: Drift | None
    note: str | None = None


@dataclass(frozen=True)
class LiveSnapshot:
    """The figures at `taken_at` (time.time()); `problem` says why the record could not be
    read (the figures are then empty)."""

    taken_at: float
    accuracy: list[VersionAccuracy] = field(default_factory=list)
    drift: list[VersionDrift] = field(default_factory=list)
    problem: str | None = None


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        psi_alert=settings.drift_psi_alert,
        min_rows_per_bin=settings.drift_min_rows_per_bin,
        out_of_range_alert=settings.out_of_range_alert,
    )


def _latest_sales(window: int) -> Any:
    """Each version and variant's latest `window` sales (by sale date, then as recorded) with
    their estimates: one query, the window counted by PostgreSQL."""
    ranked = (
        select(
            estimates.c.model_version,
            estimates.c.variant,
            estimates.c.prediction,
            sales.c.price,
            estimates.c.low_80,
            estimates.c.high_80,
            estimates.c.low_95,
            estimates.c.high_95,
            func.row_number()
            .over(
                partition_by=(estimates.c.model_version, estimates.c.variant),
                order_by=(sales.c.sale_date.desc(), sales.c.id.desc()),
            )
            .label("position"),
        )
        .select_from(sales.join(estimates, sales.c.request_id == estimates.c.request_id))
        .subquery()
    )
    return select(*(c for c in ranked.c if c.name != "position")).where(ranked.c.position <= window)


def _latest_estimates(version: str, window: int) -> Any:
    """A version's latest `window` estimates, newest first (the (version, time) index)."""
    return (
        select(estimates.c.house, estimates.c.prediction, estimates.c.warnings)
        .where(estimates.c.model_version == version)
        .order_by(estimates.c.created_at.desc())
        .limit(window)
    )


def read_rows(conn: Connection, versions: list[str], settings: Settings) -> LiveRows:
    """The rows of the figures: every version's latest sales, and the latest estimates of
    `versions` (those whose training profile is known)."""
    sold = [SaleRow(*row) for row in conn.execute(_latest_sales(settings.accuracy_window_sales))]
    recent = {
        version: [
            EstimateRow(row.house, row.prediction, row.warnings)
            for row in conn.execute(_latest_estimates(version, settings.drift_window_requests))
        ]
        for version in versions
    }
    return LiveRows(sold, recent)


def snapshot_of(
    rows: LiveRows,
    profiles: Mapping[str, TrainingProfile | None],
    settings: Settings,
    taken_at: float | None = None,
) -> LiveSnapshot:
    """The figures of `rows`: accuracy per version and variant by the one definition of the
    AVM figures, drift per version against its training profile (None: a bundle without)."""
    groups: dict[tuple[str, str], list[SaleRow]] = {}
    for sale in rows.sales:
        groups.setdefault((sale.model_version, sale.variant), []).append(sale)
    measured = [
        VersionAccuracy(
            version,
            variant,
            accuracy(
                [s.prediction for s in sold],
                [s.price for s in sold],
                [s.low_80 for s in sold],
                [s.high_80 for s in sold],
                [s.low_95 for s in sold],
                [s.high_95 for s in sold],
            ),
        )
        for (version, variant), sold in sorted(groups.items())
    ]
    limits = thresholds(settings)
    drifts = []
    for version in sorted(profiles):
        profile, recent = profiles[version], rows.estimates.get(version, [])
        if profile is None:
            drifts.append(VersionDrift(version, None, NO_PROFILE))
        elif not recent:
            drifts.append(VersionDrift(version, None, NO_ESTIMATES))
        else:
            found = drift(
                profile,
                [e.house for e in recent],
                [e.prediction for e in recent],
                [e.warnings for e in recent],
                limits,
            )
            drifts.append(VersionDrift(version, found))
    return LiveSnapshot(taken_at or time.time(), measured, drifts)


# --- /metrics --------------------------------------------------------------------------------

# name, help, the Accuracy field it shows
_ACCURACY_GAUGES = (
    (
        "realty_live_median_ape",
        "Median absolute error on the latest sales (0.08: 8 %).",
        "median_ape",
    ),
    ("realty_live_ppe10", "Share of the latest sales estimated within 10 %.", "ppe10"),
    ("realty_live_ppe20", "Share of the latest sales estimated within 20 %.", "ppe20"),
    ("realty_live_coverage_80", "Share of the latest sales inside the 80 % range.", "coverage_80"),
    ("realty_live_bias", "Median signed error on the latest sales (< 0: estimates low).", "bias"),
    ("realty_live_sales", "Sales fed back that the live figures are measured on.", "n"),
)


def metric_families(snapshot: LiveSnapshot) -> list[GaugeMetricFamily]:
    """The snapshot as Prometheus gauges, built as metric families (read at scrape time, never
    `Gauge` objects: shared/multiprocess_metrics.py says why): accuracy per version and variant,
    drift per version and feature, and whether the record could be read at all."""
    up = GaugeMetricFamily(
        "realty_live_figures_up",
        "1 when the live accuracy and drift figures could be read from PostgreSQL.",
        value=0 if snapshot.problem else 1,
    )
    age = GaugeMetricFamily(
        "realty_live_figures_age_seconds",
        "Age of the live figures (each API process reads them at most every live_cache_s).",
        value=max(0.0, time.time() - snapshot.taken_at),
    )
    families = [up, age]
    for name, doc, attribute in _ACCURACY_GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["version", "variant"])
        for measured in snapshot.accuracy:
            value = getattr(measured.figures, attribute)
            if value is not None:
                family.add_metric([measured.version, measured.variant], value)
        families.append(family)
    by_feature = ["version", "feature"]
    psi = GaugeMetricFamily(
        "realty_drift_psi",
        "Population stability index of a feature (or the prediction) over the version's latest "
        "estimates, against its training profile.",
        labels=by_feature,
    )
    alert = GaugeMetricFamily(
        "realty_drift_alert",
        "1 when that PSI is above drift_psi_alert over enough estimates to tell.",
        labels=by_feature,
    )
    requests = GaugeMetricFamily(
        "realty_drift_requests", "Estimates the version's drift is measured on.", labels=["version"]
    )
    out_of_range = GaugeMetricFamily(
        "realty_out_of_range_share",
        "Share of the version's latest estimates that warned of an input outside the training "
        "range.",
        labels=["version"],
    )
    out_of_range_alert = GaugeMetricFamily(
        "realty_out_of_range_alert",
        "1 when that share is above out_of_range_alert.",
        labels=["version"],
    )
    no_profile = GaugeMetricFamily(
        "realty_drift_no_profile",
        "1 for a version whose bundle has no training profile (retrain it to measure drift).",
        labels=["version"],
    )
    for version_drift in snapshot.drift:
        version, found = version_drift.version, version_drift.drift
        no_profile.add_metric([version], 1 if version_drift.note == NO_PROFILE else 0)
        if found is None:
            continue
        requests.add_metric([version], found.requests)
        for feature in found.features:
            if feature.psi is not None:
                psi.add_metric([version, feature.feature], feature.psi)
            alert.add_metric([version, feature.feature], 1 if feature.alert else 0)
        if found.out_of_range_share is not None:
            out_of_range.add_metric([version], found.out_of_range_share)
        out_of_range_alert.add_metric([version], 1 if found.out_of_range_alert else 0)
    return [*families, psi, alert, requests, out_of_range, out_of_range_alert, no_profile]
