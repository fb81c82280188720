"""A bundle's files as a model kind writes and reads them: JSON, NumPy arrays, text.

No pickle anywhere: a pickle names the modules and classes that wrote it, so moving code breaks
the stored models, and loading one runs whatever it says. Arrays are written and read with
`allow_pickle=False`, so an object array can neither be stored nor smuggled in.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.model.manifest import BundleError


@dataclass(frozen=True)
class BundleFiles:
    """The files of a verified bundle, as its kind's loader reaches them.

    Only names the manifest lists (and so checksummed) are handed out: a stray file beside a
    bundle is never read, and a manifest lacking a file the kind needs refuses the bundle."""

    directory: Path
    listed: frozenset[str]

    def __contains__(self, name: object) -> bool:
        return name in self.listed

    def path(self, name: str) -> Path:
        if name not in self.listed:
            raise BundleError(
                f"{self.directory}: its manifest does not list {name}, a file it needs"
            )
        return self.directory / name

    def json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def text(self, name: str) -> str:
        return self.path(name).read_text()

    def array(self, name: str) -> np.ndarray:
        path = self.path(name)
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:  # an object array: a pickle inside the .npy file
            raise BundleError(f"{path} is not a plain array: {exc}") from exc


def write_json(directory: Path, name: str, value: Any) -> str:
    """`value` as JSON (floats round-trip exactly; NaN refused, it is not JSON); the name."""
    (directory / name).write_text(json.dumps(value, indent=1, allow_nan=False) + "\n")
    return name


def write_array(directory: Path, name: str, array: np.ndarray) -> str:
    """`array` as a .npy file (`name` must end in .npy, or NumPy appends it); the name."""
    np.save(directory / name, array, allow_pickle=False)
    return name
