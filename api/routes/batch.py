"""Batch jobs: submit many houses at once (JSON or CSV), poll, fetch results (JSON or CSV)."""

import csv
import io
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import AgentCaller, BatchCaller
from api.batch_body import media_type, parse_rows
from api.deps import BatchJobsDep, PinnedVersion, SettingsDep, VersionsDep
from api.errors import InvalidInputError, PayloadTooLargeError, field_errors
from api.schemas import BatchAccepted, BatchStatus, HouseFull, validate_rows
from api.validation import check_batch_zipcodes
from shared.model.contract import ZIPCODE

router = APIRouter(prefix="/v1", tags=["batch"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["rows"],
                    "properties": {
                        "rows": {"type": "array", "items": HouseFull.model_json_schema()}
                    },
                }
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "bedrooms,bathrooms,...,sqft_lot15\n4,1.0,...,5765\n",
            },
        },
    }
}


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    openapi_extra=_BODY_DOC,
    responses={
        413: {"description": "Too many rows or too large a body."},
        429: {"description": "The key's batch quota is used up; see Retry-After."},
    },
)
async def submit_batch(
    request: Request,
    caller: BatchCaller,
    jobs: BatchJobsDep,
    versions: VersionsDep,
    settings: SettingsDep,
    pinned: PinnedVersion = None,
) -> BatchAccepted:
    """Queue many houses at once; poll `status_url` for progress and results."""
    media = media_type(request.headers.get("content-type"))
    raw_rows = await run_in_threadpool(parse_rows, await request.body(), media)
    if not raw_rows:
        raise InvalidInputError.at(("body",), "the batch has no rows")
    if len(raw_rows) > settings.max_batch_rows:
        raise PayloadTooLargeError(
            f"{len(raw_rows):,} rows exceed the limit of {settings.max_batch_rows:,} per job"
        )
    try:
        rows = await run_in_threadpool(validate_rows, raw_rows)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise field_errors(errors, ("body", "rows"), f"{len(raw_rows)} rows") from exc
    manifest = await versions.serving(pinned, caller)
    check_batch_zipcodes([row[ZIPCODE] for row in rows], manifest)
    job_id = await jobs.submit(rows, manifest.version, caller)
    return BatchAccepted(
        job_id=job_id,
        status_url=str(request.url_for("batch_status", job_id=job_id)),
        rows_total=len(rows),
        model_version=manifest.version,
    )


@router.get(
    "/batch/{job_id}",
    name="batch_status",
    response_model=BatchStatus,
    responses={404: {"description": "Unknown job, another key's, or its results expired."}},
)
async def batch_status(
    job_id: str,
    request: Request,
    caller: AgentCaller,
    jobs: BatchJobsDep,
    format: Literal["json", "csv"] | None = Query(
        None, description="Results format; CSV also when the Accept header asks for text/csv."
    ),
) -> Response:
    """Progress of a batch job, and its results once it has succeeded."""
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    status = await jobs.status(job_id, caller)
    if wants_csv and status.results is not None:
        return Response(await run_in_threadpool(_results_csv, status), media_type="text/csv")
    body = await run_in_threadpool(status.model_dump_json)
    return Response(body, media_type="application/json")


def _results_csv(status: BatchStatus) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "prediction", "model_version"])
    writer.writerows((r.row, r.prediction, r.model_version) for r in status.results or [])
    return out.getvalue()
