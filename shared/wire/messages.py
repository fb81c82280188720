"""Every message that crosses Redis between the API, the workers and the tools, as a type.

Senders build these models and send their JSON; receivers validate what they read, so a message
of the wrong shape fails at the boundary with a pydantic error naming the field, not deep inside
a model call. Changing a field here changes the wire: upgrade the API and the workers together
(see `shared.wire`). Modelled on MLServer's `parallel/messages.py`.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.model.contract import grade_rule

Variant = Literal["full", "minimal"]
JobState = Literal["queued", "running", "succeeded", "failed"]
HouseValue = int | float | str


class _Message(BaseModel):
    # A field added by a newer sender is an upgrade in progress, not garbage: ignore it.
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- single predictions: API -> worker ---------------------------------------------------------
class PredictRequest(_Message):
    """One house waiting in its version's request list for a micro-batcher."""

    request_id: str
    reply_to: str = Field(description="The API process's reply inbox (a Redis list).")
    house: dict[str, HouseValue] = Field(description="Fields already validated by the API.")
    variant: Variant = "full"
    explain: bool = False
    as_of: str | None = Field(
        None, description="Month to estimate at (YYYY-MM); None: the bundle's latest."
    )
    comps: int = Field(0, description="Comparable sales to add to the answer.")
    key: str = Field("", description="The name of the API key that asked: kept in the record.")
    sent_ms: int = Field(0, description="Redis server time (ms) when the API queued it.")
    pinned: bool = Field(False, description="Only the version it was sent to may answer it.")
    deadline_ms: int = Field(
        description="Redis server time (TIME, in ms) after which it must not be started: its "
        "caller is told 504 soon after. On Redis's clock, so hosts' clocks do not matter."
    )


PREDICT_REQUEST: TypeAdapter[PredictRequest] = TypeAdapter(PredictRequest)


# --- single predictions: worker -> API ---------------------------------------------------------
class PriceRange(_Message):
    low: float = Field(description="Lower end of the range, USD.")
    high: float = Field(description="Upper end of the range, USD.")


class Factor(_Message):
    feature: str = Field(description="What the factor is about (a group of related fields).")
    value: str = Field(description="The house's value of it, in words.")
    effect_usd: float = Field(description="How much it moves this estimate, USD (+ or -).")
    text: str = Field(description='In plain words, e.g. "living area 2,600 sq ft: +$85k".')


class Comp(_Message):
    """A past sale of the model's training data chosen as comparable (shared/model/comps.py):
    near, sold close to the as-of month, of similar size, rooms and grade. Address-free."""

    id: str = Field(description="The sale's id in the sales data.")
    sale_date: str = Field(description="Date of the sale, YYYY-MM-DD.")
    price: float = Field(description="Its sale price, USD.")
    price_as_of: float = Field(
        description="Its sale price moved to the estimate's as_of month by the market index, USD."
    )
    distance_miles: float | None = Field(
        description="Great-circle distance from the house, miles; null when the request has no "
        "coordinates (minimal variant: comps come from the same zipcode)."
    )
    bedrooms: float = Field(description="Its bedrooms.")
    bathrooms: float = Field(description="Its bathrooms.")
    sqft_living: float = Field(description="Its living area, sq ft.")
    grade: float | None = Field(description="Its King County construction grade, 1 to 13.")
    similarity: float = Field(description="0 to 1; 1 = same place, size, rooms, grade and month.")


# An estimate as flat columns, in this order: the record's (EstimateRecord, its CSV export) and
# a batch job's CSV results both write an estimate so.
ESTIMATE_COLUMNS = (
    "prediction",
    "low_80",
    "high_80",
    "low_95",
    "high_95",
    "confidence",
    "fsd",
    "as_of",
    "warnings",
)


class Estimate(_Message):
    """What a model says about one house, in cents (`shared.model.contract.cents`)."""

    prediction: float
    interval_80: PriceRange | None = None
    interval_95: PriceRange | None = None
    factors: list[Factor] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    as_of: str | None = Field(
        None,
        description="The month (YYYY-MM) whose market the estimate is for; null for a model "
        "that knows no sale dates (baseline).",
    )
    confidence: str | None = Field(
        None,
        description=f"Confidence grade {grade_rule()}, read off `fsd`; null for the baseline.",
    )
    fsd: float | None = Field(
        None,
        description="Forecast standard deviation as a fraction of the estimate: the sale lands "
        "within ±fsd of it about 68 % of the time (e.g. 0.08); null for the baseline.",
    )
    comps: list[Comp] = Field(
        default_factory=list,
        description="Comparable past sales, most similar first (only when requested).",
    )


class EstimateReply(Estimate):
    type: Literal["estimate"] = "estimate"
    request_id: str
    model_version: str
    model_kind: str
    batch_size: int = Field(1, description="Requests answered by the same model call.")
    queued_ms: float = Field(0.0, description="Time in the version's queue, ms (Redis's clock).")
    model_ms: float = Field(0.0, description="Time of the model call that answered it, ms.")


class ErrorCode(StrEnum):
    UNKNOWN_ZIPCODE = "unknown_zipcode"  # the house lies outside the version's area (a 422)
    INVALID_AS_OF = "invalid_as_of"  # a month the version cannot estimate at (a 422)
    VERSION_GONE = "version_gone"  # a pinned version stopped serving before it was reached
    INTERNAL = "internal"  # the model failed; the worker logged it under the request id


class ErrorReply(_Message):
    type: Literal["error"] = "error"
    request_id: str
    error: ErrorCode
    detail: str
    zipcodes: list[str] = Field(default_factory=list)


AnyReply = EstimateReply | ErrorReply
REPLY: TypeAdapter[AnyReply] = TypeAdapter(Annotated[AnyReply, Field(discriminator="type")])


class PingReply(_Message):
    """A rollout's proof that a version's queue is consumed by a worker of that version."""

    model_version: str


# --- the record of estimates: worker -> Redis buffer -> PostgreSQL -------------------------------
class EstimateRecord(_Message):
    """One answered estimate as the record keeps it (shared/records). Workers push a model
    call's records, as one JSON array, to the Redis buffer `names.RECORDS` in the same round trip
    as its replies; the recorder writes them to PostgreSQL in batches, off the answer's path."""

    request_id: str = Field(
        description="A single prediction's id; a batch row's is `<job id>-<row>`."
    )
    key: str = Field(description="Name of the API key that asked.")
    at_ms: int = Field(description="When it was answered: Redis server time, ms since 1970.")
    model_version: str
    model_kind: str
    variant: Variant
    job_id: str | None = None
    row: int | None = None
    house: dict[str, HouseValue | None] = Field(description="The inputs, as validated.")
    prediction: float
    low_80: float | None = None
    high_80: float | None = None
    low_95: float | None = None
    high_95: float | None = None
    confidence: str | None = None
    fsd: float | None = None
    as_of: str | None = None
    warnings: list[str] = Field(default_factory=list)


RECORD_BATCH: TypeAdapter[list[EstimateRecord]] = TypeAdapter(list[EstimateRecord])


class RecorderState(_Message):
    """What the recorder writing the buffer to PostgreSQL last saw, published in
    `names.RECORDER_STATE` for the API's readiness ("degraded: recording delayed")."""

    recorder: str = Field(description="Host and process of the recorder that published it.")
    at_ms: int = Field(description="When it was published: Redis server time, ms.")
    written_ms: int | None = Field(None, description="Its last successful write (Redis time).")
    error: str | None = Field(
        None, description="Why its last attempt failed, in words without addresses or secrets."
    )
    backlog_rows: int = Field(0, description="Estimates waiting in the buffer.")
    backlog_age_s: float = Field(0.0, description="Age of the oldest waiting estimate, s.")


# --- batch jobs ----------------------------------------------------------------------------------
class ChunkTask(_Message):
    """The arguments of a batch chunk task (Celery sends them as keyword arguments)."""

    job_id: str
    chunk: int
    as_of: str | None = None
    comps: int = 0


class JobRecord(_Message):
    """A batch job's metadata hash. Redis keeps every field as text; validation reads it back."""

    job_id: str
    model_version: str
    rows_total: int
    chunk_rows: int
    chunks: int
    created_at: float
    progress_at: float
    started_at: float | None = None
    owner: str | None = Field(None, description="The name of the key that submitted it.")
    as_of: str | None = Field(None, description="The month asked for; None: the bundle's latest.")
    comps: int = Field(0, description="Comparable sales asked for per row.")


# A worker writes its chunk's rows in this form and the API passes them to the client unread
# (shared/wire/jobs.py): validating a 100,000-row job's results again cost the API seconds.
class BatchRowResult(_Message):
    """One house of a batch job: its estimate, and the row it was in."""

    row: int = Field(description="0-based index of the row in the submitted batch.")
    prediction: float
    model_version: str
    interval_80: PriceRange | None = None
    interval_95: PriceRange | None = None
    confidence: str | None = None
    fsd: float | None = None
    as_of: str | None = None
    warnings: list[str] = Field(default_factory=list)
    comps: list[Comp] = Field(default_factory=list)


# A chunk's rows by column (a third of the size of one object per row). Its result is one
# `BatchRowResult` per row, in row order (`shared.wire.jobs.encode_result`).
CHUNK_ROWS: TypeAdapter[dict[str, list[HouseValue | None]]] = TypeAdapter(
    dict[str, list[HouseValue | None]]
)
