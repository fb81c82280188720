"""Single-house estimates, answered synchronously through the queue."""

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field, TypeAdapter, ValidationError
from starlette.types import Scope

from api.auth import Caller, HouseCaller
from api.deps import services_of
from api.errors import InvalidInputError, ModelFailedError, VersionNotServedError
from api.metrics import observe_reply
from api.predictions import Options, Predictions
from api.request_context import estimate_id_of
from api.schemas import HouseFull, HouseMinimal, Prediction, error_responses
from api.validation import unknown_zipcode_error
from shared.model.contract import AS_OF_PATTERN, MAX_COMPS
from shared.model.manifest import VERSION_RE
from shared.wire.messages import ErrorCode, ErrorReply, Variant

EXPLAIN_DOC = (
    "Add the estimate's top contributing factors in plain words (models that support it). Off "
    "by default: the explanation costs the model several times the estimate."
)
PINNED_DOC = "Route this request to a specific model version (409 if none serves it)."
AS_OF_DOC = (
    "Price the home in this month's market (YYYY-MM, a month the model learned from; see "
    "`as_of_months` of GET /v1/models). Default: the latest month it learned from."
)
COMPS_DOC = f"Add up to {MAX_COMPS} comparable past sales to the answer. Default: none."
# `explain` and `X-Model-Version` are read from the request, not declared as parameters: on the
# hot path FastAPI's handling of two more declared parameters and a dependency cost each
# prediction ~40 µs of API CPU (98 against 60 µs for the route alone, measured in process), so
# they are documented here instead, as FastAPI would have.
OPTIONS: dict[str, Any] = {
    "parameters": [
        {
            "name": "explain",
            "in": "query",
            "required": False,
            "description": EXPLAIN_DOC,
            "schema": {"type": "boolean", "default": False, "title": "Explain"},
        },
        {
            "name": "as_of",
            "in": "query",
            "required": False,
            "description": AS_OF_DOC,
            "schema": {"type": "string", "pattern": AS_OF_PATTERN, "title": "As Of"},
        },
        {
            "name": "comps",
            "in": "query",
            "required": False,
            "description": COMPS_DOC,
            "schema": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_COMPS,
                "default": 0,
                "title": "Comps",
            },
        },
        {
            "name": "X-Model-Version",
            "in": "header",
            "required": False,
            "description": PINNED_DOC,
            "schema": {"type": "string", "pattern": VERSION_RE.pattern, "title": "X-Model-Version"},
        },
    ]
}
_BOOL = TypeAdapter(bool)
_COMPS = TypeAdapter(Annotated[int, Field(ge=0, le=MAX_COMPS)])
_AS_OF = re.compile(AS_OF_PATTERN)


def _options(request: Request) -> Options:
    """The query parameters and the pinned version, checked as FastAPI would have (422 naming
    them)."""
    query = request.query_params
    if not query and "x-model-version" not in request.headers:
        return Options()  # the common case, at no cost
    explain = query.get("explain")
    try:
        explain = False if explain is None else _BOOL.validate_python(explain)
    except ValidationError:
        message = f"explain should be true or false, not {explain!r}"
        raise InvalidInputError.at(("query", "explain"), message, "bool_parsing") from None
    comps = query.get("comps")
    try:
        comps = 0 if comps is None else _COMPS.validate_python(comps)
    except ValidationError:
        message = f"comps should be a whole number from 0 to {MAX_COMPS}, not {comps[:40]!r}"
        raise InvalidInputError.at(("query", "comps"), message, "int_parsing") from None
    as_of = query.get("as_of")
    if as_of is not None and _AS_OF.fullmatch(as_of) is None:
        message = f"as_of should be a month as YYYY-MM, such as 2015-05, not {as_of[:40]!r}"
        raise InvalidInputError.at(("query", "as_of"), message, "string_pattern_mismatch")
    pinned = request.headers.get("x-model-version")
    if pinned is not None and VERSION_RE.fullmatch(pinned) is None:
        message = f"X-Model-Version should be a version name such as v2, not {pinned[:40]!r}"
        where = ("header", "X-Model-Version")
        raise InvalidInputError.at(where, message, "string_pattern_mismatch")
    return Options(explain, as_of, comps, pinned)


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


async def estimate_answer(
    house: HouseFull | HouseMinimal,
    caller: Caller,
    options: Options,
    variant: Variant,
    predictions: Predictions,
    scope: Scope,
) -> Response:
    """The answer to one valid house: the route's, and `api.fast_path`'s for the same house."""
    started = time.perf_counter()
    # The zipcode and the month are checked by the worker against its own bundle (an unknown
    # one comes back as an error reply and becomes a 422), which saves the API a step.
    manifest, reply = await predictions.predict(
        house.model_dump(), caller, options, variant, estimate_id_of(scope)
    )
    if isinstance(reply, ErrorReply):
        match reply.error:
            case ErrorCode.UNKNOWN_ZIPCODE:
                raise unknown_zipcode_error([((), house.zipcode)], manifest)
            case ErrorCode.INVALID_AS_OF:
                raise InvalidInputError.at(("query", "as_of"), reply.detail, "value_error")
            case ErrorCode.VERSION_GONE:
                raise VersionNotServedError(f"model version {manifest.version!r} stopped serving")
        raise ModelFailedError(f"the model failed on request {reply.request_id}; retry later")
    observe_reply(reply)  # its time queued and in the model, its micro-batch's size
    fields = {name: value for name, value in reply if name != "type"}
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    # Built from the reply the inbox validated, and serialised here, once: FastAPI would
    # validate the answer a second time on the hot path.
    answer = Prediction.model_construct(**fields, elapsed_ms=elapsed_ms)
    return Response(answer.model_dump_json(), media_type="application/json")


async def _estimate(
    house: HouseFull | HouseMinimal, caller: Caller, request: Request, variant: Variant
) -> Response:
    options = _options(request)
    predictions = services_of(request).predictions
    return await estimate_answer(house, caller, options, variant, predictions, request.scope)


@router.post("/predict", response_model=Prediction, responses=FAULTS, openapi_extra=OPTIONS)
async def predict(house: HouseFull, caller: HouseCaller, request: Request):
    """Estimate the sale price of one house from all 18 columns of future_unseen_examples.csv."""
    return await _estimate(house, caller, request, "full")


@router.post("/predict/minimal", response_model=Prediction, responses=FAULTS, openapi_extra=OPTIONS)
async def predict_minimal(house: HouseMinimal, caller: HouseCaller, request: Request):
    """Estimate from only the fields the model uses: bedrooms, bathrooms, sqft_living, sqft_lot,
    floors, sqft_above, sqft_basement and zipcode."""
    return await _estimate(house, caller, request, "minimal")
