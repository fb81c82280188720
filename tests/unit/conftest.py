"""Shared fixtures: the client's data files, a valid house, and one baseline bundle trained once
per test session (training takes a few seconds)."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from shared.bundles import Manifest
from shared.settings import Settings
from shared.training import train_baseline

DATA_DIR = Path(__file__).resolve().parents[2] / "data"

# The client's create_model.py, verbatim in substance: these columns, demographics merged left
# on zipcode, zipcode dropped, train_test_split with random_state=42.
CLIENT_SALES_COLUMNS = [
    "price",
    "bedrooms",
    "bathrooms",
    "sqft_living",
    "sqft_lot",
    "floors",
    "sqft_above",
    "sqft_basement",
    "zipcode",
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def future_rows() -> list[dict[str, Any]]:
    """future_unseen_examples.csv as the JSON rows a client would send."""
    frame = pd.read_csv(DATA_DIR / "future_unseen_examples.csv", dtype={"zipcode": str})
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture
def house(future_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid house (the first future example); a fresh copy for each test to alter."""
    return dict(future_rows[0])


@pytest.fixture(scope="session")
def client_xy_split() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """x_train, x_test, y_train, y_test built exactly the way the client's script builds them,
    independently of the service's code."""
    sales = pd.read_csv(
        DATA_DIR / "kc_house_data.csv", usecols=CLIENT_SALES_COLUMNS, dtype={"zipcode": str}
    )
    demographics = pd.read_csv(DATA_DIR / "zipcode_demographics.csv", dtype={"zipcode": str})
    merged = sales.merge(demographics, how="left", on="zipcode").drop(columns="zipcode")
    y = merged.pop("price")
    return train_test_split(merged, y, random_state=42)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Manifest]:
    """A baseline bundle trained from the real data into a temporary model directory."""
    settings = Settings(data_dir=DATA_DIR, model_dir=tmp_path_factory.mktemp("models"))
    return settings, train_baseline(settings)


@pytest.fixture(scope="session")
def trained_gbm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Manifest]:
    """A gbm bundle (both variants) trained once per session from the real data (~1 min)."""
    from shared.training import train_gbm

    settings = Settings(data_dir=DATA_DIR, model_dir=tmp_path_factory.mktemp("gbm-models"))
    return settings, train_gbm(settings)
