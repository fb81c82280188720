"""Batch jobs: submit many houses at once (JSON or CSV), poll, fetch results (JSON or CSV)."""

import csv
import io
import json
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import DispatcherDep, PinnedVersion, SettingsDep
from api.job_store import JobNotFoundError
from api.validation import check_batch_zipcodes, rows_validation_error
from shared.features import HOUSE_COLUMNS, KNOWN_COLUMNS, ZIPCODE
from shared.schemas import BatchAccepted, BatchStatus, HouseFull, validate_rows

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


def _body_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "body", "loc": ("body",), "msg": message}])


def _parse_rows(body: bytes, content_type: str) -> list[Any]:
    if content_type == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype={ZIPCODE: str})
        except (ValueError, pd.errors.ParserError) as exc:
            raise _body_error(f"the CSV body could not be read: {exc}") from exc
        _check_csv_header(list(frame.columns))
        # Through JSON so cells become plain numbers, text or null, exactly like a JSON body.
        return json.loads(frame.to_json(orient="records"))
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _body_error(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise _body_error('expected a JSON object {"rows": [ {house}, ... ]}')
    if extra := sorted(set(document) - {"rows"}):
        raise _body_error(f'unknown top-level field(s) {extra}: the body holds only "rows"')
    return document["rows"]


def _check_csv_header(columns: list[str]) -> None:
    """Header problems are reported once, by column, rather than once per row."""
    missing = [c for c in HOUSE_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unknown:
        problems.append(f"unknown column(s) {unknown} (not columns of the house data)")
    if problems:
        raise _body_error("CSV header: " + "; ".join(problems))


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    openapi_extra=_BODY_DOC,
    responses={413: {"description": "Too many rows or too large a body."}},
)
async def submit_batch(
    request: Request, dispatcher: DispatcherDep, settings: SettingsDep, pinned: PinnedVersion = None
) -> BatchAccepted:
    """Queue many houses at once; poll `status_url` for progress and results."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in ("application/json", "text/csv"):
        raise HTTPException(415, f"send application/json or text/csv, not {content_type!r}")
    raw_rows = await run_in_threadpool(_parse_rows, await request.body(), content_type)
    if not raw_rows:
        raise _body_error("the batch has no rows")
    if len(raw_rows) > settings.max_batch_rows:
        raise HTTPException(
            413, f"{len(raw_rows):,} rows exceed the limit of {settings.max_batch_rows:,} per job"
        )
    try:
        rows = await run_in_threadpool(validate_rows, raw_rows)
    except ValidationError as exc:
        raise rows_validation_error(exc, len(raw_rows)) from exc
    manifest = await dispatcher.serving_version(pinned)
    check_batch_zipcodes([row[ZIPCODE] for row in rows], manifest)
    job_id = await dispatcher.submit_batch(rows, manifest.version)
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
    responses={404: {"description": "Unknown job, or its results expired."}},
)
async def batch_status(
    job_id: str,
    request: Request,
    dispatcher: DispatcherDep,
    format: Literal["json", "csv"] | None = Query(
        None, description="Results format; CSV also when the Accept header asks for text/csv."
    ),
) -> Response:
    """Progress of a batch job, and its results once it has succeeded."""
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    try:
        status = await dispatcher.batch_status(job_id)
    except JobNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
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
