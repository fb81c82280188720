"""Every message that crosses Redis between the API, the workers and the tools, as a type.

Senders build these models and send their JSON; receivers validate what they read, so a message
of the wrong shape fails at the boundary with a pydantic error naming the field, not deep inside
a model call. Changing a field here changes the wire: upgrade the API and the workers together
(see `shared.wire`). Modelled on MLServer's `parallel/messages.py`.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


class Estimate(_Message):
    """What a model says about one house, in cents (`shared.model.contract.cents`)."""

    prediction: float
    interval_80: PriceRange | None = None
    interval_95: PriceRange | None = None
    factors: list[Factor] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class EstimateReply(Estimate):
    type: Literal["estimate"] = "estimate"
    request_id: str
    model_version: str
    model_kind: str
    batch_size: int = Field(1, description="Requests answered by the same model call.")


class ErrorCode(StrEnum):
    UNKNOWN_ZIPCODE = "unknown_zipcode"  # the house lies outside the version's area (a 422)
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


# --- batch jobs ----------------------------------------------------------------------------------
class ChunkTask(_Message):
    """The arguments of a batch chunk task (Celery sends them as keyword arguments)."""

    job_id: str
    chunk: int


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


# A chunk's rows by column (a third of the size of one object per row); its result: the
# prices in row order.
CHUNK_ROWS: TypeAdapter[dict[str, list[HouseValue | None]]] = TypeAdapter(
    dict[str, list[HouseValue | None]]
)
CHUNK_RESULT: TypeAdapter[list[float]] = TypeAdapter(list[float])
