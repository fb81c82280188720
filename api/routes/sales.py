"""Sale prices fed back: `POST /v1/sales` records what homes actually sold for, against the
estimates made of them, for the live accuracy figures (shared/monitoring/live.py). The rules a
sale is checked by are shared/monitoring/sales.py's, the same as `realty sales import`'s."""

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api.auth import BatchCaller
from api.batch_body import media_type
from api.deps import DatabaseDep, SettingsDep
from api.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    RecordConflictError,
    ServiceUnavailableError,
)
from api.schemas import HouseFull, error_responses, json_or_csv_body
from shared.model.contract import MINIMAL_FIELDS
from shared.monitoring.sales import (
    PRICE_RANGE,
    SalesRefused,
    check_rows,
    csv_rows,
    record_sales,
)
from shared.records.database import failure_words

router = APIRouter(prefix="/v1", tags=["sales"])

# A sale row is request_id, price and date (about 70 bytes), or a house of up to 18 fields
# (about 400): the body's bound follows the row bound with room to spare.
ROW_BYTES = 1024
_SHAPE = 'expected a JSON object {"sales": [ {sale}, ... ]}'

_PRICE_AND_DAY = {
    "price": {
        "type": "number",
        "minimum": PRICE_RANGE[0],
        "maximum": PRICE_RANGE[1],
        "description": "The price the home sold for, USD.",
    },
    "date": {
        "type": "string",
        "format": "date",
        "description": "The day it sold (YYYY-MM-DD): not after today, nor before the month "
        "the estimate priced the home at.",
    },
}
_HOUSE = HouseFull.model_json_schema()["properties"]
_BY_ID = {
    "type": "object",
    "title": "A sale by the estimate's request id",
    "properties": {
        "request_id": {
            "type": "string",
            "minLength": 1,
            "description": "The estimate's request id (a batch row's: `<job id>-<row>`).",
        },
        **_PRICE_AND_DAY,
    },
    "required": ["request_id", "price", "date"],
    "additionalProperties": False,
}
_BY_HOUSE = {
    "type": "object",
    "title": "A sale by the house",
    "description": f"At least {', '.join(MINIMAL_FIELDS)}; each field given must equal the "
    "estimate's, and the latest such estimate is the one scored.",
    "properties": {**_PRICE_AND_DAY, **_HOUSE},
    "required": ["price", "date", *MINIMAL_FIELDS],
    "additionalProperties": False,
}
_EXAMPLE_ID = "f6f241bf0c5e4bd1a3b0e4a7c1d2e3f4"
_BODY_DOC = json_or_csv_body(
    "sales",
    {"oneOf": [_BY_ID, _BY_HOUSE]},
    {"sales": [{"request_id": _EXAMPLE_ID, "price": 500000, "date": "2015-05-01"}]},
    "request_id,price,date\n4772a036-0,500000,2015-05-01\n",
    "sale",
)


class SalesRecorded(BaseModel):
    recorded: int = Field(description="Sales recorded, every one of the body.")
    matched_by_house: int = Field(description="Of which linked to an estimate by the house.")


@router.post(
    "/sales",
    status_code=201,
    response_model=SalesRecorded,
    openapi_extra=_BODY_DOC,
    responses=error_responses(
        {
            401: "No API key, or a wrong or revoked one.",
            403: "A key without the batch role.",
            409: "Every row is valid on its own but the record contradicts some: no such "
            "estimate, a second sale of one, or a sale before the month it priced; each such "
            "row named, and nothing recorded.",
            413: "More sales than sales_max_rows, or too large a body.",
            415: "A body that is neither application/json nor text/csv.",
            503: "The record (PostgreSQL) is unreachable; nothing was recorded, retry after "
            "Retry-After.",
        }
    ),
)
async def report_sales(
    request: Request, caller: BatchCaller, database: DatabaseDep, settings: SettingsDep
) -> SalesRecorded:
    """Record the prices homes sold for, each linked to the estimate made of the home: by its
    `request_id`, or by the house's fields (at least the eight of `/v1/predict/minimal`, each
    equal to the estimate's; the latest such estimate). All or nothing: every refused row is
    named (numbered from 0; CSV line = row + 2) with why, and then nothing is recorded. 422: a
    row wrong on its own (a price outside $10,000 to $100,000,000, a date that is not a real
    YYYY-MM-DD day or is in the future, neither an id nor the house). 409: rows valid on their
    own that the record contradicts (no such estimate, a second sale of one, in the body or on
    record, a sale dated before the month the estimate priced the home at)."""
    media = media_type(request.headers.get("content-type"))
    text = await _body_text(request, settings.sales_max_rows * ROW_BYTES)
    rows = await run_in_threadpool(_rows, text, media, settings.sales_max_rows)
    checked = await run_in_threadpool(check_rows, rows)
    try:
        async with (
            asyncio.timeout(settings.database_timeout_s * 2),
            database.begin() as connection,
        ):
            recorded = await connection.run_sync(
                record_sales, checked, key_name=caller.name, source="api"
            )
    except SalesRefused as refused:
        raise _refusals(refused) from None
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else failure_words(exc)
        raise ServiceUnavailableError(
            f"the record of sales is unavailable ({reason}): nothing was recorded, retry shortly"
        ) from exc
    return SalesRecorded(recorded=recorded.sales, matched_by_house=recorded.by_house)


async def _body_text(request: Request, limit: int) -> str:
    """The body as text, refused once it passes `limit` bytes (as it arrives, not after)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_large(limit)
    try:
        return received.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError.at(("body",), "the body is not UTF-8 text") from None


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the body is over {limit:,} bytes: send the sales in parts")


def _rows(text: str, media: str, max_rows: int) -> list[Any]:
    """The body's sale rows, as given (their checks come after)."""
    if media == "text/csv":
        try:
            rows = list(csv_rows(text))
        except ValueError as exc:
            raise InvalidInputError.at(("body",), str(exc)) from None
    else:
        rows = _json_rows(text)
    if not rows:
        raise InvalidInputError.at(("body", "sales"), "no sales in the body")
    if len(rows) > max_rows:
        raise PayloadTooLargeError(f"{len(rows):,} sales; send at most {max_rows:,} at once")
    return rows


def _json_rows(text: str) -> list[Any]:
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError.at(
            ("body",), f"the body is not JSON: {exc}", "json_invalid"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("sales"), list):
        raise InvalidInputError.at(("body",), _SHAPE)
    if unknown := sorted(set(body) - {"sales"}):
        raise InvalidInputError.at(("body",), f'unknown field(s) {unknown}: the body holds "sales"')
    return body["sales"]


def _refusals(refused: SalesRefused) -> InvalidInputError | RecordConflictError:
    """Every refused row, located as FastAPI locates a field (`body`, `sales`, row, field): a
    422, or a 409 when every row was valid on its own and only the record contradicts them."""
    kind = RecordConflictError if refused.conflicts_only else InvalidInputError
    return kind(
        [
            {
                "type": "sale_refused",
                "loc": ("body", "sales", r.row, *((r.field,) if r.field else ())),
                "msg": str(r),
            }
            for r in refused.refusals
        ]
    )
