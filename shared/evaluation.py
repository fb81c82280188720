"""`realty evaluate`: how well the client's model and the candidates generalise, on the same
data, splits and seeds, and why the improved model is built the way it is.

Protocols (every model gets exactly the same rows):
- client split: the client's own 75/25 `train_test_split(random_state=42)`; train vs test error.
- 5-fold cross-validation on the client's training split (repeat sales of a house in one fold).
- learning curve: the same folds, training on growing shares of each fold's training part.
- temporal holdout: fit on sales before TEMPORAL_CUTOFF, test on the months from it on.
- group split: GroupShuffleSplit by house `id`, so no house is on both sides.
- error by price band and by zipcode on the client's test split.

Model choices are made on the client's training split only: the hyper-parameter search and the
feature ablation use 5-fold cross-validation there. The client's test split is scored once per
model, at the end, and feeds no choice.
"""

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.model_selection import GroupShuffleSplit

from shared.data import FUTURE_FILE
from shared.demographics import join_demographics
from shared.features import BASELINE, HOUSE_COLUMNS, TARGET, ZIPCODE
from shared.models import gbm
from shared.settings import Settings
from shared.training import (
    SPLIT_SEED,
    client_sales_split,
    fit_baseline,
    fit_gbm,
    load_client_data,
    regression_metrics,
)

METRICS = ("r2", "mae", "rmse", "mape", "median_ape", "within_10pct", "within_20pct")
HIGHER_IS_BETTER = {"r2", "within_10pct", "within_20pct"}
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


def _gbm_candidate(name: str, label: str, config: gbm.GbmConfig, demo: list[str]) -> Candidate:
    def fit(train: pd.DataFrame) -> Fitted:
        return gbm.fit_variant(train, config, demo).predict

    return Candidate(name, label, fit)


def candidates(demo_cols: list[str]) -> list[Candidate]:
    return [
        _baseline_candidate(demo_cols),
        _gbm_candidate(
            "gbm", "improved model (all fields)", gbm.VARIANT_CONFIGS["full"], demo_cols
        ),
        _gbm_candidate(
            "gbm_minimal",
            "improved minimal model (8 fields)",
            gbm.VARIANT_CONFIGS["minimal"],
            demo_cols,
        ),
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


def _ape(actual: pd.Series, predicted: np.ndarray) -> np.ndarray:
    return np.abs(predicted - actual.to_numpy(dtype=float)) / actual.to_numpy(dtype=float)


def _inside(actual: pd.Series, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    values = actual.to_numpy(dtype=float)
    return (values >= low) & (values <= high)


def evaluate(settings: Settings, progress: Progress | None = None) -> dict[str, Any]:
    """Run every protocol; returns a JSON-ready dict of results (the report's only source)."""
    started = time.perf_counter()
    data = load_client_data(settings)
    demo_cols = gbm.demographic_columns(data.demographics)
    sales = join_demographics(data.sales, data.demographics)
    sales["sale_date"] = pd.to_datetime(sales["date"].str[:8], format="%Y%m%d")
    train, test = client_sales_split(data)
    train = sales.loc[train.index]
    test = sales.loc[test.index]
    models = candidates(demo_cols)
    ablation = ablation_steps(demo_cols)
    tasks = {
        "search": len(SEARCH_GRID),
        "ablation": len(ablation),
        "cv": len(models),
        "learning": len(LEARNING_SHARES) * 2,
        "client": 1,
        "temporal": 1,
        "group": 1,
    }
    progress = progress or Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "rows": len(sales),
            "first_sale": str(sales["sale_date"].min().date()),
            "last_sale": str(sales["sale_date"].max().date()),
            "repeat_sold_ids": int((sales["id"].value_counts() > 1).sum()),
            "zipcodes": int(sales[ZIPCODE].nunique()),
            "files": data.hashes,
        },
        "candidates": {c.name: c.label for c in models},
        "client_split": {"train_rows": len(train), "test_rows": len(test), "seed": SPLIT_SEED},
    }
    with progress:
        bars = {k: progress.add_task(k, total=v) for k, v in tasks.items()}
        cache: dict[str, Any] = {}

        def cached_cv(config: gbm.GbmConfig) -> dict[str, Any]:
            key = repr(config)
            if key not in cache:
                fit = lambda rows: gbm.fit_variant(rows, config, demo_cols).predict  # noqa: E731
                cache[key] = cross_validate(fit, train)
            return cache[key]

        # 1. hyper-parameters: CV on the client's training split only.
        search = []
        for point in SEARCH_GRID:
            config = gbm.VARIANT_CONFIGS["full"]
            params = {**config.params, "num_leaves": point["num_leaves"]}
            params["learning_rate"] = point["learning_rate"]
            tried = replace(config, params=params, rounds=point["rounds"])
            cv = cached_cv(tried)
            search.append({"params": point, "cv": cv})
            progress.advance(bars["search"])
        best = min(search, key=lambda s: s["cv"]["mae"]["mean"])
        served = {
            "num_leaves": gbm.PARAMS["num_leaves"],
            "learning_rate": gbm.PARAMS["learning_rate"],
            "rounds": gbm.NUM_ROUNDS,
        }
        results["search"] = {"grid": search, "selected": best["params"], "served": served}

        # 2. ablation: feature groups added one by one, CV on the training split. The same
        # configuration is cross-validated once (cached), e.g. the served model.
        steps = []
        for item in ablation:
            cv = cached_cv(item["config"])
            steps.append({k: v for k, v in item.items() if k != "config"} | {"cv": cv})
            progress.advance(bars["ablation"])
        results["ablation"] = steps

        # 3. 5-fold CV of every candidate on the client's training split.
        results["cv"] = {}
        for candidate in models:
            if candidate.name == "baseline":
                results["cv"][candidate.name] = cross_validate(candidate.fit, train)
            else:
                variant = "full" if candidate.name == "gbm" else "minimal"
                results["cv"][candidate.name] = cached_cv(gbm.VARIANT_CONFIGS[variant])
            progress.advance(bars["cv"])

        # 4. learning curve on the same folds.
        curve: dict[str, Any] = {"shares": list(LEARNING_SHARES)}
        for candidate in models[:2]:
            rows_used, train_scores, val_scores = [], [], []
            for share in LEARNING_SHARES:
                fold_train, fold_val = [], []
                for fit_rows, apply_rows in gbm.folds(train):
                    part = train.iloc[fit_rows]
                    part = part.sample(frac=share, random_state=SPLIT_SEED) if share < 1 else part
                    predict = candidate.fit(part)
                    held_out = train.iloc[apply_rows]
                    fold_train.append(regression_metrics(part[TARGET], predict(part)))
                    fold_val.append(regression_metrics(held_out[TARGET], predict(held_out)))
                rows_used.append(len(part))
                train_scores.append(_summary(fold_train))
                val_scores.append(_summary(fold_val))
                progress.advance(bars["learning"])
            curve[candidate.name] = {"rows": rows_used, "train": train_scores, "val": val_scores}
        results["learning_curve"] = curve

        # 5. the client's split: fit each model once, score the test split once.
        client: dict[str, Any] = {}
        baseline = models[0].fit(train)
        gbm_model = fit_gbm(train, data.demographics)
        predictions = {"baseline": baseline(test)}
        train_predictions = {"baseline": baseline(train)}
        intervals: dict[str, Any] = {}
        for name, variant_name in (("gbm", "full"), ("gbm_minimal", "minimal")):
            variant = gbm_model.variant(variant_name)
            predictions[name] = variant.predict(test)
            train_predictions[name] = variant.predict(train)
            intervals[name] = variant.intervals(predictions[name])
        for name in predictions:
            client[name] = {
                "train": regression_metrics(train[TARGET], train_predictions[name]),
                "test": regression_metrics(test[TARGET], predictions[name]),
            }
        coverage: dict[str, Any] = {"client": {}}
        for name, ranges in intervals.items():
            variant = gbm_model.variant("full" if name == "gbm" else "minimal")
            coverage["client"][name] = {
                level: {
                    "coverage": float(_inside(test[TARGET], low, high).mean()),
                    "log_halfwidth": variant.log_halfwidths[level],
                    "median_width_usd": float(np.median(high - low)),
                    "median_width_pct": float(np.median((high - low) / predictions[name])),
                }
                for level, (low, high) in ranges.items()
            }
        results["splits"] = {"client": client}
        results["example"] = _example(gbm_model, data.demographics, settings)
        progress.advance(bars["client"])

        # by price band and by zipcode, on the client's test split
        bands = _bands(test[TARGET])
        band_rows = []
        for band in bands.cat.categories:
            mask = (bands == band).to_numpy()
            row: dict[str, Any] = {"band": str(band), "rows": int(mask.sum())}
            for name, predicted in predictions.items():
                row[name] = regression_metrics(test[TARGET][mask], predicted[mask])
            for name, ranges in intervals.items():
                row[f"{name}_coverage"] = {
                    level: float(_inside(test[TARGET][mask], low[mask], high[mask]).mean())
                    for level, (low, high) in ranges.items()
                }
            band_rows.append(row)
        results["bands"] = band_rows
        zip_rows = []
        for zipcode, index in test.groupby(ZIPCODE).groups.items():
            mask = test.index.isin(index)
            entry: dict[str, Any] = {"zipcode": str(zipcode), "rows": int(mask.sum())}
            entry["median_price"] = float(test[TARGET][mask].median())
            for name, predicted in predictions.items():
                ape = _ape(test[TARGET][mask], predicted[mask])
                entry[name] = {"mape": float(ape.mean()), "median_ape": float(np.median(ape))}
            zip_rows.append(entry)
        results["zipcodes"] = sorted(zip_rows, key=lambda z: -z["gbm"]["mape"])
        results["plots"] = {
            "actual": test[TARGET].tolist(),
            "predicted": {name: p.tolist() for name, p in predictions.items()},
        }

        # 6. temporal holdout and 7. group split, with the full variant's ranges re-calibrated
        # on each protocol's own training rows.
        cutoff = pd.Timestamp(TEMPORAL_CUTOFF)
        earlier, later = sales[sales["sale_date"] < cutoff], sales[sales["sale_date"] >= cutoff]
        splitter = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=SPLIT_SEED)
        fit_rows, apply_rows = next(splitter.split(sales, groups=sales["id"]))
        protocols = {
            "temporal": (earlier, later),
            "group": (sales.iloc[fit_rows], sales.iloc[apply_rows]),
        }
        for name, (fit_on, test_on) in protocols.items():
            scores: dict[str, Any] = {}
            for candidate in models:
                if candidate.name == "gbm":
                    variant = gbm.fit_variant(fit_on, gbm.VARIANT_CONFIGS["full"], demo_cols)
                    gbm.calibrate(variant, fit_on)
                    predicted = variant.predict(test_on)
                    coverage[name] = {
                        "gbm": {
                            level: {"coverage": float(_inside(test_on[TARGET], low, high).mean())}
                            for level, (low, high) in variant.intervals(predicted).items()
                        }
                    }
                else:
                    predicted = candidate.fit(fit_on)(test_on)
                scores[candidate.name] = {"test": regression_metrics(test_on[TARGET], predicted)}
            results["splits"][name] = scores
            progress.advance(bars[name])
        results["coverage"] = coverage
        results["temporal"] = {
            "cutoff": TEMPORAL_CUTOFF,
            "train_rows": len(earlier),
            "test_rows": len(later),
            "median_usd_per_sqft_before": float(
                (earlier[TARGET] / earlier["sqft_living"]).median()
            ),
            "median_usd_per_sqft_from": float((later[TARGET] / later["sqft_living"]).median()),
        }
        results["group"] = {"train_rows": len(fit_rows), "test_rows": len(apply_rows)}

    results["beats_baseline"] = _beats(results)
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    return results


def _example(model: gbm.GbmModel, demographics: pd.DataFrame, settings: Settings) -> dict:
    """The first future example as the service would answer it (the Predictor's functions)."""
    future = pd.read_csv(settings.data_dir / FUTURE_FILE, dtype={ZIPCODE: str}).head(1)
    houses = join_demographics(future, demographics)
    variant = model.variant("full")
    matrix = variant.matrix(houses)
    price = variant.predict_matrix(matrix)
    factors = gbm.describe_factors(variant.dollar_contributions(matrix, price), houses)[0]
    return {
        "house": json.loads(future.to_json(orient="records"))[0],
        "prediction": float(price[0]),
        "intervals": {
            k: [float(lo[0]), float(hi[0])] for k, (lo, hi) in variant.intervals(price).items()
        },
        "factors": factors,
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
