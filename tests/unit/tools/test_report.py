"""The model report (shared/tools/report.py): the coverage targets it checks and the warnings it
gives agents, from a run's figures; and docs/model_report.md is what it makes of the committed
run's figures (docs/model_report.json), so the two cannot drift apart."""

import json
from pathlib import Path

from shared.tools.report import _band_coverage_caveat, _coverage_checks, render

REPO = Path(__file__).resolve().parents[3]


def _ranges(overall: float, bands: dict[str, float]) -> dict:
    """A protocol's range figures: the 80 % range's coverage as given, the 95 % one's nominal."""
    return {
        "overall": {"80": {"coverage": overall}, "95": {"coverage": 0.95}},
        "bands": [
            {"group": name, "rows": 100, "coverage": {"80": held, "95": 0.95}}
            for name, held in bands.items()
        ],
    }


def test_coverage_targets_are_two_points_overall_and_five_in_every_band() -> None:
    rows = _coverage_checks("p", _ranges(0.819, {"low": 0.751, "mid": 0.80, "high": 0.849}))
    verdicts = {row[1]: row[-1] for row in rows}
    assert verdicts["80 % range held, all homes"] == "met"
    assert verdicts["80 % range held, every sale-price band"] == "met"
    assert verdicts["95 % range held, every sale-price band"] == "met"

    rows = _coverage_checks("p", _ranges(0.777, {"low": 0.80, "high": 0.86}))
    verdicts = {row[1]: row for row in rows}
    assert verdicts["80 % range held, all homes"][-1] == "**not met**"
    worst = verdicts["80 % range held, every sale-price band"]
    assert worst[-1] == "**not met**" and worst[3].startswith("worst high: 86.0 %")


def test_a_bands_miss_is_set_beside_what_calibrated_ranges_would_hold_of_as_few_homes() -> None:
    """49 homes, 95 % ranges: calibrated ranges hold 43 to 49 of them, at least 95 times in 100
    (binomial); 41 held is below that, and the verdict stays the target's."""
    ranges = _ranges(0.95, {"low": 0.95, "high": 0.95})
    ranges["bands"][1] |= {"rows": 49, "coverage": {"80": 0.80, "95": 41 / 49}}
    rows = {row[1]: row for row in _coverage_checks("p", ranges)}
    worst = rows["95 % range held, every sale-price band"]
    assert worst[3] == "worst high: 83.7 % (49 homes; calibrated ranges: 87.8-100.0 % by chance)"
    assert worst[-1] == "**not met**"


def _band(name: str, full_80: float, minimal_80: float) -> dict:
    return {
        "band": name,
        "rows": 62,
        "gbm_coverage": {"80": full_80, "95": 0.95},
        "gbm_minimal_coverage": {"80": minimal_80, "95": 0.95},
    }


def test_the_caveat_tells_short_bands_from_wide_ones_for_each_model() -> None:
    said = _band_coverage_caveat([_band("$0k-300k", 0.74, 0.80), _band("$2,000k+", 0.871, 0.69)])
    short_full, wide_full, short_minimal = said.split(". Bands where ")
    assert "improved model's range held more than 5 points fewer" in short_full
    assert "$0k-300k (80 % range held 74.0 % of 62 homes)" in short_full
    assert wide_full.startswith("the improved model's range held more than 5 points more")
    assert "$2,000k+ (80 % range held 87.1 % of 62 homes)" in wide_full
    assert short_minimal.startswith("the improved minimal model's range held more than 5 points")
    assert "$2,000k+ (80 % range held 69.0 %" in short_minimal


def test_the_caveat_says_so_when_every_band_keeps_its_promise() -> None:
    said = _band_coverage_caveat([_band("$0k-300k", 0.78, 0.83)])
    assert said.startswith("Every price band's coverage is within 5 points")


def test_the_committed_report_is_what_the_report_makes_of_its_figures() -> None:
    results = json.loads((REPO / "docs/model_report.json").read_text())
    assert (REPO / "docs/model_report.md").read_text() == render(results)
