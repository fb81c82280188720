"""The client's data files (shared/model/data.py): copied in where missing, read with text
zipcodes."""

import hashlib
from pathlib import Path

import pytest

from shared.model.data import (
    CLIENT_FILES,
    DEMOGRAPHICS_FILE,
    FUTURE_FILE,
    SALES_FILE,
    DataMissingError,
    ensure_data,
    read_csv,
    sha256_file,
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in CLIENT_FILES:
        (source / name).write_text(f"source copy of {name}\n")
    return source


def test_the_client_files_are_sales_demographics_and_future_examples() -> None:
    assert CLIENT_FILES == (
        "kc_house_data.csv",
        "zipcode_demographics.csv",
        "future_unseen_examples.csv",
    )


def test_ensure_data_copies_only_the_missing_files(tmp_path: Path, source: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / SALES_FILE).write_text("local copy\n")
    assert ensure_data(data, source) == [DEMOGRAPHICS_FILE, FUTURE_FILE]
    assert (data / SALES_FILE).read_text() == "local copy\n"
    assert (data / FUTURE_FILE).read_text() == f"source copy of {FUTURE_FILE}\n"


def test_ensure_data_creates_the_data_dir_and_copies_everything(
    tmp_path: Path, source: Path
) -> None:
    data = tmp_path / "new" / "data"
    assert ensure_data(data, source) == list(CLIENT_FILES)
    assert sorted(p.name for p in data.iterdir()) == sorted(CLIENT_FILES)


def test_ensure_data_with_every_file_present_copies_nothing_and_needs_no_source(
    tmp_path: Path, source: Path
) -> None:
    data = tmp_path / "data"
    ensure_data(data, source)
    assert ensure_data(data, tmp_path / "no-such-source") == []


def test_missing_file_without_source_raises_naming_both_paths_and_the_setting(
    tmp_path: Path,
) -> None:
    data, empty_source = tmp_path / "data", tmp_path / "empty"
    empty_source.mkdir()
    with pytest.raises(DataMissingError) as caught:
        ensure_data(data, empty_source)
    message = str(caught.value)
    assert str(data / SALES_FILE) in message
    assert str(empty_source / SALES_FILE) in message
    assert "REALTY_SOURCE_DATA_DIR" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_read_csv_keeps_zipcodes_as_text_with_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "houses.csv"
    path.write_text("bedrooms,zipcode\n3,01001\n4,98118\n")
    assert read_csv(path)["zipcode"].tolist() == ["01001", "98118"]


def test_read_csv_of_a_missing_file_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match="make setup"):
        read_csv(tmp_path / SALES_FILE)


def test_sha256_file_is_the_hex_sha256_of_the_contents(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))  # more than one read block
    assert sha256_file(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
