"""Unit fixtures: the client's split built independently of the service, and bundles trained once
per test session from the real data."""

from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from shared.model.bundles import Manifest
from shared.settings import Settings
from shared.tools.training import train_baseline

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
def client_xy_split(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """x_train, x_test, y_train, y_test built exactly the way the client's script builds them,
    independently of the service's code."""
    sales = pd.read_csv(
        data_dir / "kc_house_data.csv", usecols=CLIENT_SALES_COLUMNS, dtype={"zipcode": str}
    )
    demographics = pd.read_csv(data_dir / "zipcode_demographics.csv", dtype={"zipcode": str})
    merged = sales.merge(demographics, how="left", on="zipcode").drop(columns="zipcode")
    y = merged.pop("price")
    return train_test_split(merged, y, random_state=42)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Settings, Manifest]:
    """A baseline bundle trained from the real data into a temporary model directory."""
    settings = Settings(data_dir=data_dir, model_dir=tmp_path_factory.mktemp("models"))
    return settings, train_baseline(settings)


@pytest.fixture(scope="session")
def trained_gbm(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[Settings, Manifest]:
    """A gbm bundle (both variants) trained once per session from the real data (~1 min)."""
    from shared.tools.training import train_gbm

    settings = Settings(data_dir=data_dir, model_dir=tmp_path_factory.mktemp("gbm-models"))
    return settings, train_gbm(settings)
