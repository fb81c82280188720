"""The one prediction path (shared/model/predictor.py), on a baseline bundle trained from the
real data.

The serving path must give exactly what the client's own script would give for the same houses.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from shared.model.bundles import Manifest, load_bundle
from shared.model.contract import cents
from shared.model.demographics import UnknownZipcodeError
from shared.model.predictor import Predictor
from shared.settings import Settings


@pytest.fixture(scope="module")
def predictor(trained: tuple[Settings, Manifest], bundle_key: SecretStr) -> Predictor:
    settings, manifest = trained
    return Predictor(load_bundle(settings.model_dir, manifest.version, key=bundle_key))


@pytest.fixture(scope="module")
def future(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "future_unseen_examples.csv", dtype={"zipcode": str})


def test_predictor_serves_the_version_of_its_bundle(
    predictor: Predictor, trained: tuple[Settings, Manifest]
) -> None:
    assert predictor.version == trained[1].version


def test_every_future_example_gets_a_positive_finite_price(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    prices = predictor.predict(future)
    assert prices.shape == (100,)
    assert np.isfinite(prices).all()
    assert (prices > 0).all()


def test_serving_path_equals_the_clients_training_path_on_the_test_split(
    predictor: Predictor, data_dir: Path, client_xy_split: tuple
) -> None:
    _, x_test, _, _ = client_xy_split
    sales = pd.read_csv(data_dir / "kc_house_data.csv", dtype={"zipcode": str})
    served = predictor.predict(sales.loc[x_test.index])
    np.testing.assert_array_equal(served, predictor.bundle.model.variant("full").predict(x_test))


def test_extra_columns_and_column_order_do_not_change_predictions(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    shuffled = future[list(reversed(future.columns))].assign(price=1.0, id="x")
    np.testing.assert_array_equal(predictor.predict(shuffled), predictor.predict(future))


def test_a_rows_price_does_not_depend_on_its_batch_position_or_index(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    batch = predictor.predict(future)
    reversed_rows = future.iloc[::-1]
    np.testing.assert_array_equal(predictor.predict(reversed_rows), batch[::-1])
    single = [predictor.predict(future.iloc[[i]])[0] for i in (0, 57, 99)]
    assert single == [batch[0], batch[57], batch[99]]


def test_estimates_are_the_predicted_prices_in_cents_without_extras(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    prices = predictor.predict(future)
    for explain in (True, False):
        answers = predictor.estimate(future, explain=explain)
        assert [a.prediction for a in answers] == [cents(p) for p in prices]
        assert all(a.interval_80 is None and a.interval_95 is None for a in answers)
        assert all(a.factors == [] and a.warnings == [] for a in answers)


def test_a_zipcode_outside_the_trained_area_is_refused_not_guessed(
    predictor: Predictor, future: pd.DataFrame
) -> None:
    houses = future.head(3).assign(zipcode=["98118", "99999", "98118"])
    with pytest.raises(UnknownZipcodeError) as caught:
        predictor.predict(houses)
    assert caught.value.zipcodes == ["99999"]
