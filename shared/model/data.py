"""Reading the client's CSV files from the data directory (never from the repository)."""

import hashlib
import shutil
from pathlib import Path

import pandas as pd

from shared.model.contract import ZIPCODE

SALES_FILE = "kc_house_data.csv"
DEMOGRAPHICS_FILE = "zipcode_demographics.csv"
FUTURE_FILE = "future_unseen_examples.csv"
CLIENT_FILES = (SALES_FILE, DEMOGRAPHICS_FILE, FUTURE_FILE)


class DataMissingError(FileNotFoundError):
    """The data directory lacks the client's files and no source to copy them from exists."""


def ensure_data(data_dir: Path, source_dir: Path) -> list[str]:
    """Copy the client's files into `data_dir` where missing; return the names copied."""
    data_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in CLIENT_FILES:
        target = data_dir / name
        if target.exists():
            continue
        source = source_dir / name
        if not source.exists():
            raise DataMissingError(
                f"{target} is missing and {source} does not exist: put the client's CSV files "
                f"in {data_dir} or point REALTY_SOURCE_DATA_DIR at them"
            )
        shutil.copyfile(source, target)
        copied.append(name)
    return copied


def read_csv(path: Path) -> pd.DataFrame:
    """Zipcodes are identifiers: always text, in every file."""
    if not path.exists():
        raise DataMissingError(f"{path} not found; run `make setup` (or `realty setup`) first")
    return pd.read_csv(path, dtype={ZIPCODE: str})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
