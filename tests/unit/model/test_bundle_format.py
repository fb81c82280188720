"""The bundle format (shared/model/bundles.py, shared/model/files.py, each kind's save/load): no
pickles, so a bundle survives the code that wrote it moving; nothing is read that the manifest
does not list, nothing of the manifest is trusted before its signature matches, and nothing is
parsed before every listed file matches its checksum.

Run on the two real bundles trained once per session (`trained`, `trained_gbm`)."""

import json
import os
import pickle
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from shared.model.bundles import MANIFEST_FILE, BundleError, Manifest, load_bundle
from shared.model.data import sha256_file
from shared.model.files import BundleFiles
from shared.model.kinds import compiled
from shared.model.predictor import Predictor
from shared.model.signing import SIGNATURE_FILE, signature
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
        "comps-id.npy",
        "comps-sales.npy",
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
    "shared.model.market",
    "shared.model.comps",
    "shared.model.confidence",
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


def _relist(bundle_dir: Path, files: dict[str, str], key: SecretStr) -> None:
    """The manifest listing `files` instead, signed again with `key`: what a signed manifest
    still cannot make a loader do."""
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    raw = json.dumps({**manifest, "files": files}).encode()
    (bundle_dir / MANIFEST_FILE).write_bytes(raw)
    (bundle_dir / SIGNATURE_FILE).write_bytes(signature(key, raw))


@pytest.mark.parametrize("fixture", KINDS)
def test_the_bundle_holds_exactly_the_files_its_kind_writes(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    model_dir, manifest = _bundle(request, fixture)
    assert sorted(manifest.files) == sorted(FILES[fixture])
    on_disk = sorted(p.name for p in (model_dir / manifest.version).iterdir())
    assert on_disk == sorted([*FILES[fixture], MANIFEST_FILE, SIGNATURE_FILE])


@pytest.mark.parametrize("fixture", KINDS)
def test_a_bundle_loads_and_predicts_the_same_after_the_model_code_moves(
    request: pytest.FixtureRequest,
    fixture: str,
    future: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
) -> None:
    """With the modules that defined the model classes unimportable under their names (as after
    a rename), the bundle still loads: it names no module. The same model as a pickle, what the
    first format stored, does not."""
    model_dir, manifest = _bundle(request, fixture)
    before = Predictor(load_bundle(model_dir, manifest.version, key=bundle_key, artifacts=False))
    expected = before.estimate(future, "minimal")
    as_pickled = pickle.dumps(before.bundle.model)
    for name in MODEL_MODULES:
        monkeypatch.setitem(sys.modules, name, None)

    with pytest.raises(ImportError, match=r"shared\.model\."):
        pickle.loads(as_pickled)
    for artifacts in (False, True):
        after = Predictor(
            load_bundle(model_dir, manifest.version, key=bundle_key, artifacts=artifacts)
        )
        assert after.estimate(future, "minimal") == expected
    exact = Predictor(load_bundle(model_dir, manifest.version, key=bundle_key, artifacts=False))
    np.testing.assert_array_equal(exact.predict(future), before.predict(future))


@pytest.mark.parametrize("fixture", KINDS)
def test_no_file_of_a_bundle_is_a_pickle(request: pytest.FixtureRequest, fixture: str) -> None:
    model_dir, manifest = _bundle(request, fixture)
    for path in (model_dir / manifest.version).iterdir():
        assert path.suffix not in (".joblib", ".pkl", ".pickle"), path.name
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} is a pickle"


@pytest.mark.parametrize("fixture", KINDS)
def test_loading_never_unpickles_and_reads_arrays_with_allow_pickle_false(
    request: pytest.FixtureRequest,
    fixture: str,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
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
    load_bundle(model_dir, manifest.version, key=bundle_key)
    assert allow_pickle and all(value is False for value in allow_pickle)


def test_an_array_file_holding_a_pickle_is_refused(
    trained: Any, tmp_path: Path, bundle_key: SecretStr
) -> None:
    """Even with its checksum matching (a manifest rewritten with it), an object array, which
    NumPy stores as a pickle, is never unpickled."""
    settings, manifest = trained
    copy = _copy(settings.model_dir, manifest, tmp_path)
    np.save(copy / "train-y.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    listed = {**manifest.files, "train-y.npy": sha256_file(copy / "train-y.npy")}
    _relist(copy, listed, bundle_key)
    with pytest.raises(BundleError, match="not a plain array"):
        load_bundle(tmp_path, manifest.version, key=bundle_key)


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
    request: pytest.FixtureRequest,
    fixture: str,
    name: str,
    tmp_path: Path,
    bundle_key: SecretStr,
) -> None:
    """The file is still there, intact: only the (signed) manifest's word counts."""
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    _relist(copy, {k: v for k, v in manifest.files.items() if k != name}, bundle_key)
    with pytest.raises(BundleError, match=rf"does not list {name}"):
        load_bundle(tmp_path, manifest.version, key=bundle_key)


@pytest.mark.parametrize("fixture", KINDS)
def test_only_the_manifest_and_the_files_it_lists_are_ever_read(
    request: pytest.FixtureRequest,
    fixture: str,
    tmp_path: Path,
    future: pd.DataFrame,
    bundle_key: SecretStr,
) -> None:
    """Stray files beside a bundle, even of names a kind uses (an unlisted trees file here),
    are never opened."""
    global _opened
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    listed = {k: v for k, v in manifest.files.items() if not k.startswith("trees-full")}
    _relist(copy, listed, bundle_key)
    (copy / "model.joblib").write_bytes(pickle.dumps({"stray": True}))
    (copy / "extra.npy").write_bytes(b"stray")
    _opened = []
    try:
        Predictor(load_bundle(tmp_path, manifest.version, key=bundle_key)).estimate(future, "full")
    finally:
        opened, _opened = _opened, None
    read = {Path(p).name for p in opened if Path(p).parent == copy}
    assert read == {MANIFEST_FILE, SIGNATURE_FILE, *listed}


@pytest.mark.parametrize(
    ("fixture", "name"), [(fixture, name) for fixture in KINDS for name in FILES[fixture]]
)
def test_one_byte_changed_in_any_file_is_refused_before_anything_is_parsed(
    request: pytest.FixtureRequest,
    fixture: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
) -> None:
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    _flip_a_byte(copy / name, len((copy / name).read_bytes()) // 2)
    _refuse_parsing(monkeypatch)
    with pytest.raises(BundleError, match=rf"{name} does not match its manifest checksum"):
        load_bundle(tmp_path, manifest.version, key=bundle_key)


def _flip_a_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _refuse_parsing(monkeypatch: pytest.MonkeyPatch, *, manifest_too: bool = False) -> None:
    """Any file handed to a kind's loader, or (`manifest_too`) the manifest handed to its
    parser, fails the test."""

    def parse(self: BundleFiles, name: str) -> Path:
        raise AssertionError(f"{name} was handed to a parser before the bundle was verified")

    monkeypatch.setattr(BundleFiles, "path", parse)  # every loader reads through it
    if manifest_too:

        def parse_manifest(cls: type[Manifest], raw: Any, **kwargs: Any) -> Manifest:
            raise AssertionError("the manifest was parsed before its signature was checked")

        monkeypatch.setattr(Manifest, "model_validate_json", classmethod(parse_manifest))


def _read_while_loading(bundle_dir: Path, version: str, key: SecretStr, refusal: str) -> set[str]:
    """The names of the bundle's files opened by a load that is refused with `refusal`."""
    global _opened
    _opened = []
    try:
        with pytest.raises(BundleError, match=refusal):
            load_bundle(bundle_dir.parent, version, key=key)
    finally:
        opened, _opened = _opened, None
    return {Path(p).name for p in opened if Path(p).parent == bundle_dir}


@pytest.mark.parametrize("fixture", KINDS)
@pytest.mark.parametrize("at", [0, 0.5, -1], ids=["first", "middle", "last"])
def test_a_manifest_with_one_byte_changed_is_refused_before_anything_else_is_read(
    request: pytest.FixtureRequest,
    fixture: str,
    at: float,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
) -> None:
    """Not parsed either: the first byte changed makes it invalid JSON, yet the refusal is the
    signature's."""
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    size = len((copy / MANIFEST_FILE).read_bytes())
    _flip_a_byte(copy / MANIFEST_FILE, int(at * size) if at >= 0 else size - 1)
    _refuse_parsing(monkeypatch, manifest_too=True)
    read = _read_while_loading(copy, manifest.version, bundle_key, "does not match its signature")
    assert read == {MANIFEST_FILE, SIGNATURE_FILE}


@pytest.mark.parametrize("fixture", KINDS)
def test_a_manifest_signed_with_another_key_is_refused_before_anything_else_is_read(
    request: pytest.FixtureRequest,
    fixture: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
) -> None:
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    other = SecretStr(secrets.token_urlsafe(32))
    (copy / SIGNATURE_FILE).write_bytes(signature(other, (copy / MANIFEST_FILE).read_bytes()))
    _refuse_parsing(monkeypatch, manifest_too=True)
    read = _read_while_loading(copy, manifest.version, bundle_key, "another bundle signing key")
    assert read == {MANIFEST_FILE, SIGNATURE_FILE}


@pytest.mark.parametrize("fixture", KINDS)
def test_a_bundle_without_its_signature_is_refused_before_anything_else_is_read(
    request: pytest.FixtureRequest,
    fixture: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_key: SecretStr,
) -> None:
    """As the bundles written before manifests were signed: retrained, not served."""
    model_dir, manifest = _bundle(request, fixture)
    copy = _copy(model_dir, manifest, tmp_path)
    (copy / SIGNATURE_FILE).unlink()
    _refuse_parsing(monkeypatch, manifest_too=True)
    read = _read_while_loading(copy, manifest.version, bundle_key, r"is not signed.*retrain")
    assert read <= {MANIFEST_FILE}


@pytest.mark.parametrize("signed_by", ["the original signature", "another key"])
def test_a_manifest_edited_to_load_a_pickle_never_runs_it(
    trained: Any, tmp_path: Path, bundle_key: SecretStr, signed_by: str
) -> None:
    """The attack the signature stops: `model.json` dropped from the list and a pickle listed
    with its right checksum in its place, the signature kept or made with a key of one's own.
    Nothing of the bundle is read after the manifest, and the pickle never runs."""
    settings, manifest = trained
    copy = _copy(settings.model_dir, manifest, tmp_path)
    marker = tmp_path / "pwned"
    (copy / "model.joblib").write_bytes(pickle.dumps(_TouchOnUnpickle(str(marker))))
    files = {k: v for k, v in manifest.files.items() if k != "model.json"}
    files["model.joblib"] = sha256_file(copy / "model.joblib")
    signed = (copy / SIGNATURE_FILE).read_bytes()
    _relist(copy, files, SecretStr(secrets.token_urlsafe(32)))
    if signed_by == "the original signature":
        (copy / SIGNATURE_FILE).write_bytes(signed)
    read = _read_while_loading(copy, manifest.version, bundle_key, "does not match its signature")
    assert read == {MANIFEST_FILE, SIGNATURE_FILE}
    assert not marker.exists()


@dataclass(frozen=True)
class _TouchOnUnpickle:
    """Unpickling it creates `path`: the marker of code run from a bundle."""

    path: str

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


def test_a_signed_manifest_of_another_version_is_refused(
    trained: Any, tmp_path: Path, bundle_key: SecretStr
) -> None:
    """A bundle copied in under a new version name, signature and all (an old model replayed
    as a new one), is not that version."""
    settings, manifest = trained
    shutil.copytree(settings.model_dir / manifest.version, tmp_path / "v99")
    with pytest.raises(
        BundleError, match=rf"v99 refused: it holds the manifest of {manifest.version}"
    ):
        load_bundle(tmp_path, "v99", key=bundle_key)
