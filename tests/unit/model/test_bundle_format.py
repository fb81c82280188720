"""The bundle format (shared/model/bundles.py, shared/model/files.py, each kind's save/load): no
pickles, so a bundle survives the code that wrote it moving; nothing is read that the manifest
does not list, and nothing is parsed before every listed file matches its checksum.

Run on the two real bundles trained once per session (`trained`, `trained_gbm`)."""

import json
import os
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from shared.model.bundles import MANIFEST_FILE, BundleError, Manifest, load_bundle
from shared.model.data import sha256_file
from shared.model.files import BundleFiles
from shared.model.kinds import compiled
from shared.model.predictor import Predictor
from shared.settings import Settings

KINDS = ["trained", "trained_gbm"]  # the fixtures of a baseline and a gbm bundle
# Every file of each kind's bundle; the trees are absent where they cannot be compiled.
FILES = {
    "trained": ["demographics.csv", "model.json", "train-x.npy", "train-y.npy"],
    "trained_gbm": [
        "demographics.csv",
        "model.json",
        "lightgbm-full.txt",
        "lightgbm-minimal.txt",
        "context-full-coordinates.npy",
        "context-full-levels.npy",
        *(["trees-full.o", "trees-minimal.o"] if compiled.supported() else []),
    ],
}
# Where the model code lived when these bundles were written.
MODEL_MODULES = (
    "shared.model.kinds",
    "shared.model.kinds.baseline",
    "shared.model.kinds.gbm",
    "shared.model.kinds.compiled",
    "shared.model.derived",
)

# Paths opened by Python while `_opened` is a list (an audit hook cannot be removed, so it
# stays installed and idle). LightGBM's model text is read by Python, so this sees every read.
_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def future(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "future_unseen_examples.csv", dtype={"zipcode": str})


def _bundle(request: pytest.FixtureRequest, fixture: str) -> tuple[Path, Manifest]:
    settings, manifest = request.getfixturevalue(fixture)
    assert isinstance(settings, Settings)
    return settings.model_dir, manifest


def _copy(model_dir: Path, manifest: Manifest, target: Path) -> Path:
    """A copy of the bundle under `target` (a model directory); its directory."""
    source, copy = model_dir / manifest.version, target / manifest.version
    shutil.copytree(source, copy)
    return copy


def _relist(bundle_dir: Path, files: dict[str, str]) -> None:
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps({**manifest, "files": files}))


@pytest.mark.parametrize("fixture", KINDS)
def test_the_bundle_holds_exactly_the_files_its_kind_writes(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    model_dir, manifest = _bundle(request, fixture)
    assert sorted(manifest.files) == sorted(FILES[fixture])
    on_disk = sorted(p.name for p in (model_dir / manifest.version).iterdir())
    assert on_disk == sorted([*FILES[fixture], MANIFEST_FILE])


@pytest.mark.parametrize("fixture", KINDS)
def test_a_bundle_loads_and_predicts_the_same_after_the_model_code_moves(
    request: pytest.FixtureRequest,
    fixture: str,
    future: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the modules that defined the model classes unimportable under their names (as after
    a rename), the bundle still loads: it names no module. The same model as a pickle, what the
    first format stored, does not."""
    model_dir, manifest = _bundle(request, fixture)
    before = Predictor(load_bundle(model_dir, manifest.version, artifacts=False))
    expected = before.estimate(future, "minimal")
    as_pickled = pickle.dumps(before.bundle.model)
    for name in MODEL_MODULES:
        monkeypatch.setitem(sys.modules, name, None)

    with pytest.raises(ImportError, match=r"shared\.model\."):
        pickle.loads(as_pickled)
    for artifacts in (False, True):
        after = Predictor(load_bundle(model_dir, manifest.version, artifacts=artifacts))
        assert after.estimate(future, "minimal") == expected
    exact = Predictor(load_bundle(model_dir, manifest.version, artifacts=False))
    np.testing.assert_array_equal(exact.predict(future), before.predict(future))


@pytest.mark.parametrize("fixture", KINDS)
def test_no_file_of_a_bundle_is_a_pickle(request: pytest.FixtureRequest, fixture: str) -> None:
    model_dir, manifest = _bundle(request, fixture)
    for path in (model_dir / manifest.version).iterdir():
        assert path.suffix not in (".joblib", ".pkl", ".pickle"), path.name
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} is a pickle"


@pytest.mark.parametrize("fixture", KINDS)
def test_loading_never_unpickles_and_reads_arrays_with_allow_pickle_false(
    request: pytest.FixtureRequest, fixture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir, manifest = _bundle(request, fixture)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bundle was unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (joblib, "load")):
        monkeypatch.setattr(module, name, refuse)
    allow_pickle: list[object] = []
    real_load = np.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        allow_pickle.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load_bundle(model_dir, manifest.version)
    assert allow_pickle and all(value is False for value in allow_pickle)


def test_an_array_file_holding_a_pickle_is_refused(trained: Any, tmp_path: Path) -> None:
    """Even with its checksum matching (a manifest rewritten with it), an object array, which
    NumPy stores as a pickle, is never unpickled."""
    settings, manifest = trained
    copy = _copy(settings.model_dir, manifest, tmp_path)
    np.save(copy / "train-y.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _relist(copy, {**manifest.files, "train-y.npy": sha256_file(copy / "train-y.npy")})
    with pytest.raises(BundleError, match="not a plain array"):
        load_bundle(tmp_path, manifest.version)


@pytest.mark.parametrize(
    ("fixture", "name"),
    [
        (fixture, name)
        for fixture in KINDS
        for name in FILES[fixture]
        if not name.startswith("trees-")  # optional: without them LightGBM predicts
    ],
)
def test_a_manifest_omitting_a_file_the_kind_needs_is_refused(
    request: pytest.FixtureRequest, fixture: str, name: str, tmp_path: Path
) -> None:
    """The file is still there, intact: only the manifest's word counts."""
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    _relist(copy, {k: v for k, v in manifest.files.items() if k != name})
    with pytest.raises(BundleError, match=rf"does not list {name}"):
        load_bundle(tmp_path, manifest.version)


@pytest.mark.parametrize("fixture", KINDS)
def test_only_the_manifest_and_the_files_it_lists_are_ever_read(
    request: pytest.FixtureRequest, fixture: str, tmp_path: Path, future: pd.DataFrame
) -> None:
    """Stray files beside a bundle, even of names a kind uses (an unlisted trees file here),
    are never opened."""
    global _opened
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    listed = {k: v for k, v in manifest.files.items() if not k.startswith("trees-full")}
    _relist(copy, listed)
    (copy / "model.joblib").write_bytes(pickle.dumps({"stray": True}))
    (copy / "extra.npy").write_bytes(b"stray")
    _opened = []
    try:
        Predictor(load_bundle(tmp_path, manifest.version)).estimate(future, "full")
    finally:
        opened, _opened = _opened, None
    read = {Path(p).name for p in opened if Path(p).parent == copy}
    assert read == {MANIFEST_FILE, *listed}


@pytest.mark.parametrize(
    ("fixture", "name"), [(fixture, name) for fixture in KINDS for name in FILES[fixture]]
)
def test_one_byte_changed_in_any_file_is_refused_before_anything_is_parsed(
    request: pytest.FixtureRequest,
    fixture: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))

    def parse(self: BundleFiles, name: str) -> Path:
        raise AssertionError(f"{name} was handed to a parser before the checksums passed")

    monkeypatch.setattr(BundleFiles, "path", parse)  # every loader reads through it
    with pytest.raises(BundleError, match=rf"{name} does not match its manifest checksum"):
        load_bundle(tmp_path, manifest.version)
