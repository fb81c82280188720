"""Fixtures of every test: the client's future examples, as a frame and as the JSON rows a
client sends, and one valid house."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def future_examples() -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / "future_unseen_examples.csv", dtype={"zipcode": str})


@pytest.fixture(scope="session")
def future_rows(future_examples: pd.DataFrame) -> list[dict[str, Any]]:
    """future_unseen_examples.csv as the JSON rows a client would send: plain numbers, text
    zipcodes, null for missing."""
    return json.loads(future_examples.to_json(orient="records"))


@pytest.fixture
def house(future_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid house (the first future example); a fresh copy for each test to alter."""
    return dict(future_rows[0])
