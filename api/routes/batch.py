"""Batch jobs: submit many houses at once (JSON or CSV), poll, fetch results (JSON or CSV)."""

import csv
import io
import json
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import AgentCaller, BatchCaller
from api.batch_body import (
    BatchLimits,
    check_declared_length,
    media_type,
    parse_gate,
    receive_rows,
)
from api.deps import BatchJobsDep, PinnedVersion, SettingsDep, VersionsDep
from api.errors import InvalidInputError
from api.schemas import (
    EXAMPLE_HOUSE,
    BatchAccepted,
    BatchStatus,
    HouseFull,
    error_responses,
    json_or_csv_body,
)
from shared.model.contract import AS_OF_PATTERN, HOUSE_COLUMNS, MAX_COMPS
from shared.wire.jobs import JobResults
from shared.wire.messages import ESTIMATE_COLUMNS

router = APIRouter(prefix="/v1", tags=["batch"])

_BODY_DOC = json_or_csv_body(
    "rows",
    HouseFull.model_json_schema(),
    {"rows": [EXAMPLE_HOUSE]},
    # The 18 columns in any order, then one house per line, under the JSON rows' rules.
    ",".join(HOUSE_COLUMNS) + "\n" + ",".join(str(EXAMPLE_HOUSE[c]) for c in HOUSE_COLUMNS) + "\n",
    "house",
)
# A result row as CSV: the amounts of its ranges, the grade, the month, the warnings joined by
# " | " and, when asked for, the comparable sales as JSON.
CSV_COLUMNS = ("row", *ESTIMATE_COLUMNS, "model_version")
_CSV_RESULTS = (
    ",".join(CSV_COLUMNS)
    + "\n0,352937.55,308000.12,404400.0,284000.5,438600.25,B,0.09,2015-05,,v2\n"
)


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    openapi_extra=_BODY_DOC,
    responses=error_responses(
        {
            401: "No API key, or a wrong or revoked one.",
            403: "A key without the batch role, or one pinning an inactive version.",
            409: "The pinned X-Model-Version has no running worker.",
            413: "Too many rows or too large a body.",
            415: "A body that is neither application/json nor text/csv.",
            429: "The key's batch quota is used up; see Retry-After.",
            503: "Redis or the workers are unreachable, or too many batch uploads are being "
            "read at once; retry after Retry-After.",
        }
    ),
)
async def submit_batch(
    request: Request,
    caller: BatchCaller,
    jobs: BatchJobsDep,
    versions: VersionsDep,
    settings: SettingsDep,
    pinned: PinnedVersion = None,
    as_of: str | None = Query(
        None,
        pattern=AS_OF_PATTERN,
        description="Price every home in this month's market (YYYY-MM, a month the model "
        "learned from). Default: the latest month it learned from.",
    ),
    comps: int = Query(
        0, ge=0, le=MAX_COMPS, description="Comparable past sales to add to each row's result."
    ),
) -> BatchAccepted:
    """Queue many houses at once; poll `status_url` for progress and results."""
    # Refusals that need no body come first; then the body is read row by row in one of the
    # process's few reading turns, held until the job is queued (api/batch_body.py).
    media = media_type(request.headers.get("content-type"))
    limits = BatchLimits.of(settings)
    check_declared_length(request, limits)
    manifest = await versions.serving(pinned, caller)
    if as_of is not None and (problem := manifest.as_of_error(as_of)):
        raise InvalidInputError.at(("query", "as_of"), problem, "value_error")
    async with parse_gate(request.app, settings).turn():
        rows = await receive_rows(request, media, limits, manifest)
        job_id = await jobs.submit(rows, manifest.version, caller, as_of, comps)
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
    responses={
        200: {
            "description": "The job's progress (JSON); its results as CSV once it has succeeded "
            "and `format=csv` or `Accept: text/csv` asks for them.",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_RESULTS}},
        },
        **error_responses(
            {
                401: "No API key, or a wrong or revoked one.",
                404: "Unknown job, another key's, or its results expired.",
                503: "Redis is unreachable; retry after Retry-After.",
            }
        ),
    },
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
    job = await jobs.status(job_id, caller)
    if job.results is None:
        return Response(job.status.model_dump_json(), media_type="application/json")
    if wants_csv:
        return StreamingResponse(_results_csv(job.results, job.status.comps), media_type="text/csv")
    pieces = await run_in_threadpool(status_json, job.status, job.results)
    return StreamingResponse(
        iter(pieces),
        media_type="application/json",
        headers={"content-length": str(sum(map(len, pieces)))},
    )


def status_json(status: BatchStatus, results: JobResults) -> list[bytes]:
    """`status` with `results`, written as its `model_dump_json()` would be, byte for byte
    (`results` is its last field): the workers' rows spliced in, a chunk a piece. Joined into
    one body, 100,000 rows held the event loop 10-80 ms in single string calls (measured in
    process, 2026-11-29); sent piece by piece, with their length declared."""
    head = status.model_dump_json(exclude={"results"})
    pieces = [(head[:-1] + ',"results":[').encode()]
    for index, chunk in enumerate(results.chunks):
        pieces.append((("," if index else "") + chunk[1:-1]).encode())
    pieces.append(b"]}")
    return pieces


def _results_csv(results: JobResults, comps: int) -> Iterator[str]:
    """The header, then the rows as CSV a chunk at a time (decoded: CSV is not what workers
    write). Its length is known only once written: sent chunked."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS + (("comps",) if comps else ()))
    for chunk in results.chunks:
        yield _take(out)
        for r in json.loads(chunk):
            low_80, high_80 = _ends(r["interval_80"])
            low_95, high_95 = _ends(r["interval_95"])
            line = [r["row"], r["prediction"], low_80, high_80, low_95, high_95, r["confidence"]]
            line += [r["fsd"], r["as_of"], " | ".join(r["warnings"]), r["model_version"]]
            if comps:
                line.append(json.dumps(r["comps"]))
            writer.writerow(line)
    yield _take(out)


def _take(out: io.StringIO) -> str:
    """What was written to `out` since the last take."""
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def _ends(interval: dict[str, float] | None) -> tuple[float | str, float | str]:
    return (interval["low"], interval["high"]) if interval else ("", "")
