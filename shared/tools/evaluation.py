"""`realty evaluate`: how well the client's model and the candidates generalise, on the same
data, splits and seeds, and why the improved model is built the way it is.

Protocols (every model gets exactly the same rows):
- client split: the client's own 75/25 `train_test_split(random_state=42)`; train vs test error.
- 5-fold cross-validation on the client's training split (repeat sales of a house in one fold).
- learning curve: the same folds, training on growing shares of each fold's training part.
- temporal (date-ordered) holdout: fit on sales before TEMPORAL_CUTOFF, test on the months from
  it on; the market index, neighbour features and range calibration see the earlier sales only.
- group split: GroupShuffleSplit by house `id`, so no house is on both sides.
- error by price band and by zipcode on the client's test split.
- AVM figures on the three held-out protocols (median APE, PPE5/10/20, share off by more than
  20 %, bias), range coverage by price band and by confidence grade, the comparable sales used
  as an estimate by themselves on the date-ordered holdout, and the market-index choice.

A held-out sale is estimated as of its own sale month where the model learned that month (the
client and group splits) and as of the latest month it learned otherwise (every sale of the
date-ordered holdout: the model cannot know the later market).

Model choices are made on the client's training split only: the hyper-parameter search and the
feature ablation use 5-fold cross-validation there, the training loss a date-ordered validation
inside it (before the holdout's cutoff). The client's test split is scored once per
model, at the end, and feeds no choice.
"""

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sklearn.model_selection import GroupShuffleSplit

from shared.model.comps import ComparableSales
from shared.model.confidence import GRADES
from shared.model.contract import BASELINE, GBM, HOUSE_COLUMNS, TARGET, ZIPCODE
from shared.model.data import FUTURE_FILE
from shared.model.demographics import join_demographics
from shared.model.kinds import gbm
from shared.model.market import MarketIndex, month_label, sale_months
from shared.monitoring.accuracy import Accuracy, accuracy, share_within, signed_errors
from shared.settings import Settings
from shared.tools.market_refresh import REPORT_LAG_DAYS, rolling_estimates, weekly_factors
from shared.tools.training import (
    SPLIT_SEED,
    ClientData,
    SaleEstimates,
    client_sales_split,
    date_ordered_split,
    estimate_sales,
    fit_baseline,
    fit_gbm,
    load_client_data,
    range_coverage,
    regression_metrics,
)

METRICS = ("r2", "mae", "rmse", "mape", "median_ape", "within_10pct", "within_20pct")
HIGHER_IS_BETTER = {"r2", "within_10pct", "within_20pct"}
# The AVM industry's figures (shared/notes: median APE, PPE5/10/20, misses beyond 20 %, bias).
AVM_METRICS = ("median_ape", "within_5pct", "within_10pct", "within_20pct", "over_20pct", "bias")
# The targets on the date-ordered holdout and its floor on the client split.
AVM_TARGETS = {"median_ape": 0.08, "within_10pct": 0.58, "within_20pct": 0.84}
CLIENT_FLOOR = {"r2": 0.915, "mae": 61_000}
# The ranges' coverage targets: off their level by at most this much over all held-out homes,
# and in every sale-price band (PRICE_BANDS).
COVERAGE_OVERALL = 0.02
COVERAGE_PER_BAND = 0.05
COMPS_SHOWN = 5  # comps per home in the held-out comps test
COMPS_WITHIN = 0.15
TEMPORAL_CUTOFF = "2015-03-01"
PRICE_BANDS = (0, 300_000, 450_000, 650_000, 1_000_000, 2_000_000, np.inf)
LEARNING_SHARES = (0.1, 0.25, 0.5, 1.0)
# Hyper-parameter grid searched by 5-fold CV on the client's training split (full variant).
SEARCH_GRID: tuple[dict[str, Any], ...] = (
    {"num_leaves": 15, "learning_rate": 0.05, "rounds": 1000},
    {"num_leaves": 31, "learning_rate": 0.05, "rounds": 1000},
    {"num_leaves": 63, "learning_rate": 0.05, "rounds": 1000},
    {"num_leaves": 31, "learning_rate": 0.03, "rounds": 2000},
)
# The training losses compared on an inner date-ordered validation (`_objective_choice`): the
# client's training sales before TEMPORAL_CUTOFF, fitted on those before OBJECTIVE_CUTOFF and
# scored on the rest with the weekly index refresh replayed, as agents are served.
OBJECTIVES = ("regression", "l1")
OBJECTIVE_CUTOFF = "2014-12-01"
# The gbm bundle's variant behind each candidate of that kind.
VARIANT_OF = {"gbm": "full", "gbm_minimal": "minimal"}

Fitted = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    name: str
    label: str
    fit: Callable[[pd.DataFrame], Fitted]


def _baseline_candidate(demo_cols: list[str]) -> Candidate:
    columns = [*BASELINE.house_features, *demo_cols]  # the client's features, zipcode dropped

    def fit(train: pd.DataFrame) -> Fitted:
        model = fit_baseline(train[columns], train[TARGET])
        return lambda rows: np.asarray(model.predict(rows[columns]), dtype=float)

    return Candidate("baseline", "client's model (KNN, 8 fields)", fit)


def _gbm_fit(config: gbm.GbmConfig, demo_cols: list[str]) -> Callable[[pd.DataFrame], Fitted]:
    """As the bundle fits it: a market index of `train`, trees on prices moved to its latest
    month, each estimate moved to its row's sale month (the latest for later sales)."""

    def fit(train: pd.DataFrame) -> Fitted:
        market = MarketIndex.fit(train)
        variant = gbm.fit_variant(market.to_reference(train), config, demo_cols)
        return lambda rows: variant.predict(rows) * np.exp(market.log_level(sale_months(rows)))

    return fit


def candidates(demo_cols: list[str]) -> list[Candidate]:
    full, minimal = gbm.VARIANT_CONFIGS["full"], gbm.VARIANT_CONFIGS["minimal"]
    return [
        _baseline_candidate(demo_cols),
        Candidate("gbm", "improved model (all fields)", _gbm_fit(full, demo_cols)),
        Candidate("gbm_minimal", "improved minimal model (8 fields)", _gbm_fit(minimal, demo_cols)),
    ]


def _summary(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and std (ddof 1) of each metric over folds, and every fold's MAE (the folds are the
    same for every model, so two models can be compared fold by fold)."""
    summary: dict[str, Any] = {
        m: {
            "mean": float(np.mean([f[m] for f in per_fold])),
            "std": float(np.std([f[m] for f in per_fold], ddof=1)),
        }
        for m in METRICS
    }
    summary["mae_folds"] = [float(f["mae"]) for f in per_fold]
    return summary


def cross_validate(fit: Callable[[pd.DataFrame], Fitted], sales: pd.DataFrame) -> dict:
    """5-fold CV (the same GroupKFold folds for every model): mean and std of each metric."""
    scores = []
    for fit_rows, apply_rows in gbm.folds(sales):
        predict = fit(sales.iloc[fit_rows])
        held_out = sales.iloc[apply_rows]
        scores.append(regression_metrics(held_out[TARGET], predict(held_out)))
    return _summary(scores)


def ablation_steps(demo_cols: list[str]) -> list[dict[str, Any]]:
    """Feature groups added one at a time ("step", each compared with the step above), ending at
    each served variant; then alternatives that were tried and not kept ("alternative", each
    compared with the served variant)."""
    size = BASELINE.house_features
    quality = tuple(c for c in HOUSE_COLUMNS if c not in (*size, ZIPCODE, "lat", "long"))
    full, minimal = gbm.VARIANT_CONFIGS["full"], gbm.VARIANT_CONFIGS["minimal"]
    none = replace(full, house_features=size, demographics=False, derived=())
    plan = [
        ("full", "step", "client's 7 size columns only", none),
        ("full", "step", "+ zipcode demographics", replace(none, demographics=True)),
        (
            "full",
            "step",
            "+ quality, age, nearby-homes columns",
            replace(full, house_features=size + quality, derived=()),
        ),
        ("full", "step", "+ latitude / longitude", replace(full, derived=())),
        (
            "full",
            "step",
            "+ rotated coordinates",
            replace(full, derived=("rotated_coordinates",)),
        ),
        ("full", "step", "+ price level of the 10 nearest sales (= served)", full),
        (
            "full",
            "alternative",
            "served + size ratios, effective year",
            replace(full, derived=(*full.derived, "ratios")),
        ),
        (
            "full",
            "alternative",
            "served + zipcode price level",
            replace(full, derived=(*full.derived, "zip_level")),
        ),
        (
            "full",
            "alternative",
            "served, on raw price instead of log(price)",
            replace(full, log_target=False),
        ),
        ("minimal", "step", "client's 7 size columns only", none),
        ("minimal", "step", "+ zipcode demographics", replace(minimal, derived=())),
        ("minimal", "step", "+ zipcode price level (= served)", minimal),
        (
            "minimal",
            "alternative",
            "served + living / lot ratio",
            replace(minimal, derived=(*minimal.derived, "ratios")),
        ),
        (
            "minimal",
            "alternative",
            "served, on raw price instead of log(price)",
            replace(minimal, log_target=False),
        ),
    ]
    return [{"variant": v, "kind": k, "step": label, "config": c} for v, k, label, c in plan]


def _bands(prices: pd.Series) -> pd.Series:
    labels = []
    for low, high in itertools.pairwise(PRICE_BANDS):
        labels.append(
            f"${low / 1000:,.0f}k+"
            if high == np.inf
            else f"${low / 1000:,.0f}k-{high / 1000:,.0f}k"
        )
    return pd.cut(prices, bins=list(PRICE_BANDS), labels=labels, right=False)


def _avm(actual: pd.Series, predicted: np.ndarray) -> Accuracy:
    """The AVM figures by their one definition, shared with the live figures of the running
    service (shared/monitoring/accuracy.py)."""
    return accuracy(np.asarray(predicted, dtype=float).tolist(), actual.tolist())


@dataclass
class _Run:
    """What every protocol of one evaluation shares: the same sales, the client's split, the
    candidates, progress bars, and the CV results of each gbm configuration (the search, the
    ablation and the candidates' CV meet the same configurations; each is cross-validated
    once)."""

    data: ClientData
    demo_cols: list[str]
    sales: pd.DataFrame  # every sale, demographics joined, with `sale_date`
    train: pd.DataFrame
    test: pd.DataFrame
    models: list[Candidate]
    ablation_plan: list[dict[str, Any]]
    progress: Progress
    bars: dict[str, TaskID] = field(default_factory=dict)
    cv_cache: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start_bars(self) -> None:
        """One bar per protocol, counted in model fits."""
        totals = {
            "objective": len(OBJECTIVES),
            "search": len(SEARCH_GRID),
            "ablation": len(self.ablation_plan),
            "cv": len(self.models),
            "learning": len(LEARNING_SHARES) * 2,
            "client": 1,
            "temporal": 1,
            "group": 1,
            "market": 1,
        }
        self.bars = {k: self.progress.add_task(k, total=v) for k, v in totals.items()}

    def advance(self, protocol: str) -> None:
        self.progress.advance(self.bars[protocol])

    def gbm_cv(self, config: gbm.GbmConfig) -> dict[str, Any]:
        key = repr(config)
        if key not in self.cv_cache:
            self.cv_cache[key] = cross_validate(_gbm_fit(config, self.demo_cols), self.train)
        return self.cv_cache[key]


@dataclass
class _ClientSplitFit:
    """The client's split, fitted once per model and shared by the scores, the coverage, the
    price bands and the zipcodes, so that every figure of it comes from the same answers."""

    gbm_model: gbm.GbmModel
    predictions: dict[str, np.ndarray]
    train_predictions: dict[str, np.ndarray]
    estimates: dict[str, SaleEstimates]

    @property
    def intervals(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        return {name: e.ranges for name, e in self.estimates.items()}


def _progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )


def _prepare(settings: Settings, progress: Progress) -> _Run:
    data = load_client_data(settings)
    demo_cols = gbm.demographic_columns(data.demographics)
    sales = join_demographics(data.sales, data.demographics)
    sales["sale_date"] = pd.to_datetime(sales["date"].str[:8], format="%Y%m%d")
    train, test = client_sales_split(data)
    return _Run(
        data=data,
        demo_cols=demo_cols,
        sales=sales,
        train=sales.loc[train.index],
        test=sales.loc[test.index],
        models=candidates(demo_cols),
        ablation_plan=ablation_steps(demo_cols),
        progress=progress,
    )


def _description(run: _Run) -> dict[str, Any]:
    """The run's provenance, which the report opens with; the file hashes tie its figures to
    the data they came from."""
    sales = run.sales
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "rows": len(sales),
            "first_sale": str(sales["sale_date"].min().date()),
            "last_sale": str(sales["sale_date"].max().date()),
            "repeat_sold_ids": int((sales["id"].value_counts() > 1).sum()),
            "zipcodes": int(sales[ZIPCODE].nunique()),
            "files": run.data.hashes,
        },
        "candidates": {c.name: c.label for c in run.models},
        "client_split": {
            "train_rows": len(run.train),
            "test_rows": len(run.test),
            "seed": SPLIT_SEED,
        },
    }


def _hyper_parameter_search(run: _Run) -> dict[str, Any]:
    """CV on the client's training split only, so that the test split feeds no choice."""
    search = []
    for point in SEARCH_GRID:
        config = gbm.VARIANT_CONFIGS["full"]
        params = {**config.params, "num_leaves": point["num_leaves"]}
        params["learning_rate"] = point["learning_rate"]
        tried = replace(config, params=params, rounds=point["rounds"])
        search.append({"params": point, "cv": run.gbm_cv(tried)})
        run.advance("search")
    best = min(search, key=lambda s: s["cv"]["mae"]["mean"])
    served = {
        "num_leaves": gbm.PARAMS["num_leaves"],
        "learning_rate": gbm.PARAMS["learning_rate"],
        "rounds": gbm.NUM_ROUNDS,
    }
    return {"grid": search, "selected": best["params"], "served": served}


def _objective_choice(run: _Run) -> dict[str, Any]:
    """The loss of the trees, chosen by the AVM figures the agents' targets are set in, on sales
    that are neither a client test row nor a date-ordered holdout row: the client's training
    sales before TEMPORAL_CUTOFF, split again by date at OBJECTIVE_CUTOFF; each variant's own
    estimates, moved by the full variant's refreshed index as served. Selected per variant: the
    lower median error; a loss is a choice CV MAE cannot make (MAE in dollars is a mean's
    metric)."""
    earlier, _ = date_ordered_split(run.train, TEMPORAL_CUTOFF)
    fit_on, test_on = date_ordered_split(earlier, OBJECTIVE_CUTOFF)
    market = MarketIndex.fit(fit_on)
    reference = market.to_reference(fit_on)
    actual = test_on[TARGET]
    figures: dict[str, dict[str, Any]] = {}
    for objective in OBJECTIVES:
        at_reference = {}
        for variant, config in gbm.VARIANT_CONFIGS.items():
            tried = replace(config, params={**config.params, "objective": objective})
            at_reference[variant] = gbm.fit_variant(reference, tried, run.demo_cols).predict(
                test_on
            )
        ratios = np.log(actual.to_numpy(dtype=float) / at_reference["full"])
        factors = weekly_factors(market, test_on, ratios)
        figures[objective] = {
            variant: regression_metrics(actual, prices * factors)
            for variant, prices in at_reference.items()
        }
        run.advance("objective")
    return {
        "before": TEMPORAL_CUTOFF,
        "cutoff": OBJECTIVE_CUTOFF,
        "fit_rows": len(fit_on),
        "test_rows": len(test_on),
        "figures": figures,
        "selected": {
            variant: min(OBJECTIVES, key=lambda o: figures[o][variant]["median_ape"])
            for variant in gbm.VARIANT_CONFIGS
        },
        "served": gbm.PARAMS["objective"],
    }


def _ablation(run: _Run) -> list[dict[str, Any]]:
    """Feature groups added one by one, CV on the training split."""
    steps = []
    for item in run.ablation_plan:
        cv = run.gbm_cv(item["config"])
        steps.append({k: v for k, v in item.items() if k != "config"} | {"cv": cv})
        run.advance("ablation")
    return steps


def _candidates_cv(run: _Run) -> dict[str, Any]:
    """5-fold CV of every candidate on the client's training split."""
    scores = {}
    for candidate in run.models:
        if candidate.name == "baseline":
            scores[candidate.name] = cross_validate(candidate.fit, run.train)
        else:
            scores[candidate.name] = run.gbm_cv(gbm.VARIANT_CONFIGS[VARIANT_OF[candidate.name]])
        run.advance("cv")
    return scores


def _learning_point(
    run: _Run, candidate: Candidate, share: float
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """One point of the curve: the CV's own folds with only each training part cut to `share`,
    so the last point matches the CV and the points differ in data size alone."""
    fold_train, fold_val = [], []
    for fit_rows, apply_rows in gbm.folds(run.train):
        part = run.train.iloc[fit_rows]
        part = part.sample(frac=share, random_state=SPLIT_SEED) if share < 1 else part
        predict = candidate.fit(part)
        held_out = run.train.iloc[apply_rows]
        fold_train.append(regression_metrics(part[TARGET], predict(part)))
        fold_val.append(regression_metrics(held_out[TARGET], predict(held_out)))
    return len(part), _summary(fold_train), _summary(fold_val)


def _learning_curve(run: _Run) -> dict[str, Any]:
    curve: dict[str, Any] = {"shares": list(LEARNING_SHARES)}
    for candidate in run.models[:2]:
        rows_used, train_scores, val_scores = [], [], []
        for share in LEARNING_SHARES:
            rows, train_summary, val_summary = _learning_point(run, candidate, share)
            rows_used.append(rows)
            train_scores.append(train_summary)
            val_scores.append(val_summary)
            run.advance("learning")
        curve[candidate.name] = {"rows": rows_used, "train": train_scores, "val": val_scores}
    return curve


def _fit_client_split(run: _Run) -> _ClientSplitFit:
    """Each model fitted once on the client's training split; the test split is scored once."""
    baseline = run.models[0].fit(run.train)
    gbm_model = fit_gbm(run.train, run.data.demographics)
    predictions = {"baseline": baseline(run.test)}
    train_predictions = {"baseline": baseline(run.train)}
    estimates: dict[str, SaleEstimates] = {}
    for name, variant_name in VARIANT_OF.items():
        variant = gbm_model.variant(variant_name)
        estimates[name] = estimate_sales(variant, gbm_model.market, run.test)
        predictions[name] = estimates[name].prices
        train_predictions[name] = estimate_sales(variant, gbm_model.market, run.train).prices
    return _ClientSplitFit(gbm_model, predictions, train_predictions, estimates)


def _client_scores(run: _Run, fitted: _ClientSplitFit) -> dict[str, Any]:
    """Training and test metrics side by side: the over- or under-fitting check."""
    return {
        name: {
            "train": regression_metrics(run.train[TARGET], fitted.train_predictions[name]),
            "test": regression_metrics(run.test[TARGET], predicted),
        }
        for name, predicted in fitted.predictions.items()
    }


def _coverage(test: pd.DataFrame, estimates: SaleEstimates) -> dict[str, Any]:
    """How often each price range held the sale price, and how wide it was."""
    return {
        level: {
            "coverage": range_coverage(test[TARGET], low, high),
            "median_width_usd": float(np.median(high - low)),
            "median_width_pct": float(np.median((high - low) / estimates.prices)),
        }
        for level, (low, high) in estimates.ranges.items()
    }


def _ranges_by_group(
    test: pd.DataFrame, estimates: SaleEstimates, groups: np.ndarray, labels: list[str]
) -> list[dict[str, Any]]:
    """Per group (price band or confidence grade): homes, their share, the share within 10 %
    and 20 % of the sale, the median FSD and each range's coverage."""
    rows = []
    for label in labels:
        mask = groups == label
        row: dict[str, Any] = {"group": label, "rows": int(mask.sum())}
        row["share"] = float(mask.mean())
        if mask.any():
            figures = _avm(test[TARGET][mask], estimates.prices[mask])
            row["within_10pct"] = figures.ppe10
            row["within_20pct"] = figures.ppe20
            row["median_fsd"] = float(np.median(estimates.fsd[mask]))
            row["coverage"] = {
                level: range_coverage(test[TARGET][mask], low[mask], high[mask])
                for level, (low, high) in estimates.ranges.items()
            }
        rows.append(row)
    return rows


def _range_report(test: pd.DataFrame, estimates: dict[str, SaleEstimates]) -> dict[str, Any]:
    """Overall coverage and width, coverage by price band and by grade, per gbm variant."""
    bands = _bands(test[TARGET]).astype(str).to_numpy()
    band_labels = [str(b) for b in _bands(test[TARGET]).cat.categories]
    return {
        name: {
            "overall": _coverage(test, e),
            "bands": _ranges_by_group(test, e, bands, band_labels),
            "grades": _ranges_by_group(test, e, e.grades, list(GRADES)),
        }
        for name, e in estimates.items()
    }


def _by_price_band(test: pd.DataFrame, fitted: _ClientSplitFit) -> list[dict[str, Any]]:
    bands = _bands(test[TARGET])
    band_rows = []
    for band in bands.cat.categories:
        mask = (bands == band).to_numpy()
        row: dict[str, Any] = {"band": str(band), "rows": int(mask.sum())}
        for name, predicted in fitted.predictions.items():
            row[name] = regression_metrics(test[TARGET][mask], predicted[mask])
        for name, ranges in fitted.intervals.items():
            row[f"{name}_coverage"] = {
                level: range_coverage(test[TARGET][mask], low[mask], high[mask])
                for level, (low, high) in ranges.items()
            }
        band_rows.append(row)
    return band_rows


def _by_zipcode(test: pd.DataFrame, predictions: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Hardest zipcode for the improved model first."""
    zip_rows = []
    for zipcode, index in test.groupby(ZIPCODE).groups.items():
        mask = test.index.isin(index)
        entry: dict[str, Any] = {"zipcode": str(zipcode), "rows": int(mask.sum())}
        entry["median_price"] = float(test[TARGET][mask].median())
        actual = test[TARGET][mask]
        values = actual.to_numpy(dtype=float)
        for name, predicted in predictions.items():
            entry[name] = {
                "mape": float((np.abs(predicted[mask] - values) / values).mean()),
                "median_ape": _avm(actual, predicted[mask]).median_ape,
            }
        zip_rows.append(entry)
    return sorted(zip_rows, key=lambda z: -z["gbm"]["mape"])


def _plot_data(test: pd.DataFrame, predictions: dict[str, np.ndarray]) -> dict[str, Any]:
    """The predicted-vs-actual chart's points (left out of model_report.json: too many)."""
    return {
        "actual": test[TARGET].tolist(),
        "predicted": {name: p.tolist() for name, p in predictions.items()},
    }


def _other_protocols(sales: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Harder tests than the client's random split: later sales predicted from earlier ones,
    and no house on both sides; each as (fit on, test on)."""
    earlier, later = date_ordered_split(sales, TEMPORAL_CUTOFF)  # as `realty train --sales-before`
    splitter = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=SPLIT_SEED)
    fit_rows, apply_rows = next(splitter.split(sales, groups=sales["id"]))
    return {
        "temporal": (earlier, later),
        "group": (sales.iloc[fit_rows], sales.iloc[apply_rows]),
    }


def date_ordered_holdout(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The date-ordered holdout's sales (demographics joined): those before TEMPORAL_CUTOFF,
    which its model is fitted on, and the later ones it is scored on."""
    data = load_client_data(settings)
    return date_ordered_split(join_demographics(data.sales, data.demographics), TEMPORAL_CUTOFF)


def holdout_figures(model: gbm.GbmModel, later: pd.DataFrame, variant: str = "full") -> Accuracy:
    """The AVM figures and range coverage of `model`'s `variant` on held-out `later` sales,
    each estimated as the held-out protocols estimate a sale (`estimate_sales`): what the live
    figures of a version serving `model` must come to once those sales are fed back."""
    estimates = estimate_sales(model.variant(variant), model.market, later)
    (low_80, high_80), (low_95, high_95) = estimates.ranges["80"], estimates.ranges["95"]
    return accuracy(
        estimates.prices.tolist(),
        later[TARGET].tolist(),
        low_80.tolist(),
        high_80.tolist(),
        low_95.tolist(),
        high_95.tolist(),
    )


def _score_protocol(
    run: _Run, fit_on: pd.DataFrame, test_on: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any], gbm.GbmModel]:
    """Every candidate's test metrics and the gbm variants' ranges, both fitted as `realty
    train gbm` fits them (market index, calibration) on this protocol's training rows only."""
    model = fit_gbm(fit_on, run.data.demographics)
    estimates = {
        name: estimate_sales(model.variant(v), model.market, test_on)
        for name, v in VARIANT_OF.items()
    }
    predicted = {"baseline": run.models[0].fit(fit_on)(test_on)}
    predicted |= {name: e.prices for name, e in estimates.items()}
    scores = {n: {"test": regression_metrics(test_on[TARGET], p)} for n, p in predicted.items()}
    return scores, _range_report(test_on, estimates), model


def _score_refreshed(
    model: gbm.GbmModel, later: pd.DataFrame, baseline: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The date-ordered holdout again, as a service that refreshes its index every week from
    the sales fed back (`realty market refresh`) would have estimated it: the same trees, each
    sale from the sales before its week only. The client's model has no index to refresh: its
    figures are the holdout's."""
    estimates = {
        name: rolling_estimates(model, variant, later) for name, variant in VARIANT_OF.items()
    }
    scores = {"baseline": baseline} | {
        name: {"test": regression_metrics(later[TARGET], e.prices)} for name, e in estimates.items()
    }
    return scores, _range_report(later, estimates)


def _comps_holdout(
    comparables: ComparableSales, market: MarketIndex, later: pd.DataFrame
) -> dict[str, Any]:
    """The comparable sales as an estimate by themselves: the median of COMPS_SHOWN comps'
    prices moved to the latest month learned, against each later sale, per rule."""
    out = {}
    for variant in ("full", "minimal"):
        houses = later[list(GBM.variant_request_fields(variant))]
        comps = comparables.find(houses, market.last_month, COMPS_SHOWN, market)
        estimate = np.array([np.median([c.price_as_of for c in row]) for row in comps])
        figures = _avm(later[TARGET], estimate)
        signed = signed_errors(estimate.tolist(), later[TARGET].tolist())
        out[variant] = {
            "comps": COMPS_SHOWN,
            "rows": figures.n,
            "within_15pct": share_within(signed, COMPS_WITHIN),
            "within_10pct": figures.ppe10,
            "median_ape": figures.median_ape,
            # The minimal rule has no distances (None: JSON has no NaN).
            "median_miles": (
                float(np.median([c.distance_miles for row in comps for c in row]))
                if variant == "full"
                else None
            ),
        }
    return out


def _market_choice(run: _Run, earlier: pd.DataFrame, later: pd.DataFrame) -> dict[str, Any]:
    """Why a market index: on the date-ordered holdout, the full variant without any notion of
    time, with the sale month as one more feature (estimated at the latest month learned), and
    with the index (the served design), each fitted on the earlier sales only."""
    config = gbm.VARIANT_CONFIGS["full"]
    actual = later[TARGET]
    plain = gbm.fit_variant(earlier, config, run.demo_cols).predict(later)
    with_month = replace(config, house_features=(*config.house_features, "sale_month"))
    month_fit = gbm.fit_variant(
        earlier.assign(sale_month=sale_months(earlier)), with_month, run.demo_cols
    )
    latest = int(sale_months(earlier).max())
    by_month = month_fit.predict(later.assign(sale_month=latest))
    indexed = _gbm_fit(config, run.demo_cols)(earlier)(later)
    market = MarketIndex.fit(earlier)
    return {
        "no_time": regression_metrics(actual, plain),
        "month_feature": regression_metrics(actual, by_month),
        "index": regression_metrics(actual, indexed),
        "index_levels": {
            month_label(market.first_month + i): level for i, level in enumerate(market.log_levels)
        },
    }


def _market_shift(earlier: pd.DataFrame, later: pd.DataFrame) -> dict[str, Any]:
    """How far prices per sq ft moved across the cutoff: the report's explanation of the
    temporal holdout's larger error."""
    return {
        "cutoff": TEMPORAL_CUTOFF,
        "train_rows": len(earlier),
        "test_rows": len(later),
        "median_usd_per_sqft_before": float((earlier[TARGET] / earlier["sqft_living"]).median()),
        "median_usd_per_sqft_from": float((later[TARGET] / later["sqft_living"]).median()),
    }


def evaluate(settings: Settings, progress: Progress | None = None) -> dict[str, Any]:
    """Run every protocol; returns a JSON-ready dict of results (the report's only source).

    Model choices (search, ablation) come first and use the training split only; the client's
    test split is scored once, after them.
    """
    started = time.perf_counter()
    run = _prepare(settings, progress or _progress_bars())
    results = _description(run)
    with run.progress:
        run.start_bars()
        results["objective"] = _objective_choice(run)
        results["search"] = _hyper_parameter_search(run)
        results["ablation"] = _ablation(run)
        results["cv"] = _candidates_cv(run)
        results["learning_curve"] = _learning_curve(run)

        fitted = _fit_client_split(run)
        results["splits"] = {"client": _client_scores(run, fitted)}
        ranges = {"client": _range_report(run.test, fitted.estimates)}
        results["example"] = _example(fitted.gbm_model, run.data.demographics, settings)
        results["market"] = {"as_of_months": list(fitted.gbm_model.market.months())}
        run.advance("client")
        results["bands"] = _by_price_band(run.test, fitted)
        results["zipcodes"] = _by_zipcode(run.test, fitted.predictions)
        results["plots"] = _plot_data(run.test, fitted.predictions)

        protocols = _other_protocols(run.sales)
        for name, (fit_on, test_on) in protocols.items():
            results["splits"][name], ranges[name], model = _score_protocol(run, fit_on, test_on)
            if name == "temporal":
                results["comps"] = _comps_holdout(model.comparables, model.market, test_on)
                results["splits"]["refreshed"], ranges["refreshed"] = _score_refreshed(
                    model, test_on, results["splits"]["temporal"]["baseline"]
                )
            run.advance(name)
        results["ranges"] = ranges
        results["refresh_replay"] = {"report_lag_days": REPORT_LAG_DAYS}
        results["coverage"] = {
            split: {name: r["overall"] for name, r in per_model.items()}
            for split, per_model in ranges.items()
        }
        results["temporal"] = _market_shift(*protocols["temporal"])
        results["market"] |= _market_choice(run, *protocols["temporal"])
        run.advance("market")
        group_train, group_test = protocols["group"]
        results["group"] = {"train_rows": len(group_train), "test_rows": len(group_test)}

    results["beats_baseline"] = _beats(results)
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    return results


def _example(model: gbm.GbmModel, demographics: pd.DataFrame, settings: Settings) -> dict:
    """The first future example as the service would answer it (the Predictor's functions),
    at the latest month learned, with three comparable sales."""
    future = pd.read_csv(settings.data_dir / FUTURE_FILE, dtype={ZIPCODE: str}).head(1)
    houses = join_demographics(future, demographics)
    variant = model.variant("full")
    matrix = variant.matrix(houses)
    price = variant.predict_matrix(matrix)
    factors = gbm.describe_factors(variant.dollar_contributions(matrix, price), houses)[0]
    uncertainty = variant.uncertainty(matrix, price)
    if uncertainty is None:
        raise ValueError("the example's variant is not calibrated")
    comps = model.comparables.find(houses, model.market.last_month, 3, model.market)[0]
    return {
        "house": json.loads(future.to_json(orient="records"))[0],
        "as_of": model.market.default_as_of(),
        "prediction": float(price[0]),
        "fsd": float(uncertainty.fsd[0]),
        "confidence": str(uncertainty.grades[0]),
        "intervals": {
            k: [float(lo[0]), float(hi[0])] for k, (lo, hi) in uncertainty.ranges.items()
        },
        "factors": factors,
        "comps": [c.model_dump() for c in comps],
    }


def _better(metric: str, challenger: float, incumbent: float) -> bool:
    return challenger > incumbent if metric in HIGHER_IS_BETTER else challenger < incumbent


def _beats(results: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """For each challenger and protocol, the metrics on which it does NOT beat the baseline
    (empty lists everywhere = beats it on every metric of every split)."""
    out: dict[str, dict[str, list[str]]] = {}
    for challenger in ("gbm", "gbm_minimal"):
        out[challenger] = {}
        for split, scores in results["splits"].items():
            if challenger not in scores:
                continue
            mine, theirs = scores[challenger]["test"], scores["baseline"]["test"]
            out[challenger][split] = [m for m in METRICS if not _better(m, mine[m], theirs[m])]
        mine_cv, theirs_cv = results["cv"][challenger], results["cv"]["baseline"]
        out[challenger]["cv"] = [
            m for m in METRICS if not _better(m, mine_cv[m]["mean"], theirs_cv[m]["mean"])
        ]
    return out
