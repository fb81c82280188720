"""`realty monitor`'s bands (shared/monitoring/monitor.py): each live figure against the model
report's date-ordered holdout, flagged when it leaves its band."""

from rich.console import Console

from shared.monitoring.accuracy import Accuracy
from shared.monitoring.drift import PREDICTION, Drift, FeatureDrift
from shared.monitoring.live import NO_PROFILE, LiveSnapshot, VersionAccuracy, VersionDrift
from shared.monitoring.monitor import Band, bands, render
from shared.settings import Settings

HOLDOUT = {"median_ape": 0.089, "within_10pct": 0.554, "within_20pct": 0.832, "bias": -0.046}
REPORT = {"splits": {"temporal": {"gbm": {"test": HOLDOUT}, "gbm_minimal": {"test": HOLDOUT}}}}


def figures(**values: float) -> Accuracy:
    base = {"n": 500, "median_ape": 0.09, "ppe5": 0.3, "ppe10": 0.55, "ppe20": 0.83}
    base |= {"over_20": 0.17, "bias": -0.04, "coverage_80": 0.80, "coverage_95": 0.95}
    return Accuracy(**(base | values))


def shown(snapshot: LiveSnapshot, kind: str = "gbm") -> str:
    console = Console(width=250, record=True, color_system=None)
    console.print(render(snapshot, REPORT, {"v3": kind}, Settings()))
    return console.export_text()


def test_bands_follow_the_holdout_figures_of_the_kind_and_variant() -> None:
    limits = bands(REPORT, "gbm", "full")
    assert limits["median_ape"] == Band(high=0.089 + 0.02)
    assert limits["ppe10"] == Band(low=0.554 - 0.05)
    assert limits["bias"].holds(-0.06) and not limits["bias"].holds(-0.07)
    assert limits["coverage_80"] == Band(0.75, 0.85)
    # no report, or a kind it does not cover: the promise of the 80 % range alone
    assert set(bands(None, "gbm", "full")) == {"coverage_80"}
    assert set(bands(REPORT, "baseline", "full")) == {"coverage_80"}


def test_a_figure_outside_its_band_is_flagged_and_one_inside_is_not() -> None:
    snapshot = LiveSnapshot(
        1.0,
        accuracy=[
            VersionAccuracy("v3", "full", figures(median_ape=0.15, coverage_80=0.70)),
            VersionAccuracy("v3", "minimal", figures()),
        ],
    )
    text = shown(snapshot)
    full = next(line for line in text.splitlines() if " full " in line)
    minimal = next(line for line in text.splitlines() if " minimal " in line)
    assert "15.0 % ⚠" in full and "70.0 % ⚠" in full and "55.0 %" in full
    assert "⚠" not in minimal


def test_drift_alerts_and_versions_without_a_profile_are_shown() -> None:
    alerted = FeatureDrift("sqft_living", 3.2, 100, 100, True)
    calm = FeatureDrift("bedrooms", 0.05, 100, 70, False)
    prediction = FeatureDrift(PREDICTION, 0.4, 100, 100, True)
    drift = Drift(100, [alerted, calm, prediction], 0.02, False)
    snapshot = LiveSnapshot(
        1.0, drift=[VersionDrift("v3", drift), VersionDrift("v2", None, NO_PROFILE)]
    )
    text = shown(snapshot)
    assert "sqft_living (PSI 3.20), prediction (PSI 0.40)" in text
    assert "0.40 ⚠" in text and "sqft_living 3.20, bedrooms 0.05" in text
    assert "retrain" in text


def test_an_unreadable_record_is_said_plainly() -> None:
    text = shown(LiveSnapshot(0.0, problem="PostgreSQL is unreachable"))
    assert "the record cannot be read: PostgreSQL is unreachable" in text
