"""Request and response models of the HTTP API, generated from the feature contract.

The house models are built from `shared.model.contract.HOUSE_FIELDS`, so adding or tightening a
field there changes validation, the OpenAPI document and the workers together.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from shared.model.contract import (
    FIELDS_BY_NAME,
    HOUSE_COLUMNS,
    KNOWN_COLUMNS,
    MINIMAL_FIELDS,
    FieldSpec,
    consistency_errors,
)
from shared.wire.messages import Factor, JobState, PriceRange


def _number_not_text(value: Any) -> Any:
    """JSON numbers only: "3" or true for a count is a client bug worth reporting, not coercing."""
    if isinstance(value, str | bool):
        raise PydanticCustomError(
            "number_type", "must be a number, not {kind}", {"kind": type(value).__name__}
        )
    return value


def _zipcode_text(value: Any) -> Any:
    """Zipcodes are identifiers; accept 98118 as well as "98118" and keep them as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:05d}"
    return value


def _annotation(spec: FieldSpec) -> Any:
    if spec.kind == "zipcode":
        return Annotated[
            str,
            BeforeValidator(_zipcode_text),
            Field(pattern=r"^[0-9]{5}$", description=spec.description, examples=["98118"]),
        ]
    python_type = int if spec.kind == "int" else float
    # The constraints before the validator: pydantic then checks them in its Rust core rather
    # than in a Python wrapper per field (a third of the validation time of a batch row).
    return Annotated[
        python_type,
        Field(ge=spec.ge, le=spec.le, allow_inf_nan=False, description=spec.description),
        BeforeValidator(_number_not_text),
    ]


class _HouseBase(BaseModel):
    """Shared behaviour of the house models: unknown fields are errors, known-but-unused
    columns of the sales file are dropped, and cross-field rules are checked."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_known_unused(cls, data: Any) -> Any:
        if isinstance(data, dict):
            used = cls.model_fields.keys()
            return {k: v for k, v in data.items() if k in used or k not in KNOWN_COLUMNS}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "_HouseBase":
        problems = consistency_errors(self.__dict__)  # the validated fields, no dump needed
        if problems:  # located at the field, like every other error
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("inconsistent_house", message),
                        loc=(field,),
                        input=getattr(self, field),
                    )
                    for field, message in problems
                ],
            )
        return self


def _house_model(name: str, fields: tuple[str, ...], doc: str) -> type[_HouseBase]:
    definitions: dict[str, Any] = {f: (_annotation(FIELDS_BY_NAME[f]), ...) for f in fields}
    return create_model(name, __base__=_HouseBase, __doc__=doc, **definitions)


HouseFull = _house_model(
    "HouseFull",
    HOUSE_COLUMNS,
    "One house with all 18 columns of future_unseen_examples.csv.",
)
HouseMinimal = _house_model(
    "HouseMinimal",
    MINIMAL_FIELDS,
    "Only the fields the served model needs; other known house columns are ignored.",
)
_HOUSE_ROWS = TypeAdapter(list[HouseFull])


def validate_rows(rows: list[Any]) -> list[dict[str, Any]]:
    """Validate batch rows with the same rules as single predictions (raises ValidationError)."""
    return [row.model_dump() for row in _HOUSE_ROWS.validate_python(rows)]


class Prediction(BaseModel):
    prediction: float = Field(description="Estimated sale price in US dollars.")
    currency: Literal["USD"] = "USD"
    model_version: str = Field(description="The bundle that produced this estimate.")
    model_kind: str
    request_id: str = Field(description="Quote this when asking about an estimate.")
    elapsed_ms: float = Field(description="Time from request arrival to answer, in the API.")
    batch_size: int = Field(
        1, description="Requests the worker answered with the same model call (micro-batching)."
    )
    interval_80: PriceRange | None = Field(
        None,
        description="Range that held the sale price of 80 % of held-out homes (None for models "
        "without ranges).",
    )
    interval_95: PriceRange | None = Field(
        None, description="Range that held the sale price of 95 % of held-out homes."
    )
    factors: list[Factor] = Field(
        default_factory=list,
        description="The largest contributions to this estimate, largest first (empty for "
        "models that cannot explain themselves).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Inputs outside what the model saw in training: the estimate is less reliable.",
    )


class BatchAccepted(BaseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    status_url: str
    rows_total: int
    model_version: str


class BatchRowResult(BaseModel):
    row: int = Field(description="0-based index of the row in the submitted batch.")
    prediction: float
    model_version: str


class BatchStatus(BaseModel):
    job_id: str
    status: JobState
    model_version: str
    rows_total: int
    rows_done: int
    created_at: str
    expires_in_s: int = Field(description="Seconds until the job and its results are deleted.")
    error: str | None = None
    results: list[BatchRowResult] | None = None


class ModelInfo(BaseModel):
    version: str
    kind: str
    created_at: str
    active: bool
    workers: int = Field(description="Worker processes serving this version now.")
    request_fields: list[str]
    zipcodes: list[str] = Field(description="The area this version serves.")
    metrics: dict[str, Any]


class Activation(BaseModel):
    active: str
    previous: str | None = Field(description="The version that was active before.")
