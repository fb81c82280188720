"""Past estimates, from the record (PostgreSQL, shared/records): what the service told whom."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.exc import SQLAlchemyError

from api.auth import AgentCaller
from api.deps import DatabaseDep, SettingsDep
from api.errors import NotFoundError, ServiceUnavailableError
from api.schemas import RecordedEstimate, error_responses
from shared.records.database import failure_words
from shared.records.queries import estimate_by_id
from shared.wire.api_keys import Role
from shared.wire.messages import PriceRange

router = APIRouter(prefix="/v1", tags=["estimates"])

# A request id as the API gives them (32 hex digits; a batch row's `<job id>-<row>`) or as a
# client may choose one (X-Request-ID): a plain token.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


@router.get(
    "/estimates/{request_id}",
    response_model=RecordedEstimate,
    responses=error_responses(
        {
            401: "No API key, or a wrong or revoked one.",
            404: "No estimate of this id on record for this key (another key's is not shown; "
            "a recent one may take a second to be recorded, or longer while recording is "
            "delayed, see /health/ready).",
            503: "The record (PostgreSQL) is unreachable; retry after Retry-After.",
        }
    ),
)
async def recorded_estimate(
    request_id: Annotated[
        str, Path(pattern=REQUEST_ID_PATTERN, examples=["f6f241bf0c5e4bd1a3b0e4a7c1d2e3f4"])
    ],
    caller: AgentCaller,
    database: DatabaseDep,
    settings: SettingsDep,
) -> RecordedEstimate:
    """A past estimate by the request id it was answered with: to the key that asked for it,
    or to an admin key."""
    try:
        async with asyncio.timeout(settings.database_timeout_s), database.connect() as connection:
            row = (await connection.execute(estimate_by_id(request_id))).mappings().first()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise ServiceUnavailableError(
            f"the record of estimates is unavailable ({_reason(exc)}); retry shortly"
        ) from exc
    if row is None or (row["key_name"] != caller.name and caller.role < Role.ADMIN):
        raise NotFoundError(f"no estimate {request_id!r} on record for key {caller.name!r}")
    return _recorded(row)


def _reason(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else failure_words(exc)


def _range(low: float | None, high: float | None) -> PriceRange | None:
    return None if low is None or high is None else PriceRange(low=low, high=high)


def _recorded(row: Any) -> RecordedEstimate:
    return RecordedEstimate(
        **{name: row[name] for name in RecordedEstimate.model_fields if name in row},
        interval_80=_range(row["low_80"], row["high_80"]),
        interval_95=_range(row["low_95"], row["high_95"]),
    )
