"""Versioned, immutable model bundles (shared/model/bundles.py)."""

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from pydantic import SecretStr

from shared.model.bundles import (
    DEMOGRAPHICS_FILE,
    MANIFEST_FILE,
    BundleError,
    Manifest,
    latest_version,
    list_manifests,
    load_bundle,
    write_bundle,
)
from shared.model.contract import BASELINE
from shared.model.kinds.baseline import BaselineModel
from shared.model.signing import SIGNATURE_FILE, signature

KEY = SecretStr(secrets.token_urlsafe(32))
DEMOGRAPHICS = pd.DataFrame({"ppltn_qty": [2.0, 1.0], "zipcode": ["98002", "01001"]})
BASELINE_FILES = {DEMOGRAPHICS_FILE, "model.json", "train-x.npy", "train-y.npy"}


def write(model_dir: Path, constant: float = 500_000.0) -> Manifest:
    """A baseline bundle whose KNN answers `constant` everywhere (all its sales cost that)."""
    x = pd.DataFrame({"ppltn_qty": np.arange(6.0)})
    model = BaselineModel.fit(x, pd.Series(np.full(6, constant)))
    return write_bundle(
        model_dir,
        model=model,
        input_features=["ppltn_qty"],
        demographics=DEMOGRAPHICS,
        data_files={"kc_house_data.csv": "abc"},
        metrics={"test": {"r2": 0.5}},
        training={"rows": 2},
        key=KEY,
    )


def edit_manifest(bundle_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """`change` the manifest and sign it again: what a signed manifest still cannot do."""
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    change(manifest)
    raw = json.dumps(manifest).encode()
    (bundle_dir / MANIFEST_FILE).write_bytes(raw)
    (bundle_dir / SIGNATURE_FILE).write_bytes(signature(KEY, raw))


def test_first_bundle_is_v1_and_the_next_is_v2(tmp_path: Path) -> None:
    assert write(tmp_path).version == "v1"
    assert write(tmp_path).version == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v2"]


def test_writing_a_new_bundle_never_modifies_an_existing_one(tmp_path: Path) -> None:
    write(tmp_path, constant=1.0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "v1").iterdir()}
    write(tmp_path, constant=2.0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "v1").iterdir()} == before


def test_a_version_number_is_never_reused_even_by_an_incomplete_directory(tmp_path: Path) -> None:
    (tmp_path / "v9").mkdir()
    assert write(tmp_path).version == "v10"
    assert list((tmp_path / "v9").iterdir()) == []


def test_manifest_checksums_match_the_written_files(tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert set(manifest.files) == BASELINE_FILES
    for name, digest in manifest.files.items():
        assert hashlib.sha256((tmp_path / "v1" / name).read_bytes()).hexdigest() == digest


def test_manifest_on_disk_records_kind_fields_zipcodes_and_library_versions(
    tmp_path: Path,
) -> None:
    write(tmp_path)
    manifest = json.loads((tmp_path / "v1" / MANIFEST_FILE).read_text())
    assert manifest["version"] == "v1"
    assert manifest["kind"] == "baseline"
    assert manifest["format"] == BaselineModel.FORMAT == 2
    assert manifest["request_fields"] == list(BASELINE.request_fields)
    assert manifest["zipcodes"] == ["01001", "98002"]
    assert manifest["libraries"]["scikit-learn"] == sklearn.__version__


def test_no_staging_directory_is_left_behind(tmp_path: Path) -> None:
    write(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_bundle_directory_is_readable_by_other_users(tmp_path: Path) -> None:
    write(tmp_path)
    assert (tmp_path / "v1").stat().st_mode & 0o005 == 0o005


def test_loaded_bundle_predicts_like_the_written_model_and_keeps_zipcodes_as_text(
    tmp_path: Path,
) -> None:
    write(tmp_path, constant=123.0)
    bundle = load_bundle(tmp_path, "v1", key=KEY)
    assert bundle.version == "v1"
    houses = pd.DataFrame({"ppltn_qty": [0.0, 9.0]})
    assert bundle.model.variant("full").predict_matrix(houses).tolist() == [123.0, 123.0]
    pd.testing.assert_frame_equal(bundle.demographics, DEMOGRAPHICS, check_dtype=False)
    assert bundle.demographics["zipcode"].tolist() == ["98002", "01001"]


@pytest.mark.parametrize("name", sorted(BASELINE_FILES))
def test_loading_a_tampered_file_raises_bundle_error(tmp_path: Path, name: str) -> None:
    write(tmp_path)
    with (tmp_path / "v1" / name).open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tmp_path, "v1", key=KEY)


def test_loading_a_bundle_trained_with_another_scikit_learn_raises_bundle_error(
    tmp_path: Path,
) -> None:
    write(tmp_path)
    edit_manifest(tmp_path / "v1", lambda m: m["libraries"].update({"scikit-learn": "0.24.2"}))
    with pytest.raises(BundleError, match=r"scikit-learn 0\.24\.2"):
        load_bundle(tmp_path, "v1", key=KEY)


def test_a_bundle_of_the_pickled_format_is_refused_with_a_reason(tmp_path: Path) -> None:
    write(tmp_path)
    # What the first format's manifests look like (they were never signed: signed here to
    # reach the format check).
    edit_manifest(tmp_path / "v1", lambda m: m.pop("format"))
    with pytest.raises(
        BundleError, match=r"format 1; this code reads format 2 of baseline.*retrain"
    ):
        load_bundle(tmp_path, "v1", key=KEY)


def test_a_bundle_of_an_older_format_is_listed_but_never_the_one_to_serve(tmp_path: Path) -> None:
    """After an upgrade, workers and `realty train --if-missing` look past the old bundles:
    training writes servable ones beside them under new version numbers."""
    write(tmp_path)
    path = tmp_path / "v1" / MANIFEST_FILE
    path.write_text(
        json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "format"})
    )
    assert [m.version for m in list_manifests(tmp_path)] == ["v1"]
    assert latest_version(tmp_path) is None and latest_version(tmp_path, "baseline") is None
    write(tmp_path)
    assert latest_version(tmp_path) == "v2"


@pytest.mark.parametrize("name", ["../v2/model.json", MANIFEST_FILE, SIGNATURE_FILE, "absent.npy"])
def test_a_manifest_listing_anything_but_a_file_of_its_bundle_is_refused(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path)
    write(tmp_path)
    edit_manifest(tmp_path / "v1", lambda m: m["files"].update({name: "0" * 64}))
    with pytest.raises(BundleError, match="not a file of it"):
        load_bundle(tmp_path, "v1", key=KEY)


def test_loading_a_missing_version_raises_bundle_error_listing_those_available(
    tmp_path: Path,
) -> None:
    write(tmp_path)
    write(tmp_path)
    with pytest.raises(BundleError, match=r"'v7'.*available: v1, v2"):
        load_bundle(tmp_path, "v7", key=KEY)


def test_versions_are_ordered_numerically_so_v10_is_latest(tmp_path: Path) -> None:
    write(tmp_path)
    write(tmp_path)
    (tmp_path / "v9").mkdir()
    write(tmp_path)
    assert [m.version for m in list_manifests(tmp_path)] == ["v1", "v2", "v10"]
    assert latest_version(tmp_path) == "v10"


def test_list_manifests_ignores_incomplete_and_foreign_entries(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "v5").mkdir()
    (tmp_path / ".staging-abc").mkdir()
    (tmp_path / "README.md").write_text("notes")
    assert [m.version for m in list_manifests(tmp_path)] == ["v1"]


def test_latest_version_only_considers_the_requested_kind(tmp_path: Path) -> None:
    write(tmp_path)
    assert latest_version(tmp_path, kind="baseline") == "v1"
    assert latest_version(tmp_path, kind="other") is None


def test_a_missing_or_empty_model_dir_has_no_versions(tmp_path: Path) -> None:
    assert list_manifests(tmp_path / "absent") == []
    assert latest_version(tmp_path) is None
