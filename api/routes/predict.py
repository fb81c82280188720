"""Single-house estimates, answered synchronously through the queue."""

import time

from fastapi import APIRouter, HTTPException

from api.deps import DispatcherDep, PinnedVersion
from api.dispatch import Dispatcher
from api.validation import check_zipcodes, unknown_zipcode_error
from shared.schemas import HouseFull, HouseMinimal, Prediction

router = APIRouter(prefix="/v1", tags=["predictions"])

FAULTS = {
    409: {"description": "The pinned X-Model-Version has no running worker."},
    503: {"description": "Redis or the workers are unreachable; retry after Retry-After."},
    504: {"description": "No worker answered before the deadline."},
}


async def _estimate(
    house: HouseFull | HouseMinimal, dispatcher: Dispatcher, pinned: str | None
) -> Prediction:
    started = time.perf_counter()
    manifest = await dispatcher.serving_version(pinned)
    check_zipcodes([house.zipcode], manifest, batch=False)
    reply = await dispatcher.predict(house.model_dump(), manifest.version)
    if reply.get("error") == "unknown_zipcode":
        raise unknown_zipcode_error([((), house.zipcode)], manifest)
    if "error" in reply:
        raise HTTPException(500, f"worker failed on request {reply['request_id']}: {reply}")
    return Prediction(**reply, elapsed_ms=round((time.perf_counter() - started) * 1000, 2))


@router.post("/predict", response_model=Prediction, responses=FAULTS)
async def predict(house: HouseFull, dispatcher: DispatcherDep, pinned: PinnedVersion = None):
    """Estimate the sale price of one house from all 18 columns of future_unseen_examples.csv."""
    return await _estimate(house, dispatcher, pinned)


@router.post("/predict/minimal", response_model=Prediction, responses=FAULTS)
async def predict_minimal(
    house: HouseMinimal, dispatcher: DispatcherDep, pinned: PinnedVersion = None
):
    """Estimate from only the fields the model uses: bedrooms, bathrooms, sqft_living, sqft_lot,
    floors, sqft_above, sqft_basement and zipcode."""
    return await _estimate(house, dispatcher, pinned)
