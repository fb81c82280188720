"""The served model is the client's model, and the API answers what `realty predict` computes."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import requests
from stack import REPO, Stack, as_rows

from shared.model.bundles import list_manifests


def test_every_future_example_via_api_equals_offline_realty_predict(
    api: requests.Session, stack: Stack, future_examples: pd.DataFrame, tmp_path
):
    version = api.get("/health/ready").json()["active_version"]
    out = tmp_path / "offline.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.tools.cli",
            "predict",
            str(REPO / "data" / "future_unseen_examples.csv"),
            "--model",
            version,
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=stack.env,
        check=True,
    )
    offline = pd.read_csv(out)["prediction"].tolist()
    served = [api.post("/v1/predict", json=row).json() for row in as_rows(future_examples)]
    assert [s["model_version"] for s in served] == [version] * 100
    assert [s["prediction"] for s in served] == offline


def test_the_baseline_bundle_reproduces_the_clients_r2(stack: Stack):
    """Whichever kind is served, the baseline bundle beside it is the client's model: its
    held-out R² on the client's split (computed at training, checked again in
    tests/unit/test_training.py) is the client's 0.728."""
    manifests = list_manifests(Path(stack.env["REALTY_MODEL_DIR"]))
    baseline = [m for m in manifests if m.kind == "baseline"]
    assert baseline, "no baseline bundle: run `make train`"
    assert round(baseline[0].metrics["test"]["r2"], 3) == 0.728
