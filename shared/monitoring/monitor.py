"""`realty monitor`: the live figures as tables, each figure flagged when it leaves its band.

The bands come from the model report's date-ordered holdout (docs/model_report.json, `make
evaluate`): the service estimates homes that sell later, as that holdout does. For the
report's model of the version's kind and variant (gbm full: "gbm", gbm minimal:
"gbm_minimal", baseline: "baseline"):
- median APE at most the holdout's + 2 points; PPE10 and PPE20 at least the holdout's - 5;
- bias within 2 points of the holdout's;
- 80 % range coverage from 75 to 85 %, what an 80 % range promises, give or take 5 points;
- drift: a PSI above `drift_psi_alert` (over enough estimates, shared/monitoring/drift.py),
  and a share of out-of-range warnings above `out_of_range_alert`.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.model.bundles import list_manifests
from shared.model.manifest import Manifest
from shared.monitoring.drift import PREDICTION
from shared.monitoring.live import LiveSnapshot, VersionAccuracy, read_rows, snapshot_of
from shared.records.database import failure_words
from shared.settings import Settings
from shared.wire import names

MEDIAN_APE_POINTS = 0.02
BIAS_POINTS = 0.02
PPE_POINTS = 0.05
COVERAGE_80 = (0.75, 0.85)
REPORT_MODEL = {("gbm", "full"): "gbm", ("gbm", "minimal"): "gbm_minimal"}
TOP_FEATURES = 3  # features shown per version, largest PSI first


@dataclass(frozen=True)
class Band:
    """Where a figure should stay; None: no bound on that side."""

    low: float | None = None
    high: float | None = None

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def bands(report: dict[str, Any] | None, kind: str | None, variant: str) -> dict[str, Band]:
    """The bands of a version's figures (coverage's alone when the report or the kind is
    unknown)."""
    found = {"coverage_80": Band(*COVERAGE_80)}
    name = REPORT_MODEL.get((kind or "", variant), kind)
    try:
        holdout = report["splits"]["temporal"][name]["test"]  # type: ignore[index]
    except (KeyError, TypeError):
        return found
    return found | {
        "median_ape": Band(high=holdout["median_ape"] + MEDIAN_APE_POINTS),
        "ppe10": Band(low=holdout["within_10pct"] - PPE_POINTS),
        "ppe20": Band(low=holdout["within_20pct"] - PPE_POINTS),
        "bias": Band(holdout["bias"] - BIAS_POINTS, holdout["bias"] + BIAS_POINTS),
    }


def read_report(path: Path) -> dict[str, Any] | None:
    """The model report's results, None when there is none to read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manifests(settings: Settings, client: redis.Redis | None) -> dict[str, Manifest]:
    """Every version's manifest: the bundles on disk, and those the workers registered in Redis
    (which win: they are what is served)."""
    found = {m.version: m for m in list_manifests(settings.model_dir)}
    if client is not None:
        try:
            for version in client.smembers(names.MODELS):
                raw = client.get(names.manifest_key(version))
                if raw is not None:
                    found[version] = Manifest.model_validate_json(raw)
        except (redis.RedisError, ValidationError):
            pass  # the bundles on disk still say what was trained
    return found


def take_snapshot(engine: Engine, known: dict[str, Manifest], settings: Settings) -> LiveSnapshot:
    """The live figures from the record, or a snapshot saying why they could not be read."""
    profiles = {version: m.profile for version, m in known.items()}
    measured = [version for version, profile in profiles.items() if profile is not None]
    try:
        with engine.connect() as connection:
            rows = read_rows(connection, measured, settings)
    except (SQLAlchemyError, OSError) as exc:
        return LiveSnapshot(0.0, problem=failure_words(exc))
    return snapshot_of(rows, profiles, settings)


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f} %" if signed else f"{value * 100:.1f} %"


def _flagged(text: str, ok: bool) -> str:
    return text if ok else f"[bold red]{text} ⚠[/bold red]"


def _accuracy_row(
    measured: VersionAccuracy, report: dict[str, Any] | None, kind: str | None
) -> list[str]:
    figures, limits = measured.figures, bands(report, kind, measured.variant)
    cells = [measured.version, measured.variant, f"{figures.n:,}"]
    for name, signed in (
        ("median_ape", False),
        ("ppe10", False),
        ("ppe20", False),
        ("coverage_80", False),
        ("bias", True),
    ):
        value = getattr(figures, name)
        band = limits.get(name)
        ok = value is None or band is None or band.holds(value)
        cells.append(_flagged(_pct(value, signed), ok))
    return cells


def accuracy_table(
    snapshot: LiveSnapshot, report: dict[str, Any] | None, kinds: dict[str, str]
) -> Table:
    table = Table(
        title="live accuracy: the latest sales fed back, per version and variant",
        caption="⚠: outside its band from the model report's date-ordered holdout: median "
        f"error above it + {MEDIAN_APE_POINTS * 100:.0f} points, PPE10/PPE20 below it - "
        f"{PPE_POINTS * 100:.0f}, bias more than {BIAS_POINTS * 100:.0f} points from it, 80 % "
        f"range coverage outside {COVERAGE_80[0] * 100:.0f}-{COVERAGE_80[1] * 100:.0f} %"
        + ("" if report else " (no model report found: coverage only)"),
    )
    for column in ("version", "variant", "sales", "median error", "PPE10", "PPE20"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for column in ("in 80 % range", "bias"):
        table.add_column(column, justify="right")
    for measured in snapshot.accuracy:
        table.add_row(*_accuracy_row(measured, report, kinds.get(measured.version)))
    if not snapshot.accuracy:
        table.add_row("-", "-", "0", *["-"] * 5)
    return table


def drift_table(snapshot: LiveSnapshot, settings: Settings) -> Table:
    table = Table(
        title="drift: the latest estimates against each version's training profile",
        caption=f"⚠: PSI above {settings.drift_psi_alert:g} over at least "
        f"{settings.drift_min_rows_per_bin} estimates per bin of the feature's profile; "
        f"out-of-range warnings on more than {settings.out_of_range_alert * 100:g} % of estimates",
    )
    for column in ("version", "estimates", "out of range", "prediction PSI", "largest PSI"):
        table.add_column(column, justify="left" if column == "largest PSI" else "right")
    table.add_column("alerts")
    for version_drift in snapshot.drift:
        found = version_drift.drift
        if found is None:
            table.add_row(version_drift.version, "0", "-", "-", version_drift.note or "", "")
            continue
        by_name = {f.feature: f for f in found.features}
        prediction = by_name[PREDICTION]
        features = sorted(
            (f for f in found.features if f.feature != PREDICTION and f.psi is not None),
            key=lambda f: -(f.psi or 0),
        )
        largest = ", ".join(f"{f.feature} {f.psi:.2f}" for f in features[:TOP_FEATURES])
        alerts = [f"{f.feature} (PSI {f.psi:.2f})" for f in found.features if f.alert]
        if found.out_of_range_alert:
            alerts.append("out-of-range inputs")
        table.add_row(
            version_drift.version,
            f"{found.requests:,}",
            _flagged(_pct(found.out_of_range_share), not found.out_of_range_alert),
            _flagged(
                "-" if prediction.psi is None else f"{prediction.psi:.2f}", not prediction.alert
            ),
            largest or "-",
            "[bold red]" + ", ".join(alerts) + "[/bold red]" if alerts else "none",
        )
    if not snapshot.drift:
        table.add_row("-", "0", "-", "-", "no versions known", "")
    return table


def render(
    snapshot: LiveSnapshot,
    report: dict[str, Any] | None,
    kinds: dict[str, str],
    settings: Settings,
) -> Group:
    """Both tables (`kinds`: each version's model kind), or why there are none."""
    if snapshot.problem:
        return Group(f"[bold red]the record cannot be read: {snapshot.problem}[/bold red]")
    return Group(accuracy_table(snapshot, report, kinds), drift_table(snapshot, settings))


def watch(
    engine: Engine,
    client: redis.Redis | None,
    settings: Settings,
    report_path: Path,
    console: Console,
    *,
    once: bool,
) -> bool:
    """Print the tables once, or keep them on screen, read again every `monitor_refresh_s`
    until interrupted; whether the record could be read (the last time)."""
    report = read_report(report_path)
    readable = True

    def current() -> Group:
        nonlocal readable
        known = manifests(settings, client)
        kinds = {version: m.kind for version, m in known.items()}
        snapshot = take_snapshot(engine, known, settings)
        readable = snapshot.problem is None
        return render(snapshot, report, kinds, settings)

    if once:
        console.print(current())
        return readable
    with Live(current(), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(settings.monitor_refresh_s)
                live.update(current(), refresh=True)
        except KeyboardInterrupt:
            pass
    return readable
