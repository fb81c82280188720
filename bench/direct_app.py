"""Case B: the naive deployment the service is compared with, for the benchmark only.

Every uvicorn worker process loads the bundle itself and predicts inside the request, with the
same validation (`HouseFull`) and the same call as the worker (`Predictor.estimate`), so
the only difference from the real service is the queue. Run by bench.run as
`uvicorn bench.direct_app:app --workers N`; BENCH_MODEL_DIR and BENCH_MODEL_VERSION choose
the bundle.
"""

import os

# Like the real workers: one BLAS/OpenMP thread per process, since there is a process per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from api.schemas import HouseFull
from shared.model.bundles import load_bundle
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.settings import get_settings

PREDICTOR = Predictor(
    load_bundle(
        Path(os.environ["BENCH_MODEL_DIR"]),
        os.environ["BENCH_MODEL_VERSION"],
        key=signing_key(get_settings(), create=False),
    )
)
threadpool_limits(1)
# bench.run counts these lines to know that every worker process is ready.
print(f"process {os.getpid()} loaded model {PREDICTOR.version}", flush=True)

app = FastAPI(title="bench: direct in-process predictions")


@app.get("/health")
def health() -> dict[str, str]:
    return {"model_version": PREDICTOR.version}


@app.post("/predict")
def predict(house: HouseFull, explain: bool = False) -> dict[str, Any]:
    """A plain `def`: FastAPI runs it in its thread pool, as a naive deployment would.
    `explain` defaults to off, as on the service's /v1/predict."""
    estimate = PREDICTOR.estimate(pd.DataFrame([house.model_dump()]), "full", explain=explain)[0]
    return {
        **estimate.model_dump(),
        "model_version": PREDICTOR.version,
        "model_kind": PREDICTOR.kind.name,
    }
