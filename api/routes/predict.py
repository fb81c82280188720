"""Single-house estimates, answered synchronously through the queue."""

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import Caller, HouseCaller
from api.deps import PinnedVersion, PredictionsDep
from api.errors import ModelFailedError, VersionNotServedError
from api.predictions import Predictions
from api.schemas import HouseFull, HouseMinimal, Prediction, error_responses
from api.validation import unknown_zipcode_error
from shared.wire.messages import ErrorCode, ErrorReply, Variant

Explain = Annotated[
    bool,
    Query(
        description="Add the estimate's top contributing factors in plain words (models that "
        "support it). Off by default: the explanation costs the model several times the estimate."
    ),
]

router = APIRouter(prefix="/v1", tags=["predictions"])

FAULTS = error_responses(
    {
        401: "No API key, or a wrong or revoked one.",
        403: "X-Model-Version pins an inactive version without an admin key.",
        409: "The pinned X-Model-Version has no running worker.",
        413: "A body over 64 KiB: one house is a few hundred bytes.",
        415: "A body that is not application/json.",
        429: "The key is over its requests per second; see Retry-After.",
        500: "The model failed on this house; the request id is in the workers' log.",
        503: "Redis or the workers are unreachable; retry after Retry-After.",
        504: "No worker answered before the deadline.",
    }
)


async def _estimate(
    house: HouseFull | HouseMinimal,
    caller: Caller,
    predictions: Predictions,
    pinned: str | None,
    explain: bool,
    variant: Variant = "full",
) -> Response:
    started = time.perf_counter()
    # The zipcode is checked by the worker against its own bundle (an unknown one comes back
    # as an error reply and becomes this 422), which saves the API a step per request.
    manifest, reply = await predictions.predict(
        house.model_dump(), caller, pinned, variant=variant, explain=explain
    )
    if isinstance(reply, ErrorReply):
        match reply.error:
            case ErrorCode.UNKNOWN_ZIPCODE:
                raise unknown_zipcode_error([((), house.zipcode)], manifest)
            case ErrorCode.VERSION_GONE:
                raise VersionNotServedError(f"model version {manifest.version!r} stopped serving")
        raise ModelFailedError(f"the model failed on request {reply.request_id}; retry later")
    fields = {name: value for name, value in reply if name != "type"}
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    # Built from the reply the inbox validated, and serialised here, once: FastAPI would
    # validate the answer a second time on the hot path.
    answer = Prediction.model_construct(**fields, elapsed_ms=elapsed_ms)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/predict", response_model=Prediction, responses=FAULTS)
async def predict(
    house: HouseFull,
    caller: HouseCaller,
    predictions: PredictionsDep,
    explain: Explain = False,
    pinned: PinnedVersion = None,
):
    """Estimate the sale price of one house from all 18 columns of future_unseen_examples.csv."""
    return await _estimate(house, caller, predictions, pinned, explain)


@router.post("/predict/minimal", response_model=Prediction, responses=FAULTS)
async def predict_minimal(
    house: HouseMinimal,
    caller: HouseCaller,
    predictions: PredictionsDep,
    explain: Explain = False,
    pinned: PinnedVersion = None,
):
    """Estimate from only the fields the model uses: bedrooms, bathrooms, sqft_living, sqft_lot,
    floors, sqft_above, sqft_basement and zipcode."""
    return await _estimate(house, caller, predictions, pinned, explain, variant="minimal")
