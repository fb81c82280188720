"""Immutable, versioned model bundles: `model_artifacts/<version>/`.

A bundle holds the fitted model as plain files its kind writes (`shared.model.kinds`: JSON,
NumPy arrays, LightGBM's model text, compiled trees; never a pickle), the demographics table it
was trained with (so it serves exactly what it learned from), a manifest with the checksum of
every file, and the manifest's signature with the bundle signing key (`shared.model.signing`).
Versions are `v1`, `v2`, … in creation order; a version directory is written once, under a
temporary name, then renamed into place, and never modified afterwards.
"""

import platform
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr

from shared.model.contract import MODEL_KINDS, ZIPCODE
from shared.model.data import sha256_file
from shared.model.files import BundleFiles
from shared.model.kinds import Model
from shared.model.kinds.baseline import BaselineModel
from shared.model.kinds.gbm import GbmModel
from shared.model.manifest import BundleError, Manifest, check_version, version_number
from shared.model.signing import SIGNATURE_FILE, authentic, signature
from shared.monitoring.profile import TrainingProfile

# How a kind's files are written, per kind (`Model.FORMAT`): 1, one joblib pickle of the model
# objects (no longer read); 2, each kind's plain files; 3 (gbm), plus the market index, the
# comparable sales and the ranges' difficulty model; 4 (gbm), the comparable sales with lot size
# and above-ground area, the index with its reference month; 5 (gbm), a range quantile per price
# band (shared/model/confidence.py, RANGE_BANDS). A bundle of another format than
# its kind's is listed but not served: `realty train` writes a servable one beside it.
DEMOGRAPHICS_FILE = "demographics.csv"
MANIFEST_FILE = "manifest.json"
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "lightgbm", "lleaves")

# The one place a manifest's kind becomes code: bound when this module is imported, so loading
# never imports a module by a name a bundle recorded.
MODELS: dict[str, type[Model]] = {kind.KIND: kind for kind in (BaselineModel, GbmModel)}


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    model: Model
    demographics: pd.DataFrame

    @property
    def version(self) -> str:
        return self.manifest.version


def list_manifests(model_dir: Path) -> list[Manifest]:
    """Every complete bundle, oldest first."""
    if not model_dir.exists():
        return []
    found = []
    for path in model_dir.iterdir():
        if version_number(path.name) is not None and (path / MANIFEST_FILE).exists():
            found.append(read_manifest(path))
    return sorted(found, key=lambda m: version_number(m.version) or 0)


def read_manifest(bundle_dir: Path) -> Manifest:
    """Unverified: to list bundles and pick one; nothing is served but by `verify_bundle`."""
    return Manifest.model_validate_json((bundle_dir / MANIFEST_FILE).read_text())


def servable(manifest: Manifest) -> bool:
    """Whether this code reads the bundle: a known kind, in its kind's format. An older bundle
    stays on disk, listed, until `realty train` writes a servable one beside it."""
    return manifest.kind in MODELS and manifest.format == MODELS[manifest.kind].FORMAT


def latest_version(model_dir: Path, kind: str | None = None) -> str | None:
    """The newest servable bundle (of `kind`)."""
    manifests = [
        m for m in list_manifests(model_dir) if servable(m) and (kind is None or m.kind == kind)
    ]
    return manifests[-1].version if manifests else None


def write_bundle(
    model_dir: Path,
    *,
    model: Model,
    input_features: list[str],
    demographics: pd.DataFrame,
    data_files: dict[str, str],
    metrics: dict[str, Any],
    training: dict[str, Any],
    key: SecretStr,
    profile: TrainingProfile | None = None,
) -> Manifest:
    """Write a new bundle of `model` under the next free version, its manifest signed with
    `key` (with the training `profile` drift is measured against), and return the manifest."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    staging.chmod(0o755)  # readable by workers running as another user
    demographics.to_csv(staging / DEMOGRAPHICS_FILE, index=False)
    names = [DEMOGRAPHICS_FILE, *model.save(staging)]
    files = {name: sha256_file(staging / name) for name in names}
    libraries = {name: package_version(name) for name in _LIBRARIES}
    libraries["python"] = platform.python_version()
    while True:
        taken = [version_number(p.name) or 0 for p in model_dir.iterdir()]
        version = f"v{max(taken, default=0) + 1}"
        manifest = Manifest(
            version=version,
            kind=model.KIND,
            format=model.FORMAT,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            input_features=input_features,
            request_fields=list(MODEL_KINDS[model.KIND].request_fields),
            zipcodes=sorted(demographics[ZIPCODE].unique()),
            libraries=libraries,
            files=files,
            data_files=data_files,
            metrics=metrics,
            training=training,
            # What the API checks a batch's `as_of` against, without the model's libraries.
            as_of_months=[] if model.market is None else list(model.market.months()),
            profile=profile,
        )
        raw = (manifest.model_dump_json(indent=2) + "\n").encode()
        (staging / MANIFEST_FILE).write_bytes(raw)
        (staging / SIGNATURE_FILE).write_bytes(signature(key, raw))
        try:
            # rename() refuses a non-empty target: a concurrent run that took this number wins
            # and we try the next one, so no version is ever overwritten.
            staging.rename(model_dir / version)
        except OSError:
            if (model_dir / version).exists():
                continue
            raise
        return manifest


def verify_bundle(model_dir: Path, version: str, *, key: SecretStr) -> Manifest:
    """The manifest of bundle `version`, once nothing about it is taken on trust. In order:
    the name is a version name (it becomes a path); the manifest's bytes carry `key`'s signature
    (checked before they are parsed, and then those same bytes are parsed); the manifest is this
    version's (not another bundle's copied in); this code reads its format and kind; every file
    it lists matches its checksum; the installed scikit-learn is the one the model was trained
    with. Only then does `load_bundle` parse a file or load compiled code."""
    bundle_dir = model_dir / check_version(version)
    if not (bundle_dir / MANIFEST_FILE).exists():
        available = ", ".join(m.version for m in list_manifests(model_dir)) or "none"
        raise BundleError(f"no bundle {version!r} in {model_dir} (available: {available})")
    raw = (bundle_dir / MANIFEST_FILE).read_bytes()
    if not (bundle_dir / SIGNATURE_FILE).is_file():
        raise BundleError(
            f"bundle {version} is not signed (no {SIGNATURE_FILE}): it was written before "
            "bundles were signed, or not by `realty train`; retrain it"
        )
    if not authentic(key, raw, (bundle_dir / SIGNATURE_FILE).read_bytes()):
        raise BundleError(
            f"bundle {version} refused: its {MANIFEST_FILE} does not match its signature "
            "(edited after training, or signed with another bundle signing key)"
        )
    manifest = Manifest.model_validate_json(raw)
    if manifest.version != version:
        raise BundleError(f"bundle {version} refused: it holds the manifest of {manifest.version}")
    if not servable(manifest):
        formats = ", ".join(f"format {m.FORMAT} of {kind}" for kind, m in MODELS.items())
        raise BundleError(
            f"bundle {version} is a {manifest.kind!r} bundle of format {manifest.format}; this "
            f"code reads {formats}: retrain it (`realty train`)"
        )
    for name, expected in manifest.files.items():
        path = bundle_dir / name
        # A name is a plain file of the directory: a manifest cannot point outside it.
        if name != path.name or name in (MANIFEST_FILE, SIGNATURE_FILE) or not path.is_file():
            raise BundleError(f"{bundle_dir}: its manifest lists {name!r}, not a file of it")
        if sha256_file(path) != expected:
            raise BundleError(f"{path} does not match its manifest checksum")
    trained, installed = manifest.libraries.get("scikit-learn"), package_version("scikit-learn")
    if trained != installed:
        raise BundleError(
            f"bundle {version} was trained with scikit-learn {trained} but {installed} is "
            "installed; retrain it or install the pinned version"
        )
    return manifest


def load_bundle(model_dir: Path, version: str, *, key: SecretStr, artifacts: bool = True) -> Bundle:
    """The bundle, verified with `key` (`verify_bundle`) before any of its files is read;
    `artifacts=False` leaves files that only speed the model up unused (the gbm kind then
    predicts with LightGBM rather than its compiled trees)."""
    manifest = verify_bundle(model_dir, version, key=key)
    files = BundleFiles(model_dir / version, frozenset(manifest.files))
    demographics = pd.read_csv(files.path(DEMOGRAPHICS_FILE), dtype={ZIPCODE: str})
    model = MODELS[manifest.kind].load(files, artifacts=artifacts)
    return Bundle(manifest, model, demographics)
