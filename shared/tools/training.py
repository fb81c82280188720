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
from shared.model.contract import BASELINE, GBM, TARGET, VARIANTS, ZIPCODE
from shared.model.data import DEMOGRAPHICS_FILE, SALES_FILE, read_csv, sha256_file
from shared.model.demographics import join_demographics
from shared.model.kinds import Model, gbm
from shared.model.kinds.baseline import BaselineModel
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
    """Dollar errors a realtor can read, plus R² for comparison with the client's figure."""
    actual_values = actual.to_numpy(dtype=float)
    ape = np.abs(predicted - actual_values) / actual_values
    return {
        "r2": float(r2_score(actual_values, predicted)),
        "mae": float(mean_absolute_error(actual_values, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(actual_values, predicted))),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_10pct": float((ape <= 0.10).mean()),
        "within_20pct": float((ape <= 0.20).mean()),
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


def interval_coverage(variant: gbm.GbmVariant, sales: pd.DataFrame) -> dict[str, float]:
    """Share of `sales` whose price lies inside each of the variant's ranges."""
    actual = sales[TARGET].to_numpy(dtype=float)
    ranges = variant.intervals(variant.predict(sales))
    return {
        level: float(((actual >= low) & (actual <= high)).mean())
        for level, (low, high) in ranges.items()
    }


def fit_gbm(train: pd.DataFrame, demographics: pd.DataFrame) -> gbm.GbmModel:
    """Both variants of the gbm kind on the same training sales, each calibrated for ranges."""
    demo_cols = gbm.demographic_columns(demographics)
    variants = {}
    for name in VARIANTS:
        variant = gbm.fit_variant(train, gbm.VARIANT_CONFIGS[name], demo_cols, name)
        gbm.calibrate(variant, train)
        variants[name] = variant
    return gbm.GbmModel(variants)


def train_gbm(settings: Settings) -> Manifest:
    data = load_client_data(settings)
    train, test = client_sales_split(data)
    model = fit_gbm(train, data.demographics)
    metrics: dict[str, Any] = {}
    for name, variant in model.variants.items():
        scores = {
            "train": regression_metrics(train[TARGET], variant.predict(train)),
            "test": regression_metrics(test[TARGET], variant.predict(test)),
            "test_interval_coverage": interval_coverage(variant, test),
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
        intervals="split-conformal on 5-fold out-of-fold |log residuals| of the training "
        "split (repeat sales of a house in one fold)",
        variants={
            name: {
                "request_fields": list(GBM.variant_request_fields(name)),
                "features": v.features,
                "ranges": v.ranges,
                "interval_log_halfwidths": v.log_halfwidths,
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
