"""Training the baseline (shared/tools/training.py): the client's model, reproduced exactly."""

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from shared.model.bundles import Manifest, load_bundle
from shared.settings import Settings
from shared.tools.training import client_split, load_client_data, regression_metrics


def test_baseline_reproduces_the_clients_test_r2(trained: tuple[Settings, Manifest]) -> None:
    assert round(trained[1].metrics["test"]["r2"], 3) == 0.728


def test_bundled_model_scores_the_clients_r2_on_the_clients_own_split(
    trained: tuple[Settings, Manifest], client_xy_split: tuple, bundle_key: SecretStr
) -> None:
    settings, manifest = trained
    _, x_test, _, y_test = client_xy_split
    model = load_bundle(settings.model_dir, manifest.version, key=bundle_key).model
    r2 = r2_score(y_test, model.predict(x_test))
    assert round(r2, 3) == 0.728
    assert r2 == pytest.approx(manifest.metrics["test"]["r2"], abs=1e-12)


def test_a_loaded_bundle_predicts_exactly_as_the_clients_own_pipeline(
    trained: tuple[Settings, Manifest], client_xy_split: tuple, bundle_key: SecretStr
) -> None:
    """The bundle keeps the training rows, not the fitted pipeline: refitted from them when
    loaded, it must give what the client's script fitted on its own frame gives."""
    settings, manifest = trained
    x_train, x_test, y_train, _ = client_xy_split
    clients = make_pipeline(RobustScaler(), KNeighborsRegressor()).fit(x_train, y_train)
    model = load_bundle(settings.model_dir, manifest.version, key=bundle_key).model
    np.testing.assert_array_equal(model.predict(x_test), clients.predict(x_test))
    np.testing.assert_array_equal(model.predict(x_train), clients.predict(x_train))


def test_training_features_and_split_are_identical_to_the_clients(
    trained: tuple[Settings, Manifest], client_xy_split: tuple
) -> None:
    ours = client_split(load_client_data(trained[0]))
    for mine, theirs in zip(ours, client_xy_split, strict=True):
        if isinstance(theirs, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs)
        else:
            pd.testing.assert_series_equal(mine, theirs)


def test_manifest_lists_the_input_features_in_the_clients_column_order(
    trained: tuple[Settings, Manifest], client_xy_split: tuple
) -> None:
    assert trained[1].input_features == client_xy_split[0].columns.tolist()


def test_manifest_records_the_data_hashes_and_a_75_25_split(
    trained: tuple[Settings, Manifest], data_dir: Path
) -> None:
    manifest = trained[1]
    for name in ("kc_house_data.csv", "zipcode_demographics.csv"):
        expected = hashlib.sha256((data_dir / name).read_bytes()).hexdigest()
        assert manifest.data_files[name] == expected
    assert manifest.training["rows"] == 21613
    assert manifest.metrics["train"]["rows"] == 16209
    assert manifest.metrics["test"]["rows"] == 5404


def test_regression_metrics_on_a_hand_computed_example() -> None:
    metrics = regression_metrics(pd.Series([100.0, 200.0, 400.0]), np.array([110.0, 200.0, 300.0]))
    assert metrics["mae"] == pytest.approx(110 / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(10_100 / 3))
    assert metrics["r2"] == pytest.approx(1 - 10_100 / (140_000 / 3))  # SS_res / SS_tot
    assert metrics["mape"] == pytest.approx((0.1 + 0 + 0.25) / 3)
    assert metrics["median_ape"] == pytest.approx(0.1)
    assert metrics["within_10pct"] == pytest.approx(2 / 3)
    assert metrics["within_20pct"] == pytest.approx(2 / 3)
    assert metrics["rows"] == 3
