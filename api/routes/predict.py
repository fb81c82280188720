"""Single-house estimates, answered synchronously through the queue."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from api.deps import DispatcherDep, PinnedVersion, require_json
from api.dispatch import Dispatcher
from api.errors import VersionNotServedError
from api.validation import unknown_zipcode_error
from shared.schemas import HouseFull, HouseMinimal, Prediction

Explain = Annotated[
    bool,
    Query(
        description="Add the estimate's top contributing factors in plain words (models that "
        "support it). Off by default: the explanation costs the model several times the estimate."
    ),
]

router = APIRouter(prefix="/v1", tags=["predictions"], dependencies=[Depends(require_json)])

FAULTS = {
    409: {"description": "The pinned X-Model-Version has no running worker."},
    503: {"description": "Redis or the workers are unreachable; retry after Retry-After."},
    504: {"description": "No worker answered before the deadline."},
}


async def _estimate(
    house: HouseFull | HouseMinimal,
    dispatcher: Dispatcher,
    pinned: str | None,
    explain: bool,
    variant: str = "full",
) -> Response:
    started = time.perf_counter()
    # The zipcode is checked by the worker against its own bundle (an unknown one comes back
    # as an error reply and becomes this 422), which saves the API a step per request.
    manifest, reply = await dispatcher.predict(
        house.model_dump(), pinned, variant=variant, explain=explain
    )
    if reply.get("error") == "unknown_zipcode":
        raise unknown_zipcode_error([((), house.zipcode)], manifest)
    if reply.get("error") == "version_gone":
        raise VersionNotServedError(f"model version {manifest.version!r} stopped serving")
    if "error" in reply:  # a fault of ours, logged by the worker under this request id
        raise HTTPException(500, f"the model failed on request {reply['request_id']}; retry later")
    answer = Prediction(**reply, elapsed_ms=round((time.perf_counter() - started) * 1000, 2))
    # Serialised here, once: FastAPI would validate the model a second time on the hot path.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/predict", response_model=Prediction, responses=FAULTS)
async def predict(
    house: HouseFull,
    dispatcher: DispatcherDep,
    explain: Explain = False,
    pinned: PinnedVersion = None,
):
    """Estimate the sale price of one house from all 18 columns of future_unseen_examples.csv."""
    return await _estimate(house, dispatcher, pinned, explain)


@router.post("/predict/minimal", response_model=Prediction, responses=FAULTS)
async def predict_minimal(
    house: HouseMinimal,
    dispatcher: DispatcherDep,
    explain: Explain = False,
    pinned: PinnedVersion = None,
):
    """Estimate from only the fields the model uses: bedrooms, bathrooms, sqft_living, sqft_lot,
    floors, sqft_above, sqft_basement and zipcode."""
    return await _estimate(house, dispatcher, pinned, explain, variant="minimal")
