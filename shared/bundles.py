"""Immutable, versioned model bundles: `model_artifacts/<version>/`.

A bundle holds the fitted model, the demographics table it was trained with (so it serves
exactly what it learned from) and a manifest with checksums. Versions are `v1`, `v2`, … in
creation order; a version directory is written once, under a temporary name, then renamed into
place, and never modified afterwards.
"""

import platform
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import pandas as pd
from pydantic import BaseModel

from shared.data import sha256_file
from shared.features import MODEL_KINDS, ZIPCODE

MODEL_FILE = "model.joblib"
DEMOGRAPHICS_FILE = "demographics.csv"
MANIFEST_FILE = "manifest.json"
_VERSION_RE = re.compile(r"^v(\d+)$")
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy", "lightgbm", "lleaves")


@runtime_checkable
class HasArtifacts(Protocol):
    """A model with files of its own beside the pickle (compiled trees of the gbm kind)."""

    def save_artifacts(self, directory: Path) -> list[str]: ...

    def load_artifacts(self, directory: Path, files: Iterable[str]) -> None: ...


class BundleError(RuntimeError):
    """A bundle is missing, incomplete or altered since it was written."""


class Manifest(BaseModel):
    version: str
    kind: str
    created_at: str
    input_features: list[str]
    request_fields: list[str]
    zipcodes: list[str]
    libraries: dict[str, str]
    files: dict[str, str]
    data_files: dict[str, str]
    metrics: dict[str, Any]
    training: dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    model: Any
    demographics: pd.DataFrame

    @property
    def version(self) -> str:
        return self.manifest.version


def _version_number(name: str) -> int | None:
    match = _VERSION_RE.match(name)
    return int(match.group(1)) if match else None


def list_manifests(model_dir: Path) -> list[Manifest]:
    """Every complete bundle, oldest first."""
    if not model_dir.exists():
        return []
    found = []
    for path in model_dir.iterdir():
        if _version_number(path.name) is not None and (path / MANIFEST_FILE).exists():
            found.append(read_manifest(path))
    return sorted(found, key=lambda m: _version_number(m.version) or 0)


def read_manifest(bundle_dir: Path) -> Manifest:
    return Manifest.model_validate_json((bundle_dir / MANIFEST_FILE).read_text())


def latest_version(model_dir: Path, kind: str | None = None) -> str | None:
    manifests = [m for m in list_manifests(model_dir) if kind is None or m.kind == kind]
    return manifests[-1].version if manifests else None


def write_bundle(
    model_dir: Path,
    *,
    kind: str,
    model: Any,
    input_features: list[str],
    demographics: pd.DataFrame,
    data_files: dict[str, str],
    metrics: dict[str, Any],
    training: dict[str, Any],
) -> Manifest:
    """Write a new bundle under the next free version and return its manifest."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    staging.chmod(0o755)  # readable by workers running as another user
    joblib.dump(model, staging / MODEL_FILE)
    demographics.to_csv(staging / DEMOGRAPHICS_FILE, index=False)
    extra = model.save_artifacts(staging) if isinstance(model, HasArtifacts) else []
    names = (MODEL_FILE, DEMOGRAPHICS_FILE, *extra)
    files = {name: sha256_file(staging / name) for name in names}
    libraries = {name: package_version(name) for name in _LIBRARIES}
    libraries["python"] = platform.python_version()
    while True:
        taken = [_version_number(p.name) or 0 for p in model_dir.iterdir()]
        version = f"v{max(taken, default=0) + 1}"
        manifest = Manifest(
            version=version,
            kind=kind,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            input_features=input_features,
            request_fields=list(MODEL_KINDS[kind].request_fields),
            zipcodes=sorted(demographics[ZIPCODE].unique()),
            libraries=libraries,
            files=files,
            data_files=data_files,
            metrics=metrics,
            training=training,
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
        try:
            # rename() refuses a non-empty target: a concurrent run that took this number wins
            # and we try the next one, so no version is ever overwritten.
            staging.rename(model_dir / version)
        except OSError:
            if (model_dir / version).exists():
                continue
            raise
        return manifest


def verify_bundle(model_dir: Path, version: str) -> Manifest:
    """The manifest, after checking every file against its checksum and that the installed
    scikit-learn is the one the model was trained with."""
    bundle_dir = model_dir / version
    if not (bundle_dir / MANIFEST_FILE).exists():
        available = ", ".join(m.version for m in list_manifests(model_dir)) or "none"
        raise BundleError(f"no bundle {version!r} in {model_dir} (available: {available})")
    manifest = read_manifest(bundle_dir)
    for name, expected in manifest.files.items():
        if sha256_file(bundle_dir / name) != expected:
            raise BundleError(f"{bundle_dir / name} does not match its manifest checksum")
    trained, installed = manifest.libraries.get("scikit-learn"), package_version("scikit-learn")
    if trained != installed:
        raise BundleError(
            f"bundle {version} was trained with scikit-learn {trained} but {installed} is "
            "installed; retrain it or install the pinned version"
        )
    return manifest


def load_bundle(model_dir: Path, version: str, *, artifacts: bool = True) -> Bundle:
    """The verified bundle; `artifacts=False` leaves the model's own files unused (the gbm
    kind then predicts with LightGBM rather than its compiled trees)."""
    manifest = verify_bundle(model_dir, version)
    bundle_dir = model_dir / version
    demographics = pd.read_csv(bundle_dir / DEMOGRAPHICS_FILE, dtype={ZIPCODE: str})
    model = joblib.load(bundle_dir / MODEL_FILE)
    if artifacts and isinstance(model, HasArtifacts):
        model.load_artifacts(bundle_dir, manifest.files)
    return Bundle(manifest, model, demographics)
