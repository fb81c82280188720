"""Training model kinds into bundles. `baseline` is the client's script, reproduced exactly."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from shared.bundles import Manifest, write_bundle
from shared.data import DEMOGRAPHICS_FILE, SALES_FILE, read_csv, sha256_file
from shared.demographics import join_demographics
from shared.features import BASELINE, TARGET, ZIPCODE
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


def train_baseline(settings: Settings) -> Manifest:
    data = load_client_data(settings)
    x_train, x_test, y_train, y_test = client_split(data)
    model = make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(x_train, y_train)
    metrics: dict[str, Any] = {
        "train": regression_metrics(y_train, model.predict(x_train)),
        "test": regression_metrics(y_test, model.predict(x_test)),
    }
    return write_bundle(
        settings.model_dir,
        kind=BASELINE.name,
        model=model,
        input_features=list(x_train.columns),
        demographics=data.demographics,
        data_files=data.hashes,
        metrics=metrics,
        training={
            "estimator": "make_pipeline(RobustScaler(), KNeighborsRegressor())",
            "split": f"train_test_split(test_size=0.25, random_state={SPLIT_SEED})",
            "rows": len(data.sales),
        },
    )


TRAINERS: dict[str, Callable[[Settings], Manifest]] = {BASELINE.name: train_baseline}
