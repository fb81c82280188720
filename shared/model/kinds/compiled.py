"""LightGBM trees compiled to machine code (lleaves), for the served path.

LightGBM walks its 2,000 trees at about 0.17 ms a row; the same trees compiled to native code
by lleaves (LLVM), from the LightGBM model text the bundle holds, give the same numbers (within
1e-13 in log price) six to seven times faster (`make bench`, case A), and the walk was most of
a worker's CPU per prediction. Compiling takes ~15 s per estimator, so it is done once, when
the bundle is written, and the object code is stored in the bundle (checksummed with the rest);
a worker only loads it (~0.05 s).

The code targets `x86-64-v2` (SSE4.2, every x86-64 server since about 2009), not the training
machine's CPU, so a bundle trained on one host serves on another. Where it cannot be used
(another architecture, an older CPU, `REALTY_COMPILED_TREES=false`), the estimator keeps
predicting with LightGBM itself: same answers, only slower.
"""

import logging
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import lleaves

log = logging.getLogger(__name__)

TARGET_CPU = "x86-64-v2"
_REQUIRED_FEATURES = ("sse4.2", "popcnt", "ssse3")
# Inlining every tree into one function made compiling 10x slower for <10 % faster code.
_COMPILE_OPTIONS = {"finline": False, "target_cpu": TARGET_CPU, "target_cpu_features": ""}

Predict = Callable[[np.ndarray], np.ndarray]


def supported() -> bool:
    """Whether this machine can run code compiled for TARGET_CPU."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    return all(features.get(name, False) for name in _REQUIRED_FEATURES)


def _lleaves_model(model_file: Path, object_file: Path) -> "lleaves.Model":
    """lleaves reads the model's text form to know its features; the object file holds the
    code (compiled into it when missing)."""
    import lleaves

    model = lleaves.Model(model_file=str(model_file))
    model.compile(cache=str(object_file), **_COMPILE_OPTIONS)
    return model


def compile_trees(model_file: Path, object_file: Path) -> bool:
    """Write the trees of LightGBM's `model_file` compiled to `object_file`; False where this
    machine cannot."""
    if not supported():
        log.warning("not compiling trees: this machine cannot run %s code", TARGET_CPU)
        return False
    _lleaves_model(model_file, object_file)
    return True


def load_trees(model_file: Path, object_file: Path) -> Predict | None:
    """A function giving the raw predictions of LightGBM's `model_file` from its compiled trees,
    or None (and LightGBM serves) when the code is absent or cannot run here."""
    try:
        if not object_file.exists() or not supported():
            return None
        model = _lleaves_model(model_file, object_file)
    except Exception:  # never let the accelerator stop a worker from serving
        log.exception("compiled trees %s failed to load; predicting with LightGBM", object_file)
        return None
    return lambda matrix: model.predict(matrix, n_jobs=1)
