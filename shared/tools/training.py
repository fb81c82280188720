"""Training model kinds into bundles. `baseline` is the client's script, reproduced exactly;
`gbm` is the improved model (shared/model/kinds/gbm.py), both variants in one bundle."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from shared.model.bundles import Manifest, write_bundle
from shared.model.comps import ComparableSales
from shared.model.contract import BASELINE, GBM, HOUSE_COLUMNS, TARGET, VARIANTS, ZIPCODE
from shared.model.data import DEMOGRAPHICS_FILE, SALES_FILE, read_csv, sha256_file
from shared.model.demographics import join_demographics
from shared.model.kinds import Model, gbm
from shared.model.kinds.baseline import BaselineModel
from shared.model.market import MarketIndex, sale_months
from shared.model.signing import signing_key
from shared.monitoring.accuracy import accuracy, coverage
from shared.monitoring.profile import TrainingProfile, training_profile
from shared.settings import Settings

# The client's split: train_test_split's default 25 % test share with this seed.
SPLIT_SEED = 42


@dataclass(frozen=True)
class ClientData:
    sales: pd.DataFrame
    demographics: pd.DataFrame
    hashes: dict[str, str]


def load_client_data(settings: Settings) -> ClientData:
    paths = {name: settings.data_dir / name for name in (SALES_FILE, DEMOGRAPHICS_FILE)}
    return ClientData(
        sales=read_csv(paths[SALES_FILE]),
        demographics=read_csv(paths[DEMOGRAPHICS_FILE]),
        hashes={name: sha256_file(path) for name, path in paths.items()},
    )


def regression_metrics(actual: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    """Dollar errors a realtor can read, the AVM industry's figures (median APE, PPE5/10/20:
    the share within 5/10/20 % of the sale, the share off by more than 20 %, the bias = median
    signed error) from their one definition, which the live figures of the running service also
    use (shared/monitoring/accuracy.py), plus R² for comparison with the client's figure."""
    actual_values = actual.to_numpy(dtype=float)
    avm = accuracy(np.asarray(predicted, dtype=float).tolist(), actual_values.tolist())
    return {
        "r2": float(r2_score(actual_values, predicted)),
        "mae": float(mean_absolute_error(actual_values, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(actual_values, predicted))),
        "mape": float(np.abs((predicted - actual_values) / actual_values).mean()),
        "median_ape": avm.median_ape,
        "within_10pct": avm.ppe10,
        "within_20pct": avm.ppe20,
        "within_5pct": avm.ppe5,
        "over_20pct": avm.over_20,
        "bias": avm.bias,
        "rows": len(actual_values),
    }


def client_split(data: ClientData) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The client's features and split: the baseline columns, demographics joined on zipcode,
    zipcode dropped, 75/25 with seed 42."""
    houses = data.sales[list(BASELINE.request_fields)]
    features = join_demographics(houses, data.demographics).drop(columns=ZIPCODE)
    return train_test_split(features, data.sales[TARGET], random_state=SPLIT_SEED)


def fit_baseline(x_train: pd.DataFrame, y_train: pd.Series) -> BaselineModel:
    """The client's estimator, with its defaults."""
    return BaselineModel.fit(x_train, y_train)


def train_baseline(settings: Settings) -> Manifest:
    data = load_client_data(settings)
    x_train, x_test, y_train, y_test = client_split(data)
    model = fit_baseline(x_train, y_train)
    on_train = model.predict(x_train)
    metrics: dict[str, Any] = {
        "train": regression_metrics(y_train, on_train),
        "test": regression_metrics(y_test, model.predict(x_test)),
    }
    return _write(
        settings,
        data,
        model=model,
        input_features=model.features,
        metrics=metrics,
        profile=profile_of(data.sales.loc[x_train.index], on_train, "in-sample estimates"),
        estimator="make_pipeline(RobustScaler(), KNeighborsRegressor())",
    )


def profile_of(train: pd.DataFrame, estimates: np.ndarray, source: str) -> TrainingProfile:
    """The training profile drift is measured against (shared/monitoring/profile.py): every
    house column of the training sales, and the model's `estimates` of them."""
    numeric = {c: train[c].astype(float).tolist() for c in HOUSE_COLUMNS if c != ZIPCODE}
    zipcodes = {ZIPCODE: train[ZIPCODE].astype(str).tolist()}
    return training_profile(numeric, zipcodes, np.asarray(estimates).tolist(), source)


def client_sales_split(data: ClientData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Whole sales rows (every column, demographics joined) split exactly like the client's
    features: the same rows land in the same side as in `client_split`."""
    sales = join_demographics(data.sales, data.demographics)
    train, test = train_test_split(sales, random_state=SPLIT_SEED)
    return train, test


@dataclass(frozen=True)
class SaleEstimates:
    """A variant's estimates of sales, each at its own sale month where the model knows that
    month and at the latest month it learned otherwise (a sale after the training data), with
    the FSD, grade and ranges of each."""

    prices: np.ndarray
    fsd: np.ndarray
    grades: np.ndarray
    ranges: dict[str, tuple[np.ndarray, np.ndarray]]


def estimate_sales(
    variant: gbm.GbmVariant, market: MarketIndex, sales: pd.DataFrame
) -> SaleEstimates:
    """How a held-out sale is scored: the estimate an agent would have had for its month."""
    matrix = variant.matrix(sales)
    reference = variant.predict_matrix(matrix)
    shift = market.log_level(sale_months(sales))
    uncertainty = variant.uncertainty(matrix, reference)
    if uncertainty is None:
        raise ValueError(f"variant {variant.name} is not calibrated")
    moved = np.exp(shift)
    ranges = {k: (lo * moved, hi * moved) for k, (lo, hi) in uncertainty.ranges.items()}
    return SaleEstimates(reference * moved, uncertainty.fsd, uncertainty.grades, ranges)


def range_coverage(actual: pd.Series, low: np.ndarray, high: np.ndarray) -> float:
    """Share of the prices `actual` inside [low, high], by the one definition of the offline
    and live figures (shared/monitoring/accuracy.py)."""
    share = coverage(actual.to_numpy(dtype=float).tolist(), low.tolist(), high.tolist())
    if share is None:
        raise ValueError("no ranges to measure coverage on")
    return share


def interval_coverage(estimates: SaleEstimates, sales: pd.DataFrame) -> dict[str, float]:
    """Share of `sales` whose price lies inside each of the ranges."""
    return {
        level: range_coverage(sales[TARGET], low, high)
        for level, (low, high) in estimates.ranges.items()
    }


class EmptySplitError(ValueError):
    """A date that leaves no sales on one side of a date-ordered split."""


def sale_day(sales: pd.DataFrame, pick: Callable[[pd.Series], str]) -> str:
    """The first or last (`pick`: min or max) sale day of `sales`, YYYY-MM-DD."""
    day = pick(sales["date"].str[:8])
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def date_ordered_split(sales: pd.DataFrame, cutoff: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sales before the day `cutoff` (YYYY-MM-DD) and those from it on, by the sales file's
    `date`: `realty evaluate`'s date-ordered holdout and `realty train --sales-before`."""
    before = pd.to_datetime(sales["date"].str[:8], format="%Y%m%d") < pd.Timestamp(cutoff)
    return sales[before], sales[~before]


def fit_gbm_variant(
    train: pd.DataFrame, market: MarketIndex, name: str, demo_cols: list[str]
) -> tuple[gbm.GbmVariant, np.ndarray]:
    """One variant fitted and calibrated on `train`'s prices moved to the index's latest
    month, and the out-of-fold estimates of `train` its calibration made (at that month)."""
    reference = market.to_reference(train)
    variant = gbm.fit_variant(reference, gbm.VARIANT_CONFIGS[name], demo_cols, name)
    out_of_fold = gbm.calibrate(variant, reference)
    return variant, out_of_fold


def fit_gbm_with_estimates(
    train: pd.DataFrame, demographics: pd.DataFrame
) -> tuple[gbm.GbmModel, np.ndarray]:
    """Both variants of the gbm kind on the same training sales, each calibrated for ranges,
    with the market index and the comparable sales of those training sales alone; and the full
    variant's out-of-fold estimates of those sales (the training profile's estimates)."""
    demo_cols = gbm.demographic_columns(demographics)
    market = MarketIndex.fit(train)
    fitted = {name: fit_gbm_variant(train, market, name, demo_cols) for name in VARIANTS}
    variants = {name: variant for name, (variant, _) in fitted.items()}
    return gbm.GbmModel(variants, market, ComparableSales.fit(train)), fitted["full"][1]


def fit_gbm(train: pd.DataFrame, demographics: pd.DataFrame) -> gbm.GbmModel:
    return fit_gbm_with_estimates(train, demographics)[0]


def train_gbm(settings: Settings, sales_before: str | None = None) -> Manifest:
    """On the client's training split; with `sales_before` (YYYY-MM-DD), on the sales before
    that day instead, tested on the later ones: with the date `realty evaluate` uses, the very
    model of its date-ordered holdout (the same rows, code and seed)."""
    data = load_client_data(settings)
    if sales_before is None:
        train, test = client_sales_split(data)
        split = f"train_test_split(test_size=0.25, random_state={SPLIT_SEED})"
    else:
        sales = join_demographics(data.sales, data.demographics)
        train, test = date_ordered_split(sales, sales_before)
        if train.empty or test.empty:
            raise EmptySplitError(
                f"no sales {'before' if train.empty else 'from'} {sales_before}: the sales "
                f"run from {sale_day(sales, min)} to {sale_day(sales, max)}"
            )
        split = f"date-ordered: the sales before {sales_before}, tested on the later ones"
    model, out_of_fold = fit_gbm_with_estimates(train, data.demographics)
    metrics: dict[str, Any] = {}
    for name, variant in model.variants.items():
        on_test = estimate_sales(variant, model.market, test)
        scores = {
            "train": regression_metrics(
                train[TARGET], estimate_sales(variant, model.market, train).prices
            ),
            "test": regression_metrics(test[TARGET], on_test.prices),
            "test_interval_coverage": interval_coverage(on_test, test),
        }
        metrics |= scores if name == "full" else {name: scores}
    full = model.variant("full")
    return _write(
        settings,
        data,
        model=model,
        input_features=full.features,
        metrics=metrics,
        profile=profile_of(
            train,
            out_of_fold,
            "out-of-fold estimates of the full variant, at the latest month learned",
        ),
        split=split,
        estimator="LightGBM on log(price), one estimator per variant (shared/model/kinds/gbm.py)",
        params=gbm.PARAMS,
        rounds=gbm.NUM_ROUNDS,
        market="hedonic monthly index of the training sales (shared/model/market.py); the "
        "trees learn prices moved to its latest month",
        intervals="normalized split-conformal: a linear difficulty model on 5-fold "
        "out-of-fold |log residuals| of the training split (repeat sales of a house in one "
        "fold), one quantile per price band of the estimate from the training sales that "
        "sold in it (RANGE_BANDS), shared/model/confidence.py",
        comparables="the training sales (shared/model/comps.py)",
        variants={
            name: {
                "request_fields": list(GBM.variant_request_fields(name)),
                "features": v.features,
                "ranges": v.ranges,
                "difficulty": None if v.difficulty is None else v.difficulty.spec(),
            }
            for name, v in model.variants.items()
        },
    )


def _write(
    settings: Settings,
    data: ClientData,
    *,
    model: Model,
    input_features: list[str],
    metrics: dict[str, Any],
    profile: TrainingProfile,
    estimator: str,
    split: str = f"train_test_split(test_size=0.25, random_state={SPLIT_SEED})",
    **details: Any,
) -> Manifest:
    """A new bundle of a model trained on `split` of `data`, with what every kind's manifest
    records about its training, signed with the bundle signing key (generated on the first
    run: training is where bundles, and so their key, come from)."""
    return write_bundle(
        settings.model_dir,
        model=model,
        input_features=input_features,
        demographics=data.demographics,
        data_files=data.hashes,
        metrics=metrics,
        profile=profile,
        training={
            "estimator": estimator,
            "split": split,
            "rows": len(data.sales),
            **details,
        },
        key=signing_key(settings, create=True),
    )


TRAINERS: dict[str, Callable[[Settings], Manifest]] = {
    BASELINE.name: train_baseline,
    GBM.name: train_gbm,
}
