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
from shared.model.contract import BASELINE, GBM, TARGET, VARIANTS, ZIPCODE
from shared.model.data import DEMOGRAPHICS_FILE, SALES_FILE, read_csv, sha256_file
from shared.model.demographics import join_demographics
from shared.model.kinds import Model, gbm
from shared.model.kinds.baseline import BaselineModel
from shared.model.market import MarketIndex, sale_months
from shared.model.signing import signing_key
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
    signed error), plus R² for comparison with the client's figure."""
    actual_values = actual.to_numpy(dtype=float)
    signed = (predicted - actual_values) / actual_values
    ape = np.abs(signed)
    return {
        "r2": float(r2_score(actual_values, predicted)),
        "mae": float(mean_absolute_error(actual_values, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(actual_values, predicted))),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_10pct": float((ape <= 0.10).mean()),
        "within_20pct": float((ape <= 0.20).mean()),
        "within_5pct": float((ape <= 0.05).mean()),
        "over_20pct": float((ape > 0.20).mean()),
        "bias": float(np.median(signed)),
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
    metrics: dict[str, Any] = {
        "train": regression_metrics(y_train, model.predict(x_train)),
        "test": regression_metrics(y_test, model.predict(x_test)),
    }
    return _write(
        settings,
        data,
        model=model,
        input_features=model.features,
        metrics=metrics,
        estimator="make_pipeline(RobustScaler(), KNeighborsRegressor())",
    )


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


def interval_coverage(estimates: SaleEstimates, sales: pd.DataFrame) -> dict[str, float]:
    """Share of `sales` whose price lies inside each of the ranges."""
    actual = sales[TARGET].to_numpy(dtype=float)
    return {
        level: float(((actual >= low) & (actual <= high)).mean())
        for level, (low, high) in estimates.ranges.items()
    }


def fit_gbm_variant(
    train: pd.DataFrame, market: MarketIndex, name: str, demo_cols: list[str]
) -> gbm.GbmVariant:
    """One variant fitted and calibrated on `train`'s prices moved to the index's latest
    month."""
    reference = market.to_reference(train)
    variant = gbm.fit_variant(reference, gbm.VARIANT_CONFIGS[name], demo_cols, name)
    gbm.calibrate(variant, reference)
    return variant


def fit_gbm(train: pd.DataFrame, demographics: pd.DataFrame) -> gbm.GbmModel:
    """Both variants of the gbm kind on the same training sales, each calibrated for ranges,
    with the market index and the comparable sales of those training sales alone."""
    demo_cols = gbm.demographic_columns(demographics)
    market = MarketIndex.fit(train)
    variants = {name: fit_gbm_variant(train, market, name, demo_cols) for name in VARIANTS}
    return gbm.GbmModel(variants, market, ComparableSales.fit(train))


def train_gbm(settings: Settings) -> Manifest:
    data = load_client_data(settings)
    train, test = client_sales_split(data)
    model = fit_gbm(train, data.demographics)
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
        estimator="LightGBM on log(price), one estimator per variant (shared/model/kinds/gbm.py)",
        params=gbm.PARAMS,
        rounds=gbm.NUM_ROUNDS,
        market="hedonic monthly index of the training sales (shared/model/market.py); the "
        "trees learn prices moved to its latest month",
        intervals="normalized split-conformal: a linear difficulty model on 5-fold "
        "out-of-fold |log residuals| of the training split (repeat sales of a house in one "
        "fold), shared/model/confidence.py",
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
    estimator: str,
    **details: Any,
) -> Manifest:
    """A new bundle of a model trained on the client's split of `data`, with what every kind's
    manifest records about its training, signed with the bundle signing key (generated on the
    first run: training is where bundles, and so their key, come from)."""
    return write_bundle(
        settings.model_dir,
        model=model,
        input_features=input_features,
        demographics=data.demographics,
        data_files=data.hashes,
        metrics=metrics,
        training={
            "estimator": estimator,
            "split": f"train_test_split(test_size=0.25, random_state={SPLIT_SEED})",
            "rows": len(data.sales),
            **details,
        },
        key=signing_key(settings, create=True),
    )


TRAINERS: dict[str, Callable[[Settings], Manifest]] = {
    BASELINE.name: train_baseline,
    GBM.name: train_gbm,
}
