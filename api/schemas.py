"""Request and response models of the HTTP API, generated from the feature contract.

The house models are built from `shared.model.contract.HOUSE_FIELDS`, so adding or tightening a
field there changes validation, the OpenAPI document and the workers together.
"""

from datetime import datetime
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
from shared.wire.messages import BatchRowResult, Comp, Factor, JobState, PriceRange

# A house of more fields than this, so of over 100 unknown ones where a real client sends a typo
# or two, is refused in one error before pydantic walks them (7 µs each: 2 s for 300,000). Fewer
# unknown fields get one error each, of which an answer shows the first 20.
MAX_HOUSE_FIELDS = len(KNOWN_COLUMNS) + 100

# The rules of `shared.model.contract.consistency_errors`, which JSON Schema cannot state, as the
# OpenAPI document states them (each model lists those whose fields it has). The unit tests check
# each against that function, so the two cannot drift apart.
CROSS_FIELD_RULES: tuple[dict[str, Any], ...] = (
    {
        "rule": "sqft_above + sqft_basement == sqft_living",
        "fields": ["sqft_above", "sqft_basement", "sqft_living"],
        "description": "the living space is the space above ground plus the basement",
    },
    {
        "rule": "yr_renovated == 0 or yr_renovated >= yr_built",
        "fields": ["yr_built", "yr_renovated"],
        "description": "a renovation is not before the year built; 0 means never renovated",
    },
)

# A real house (the first of future_unseen_examples.csv), the example of every house model.
EXAMPLE_HOUSE: dict[str, Any] = {
    "bedrooms": 4,
    "bathrooms": 1.0,
    "sqft_living": 1680,
    "sqft_lot": 5043,
    "floors": 1.5,
    "waterfront": 0,
    "view": 0,
    "condition": 4,
    "grade": 6,
    "sqft_above": 1680,
    "sqft_basement": 0,
    "yr_built": 1911,
    "yr_renovated": 0,
    "zipcode": "98118",
    "lat": 47.5354,
    "long": -122.273,
    "sqft_living15": 1560,
    "sqft_lot15": 5765,
}


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
        pattern = r"^[0-9]{5}$"
        # The schema states what is accepted: text, or a number that is five digits once padded.
        accepted = Annotated[str, Field(pattern=pattern)] | Annotated[int, Field(ge=0, le=99_999)]
        return Annotated[
            str,
            BeforeValidator(_zipcode_text, json_schema_input_type=accepted),
            Field(pattern=pattern, description=spec.description, examples=["98118"]),
        ]
    python_type = int if spec.kind == "int" else float
    # The constraints before the validator: pydantic then checks them in its Rust core rather
    # than in a Python wrapper per field (a third of the validation time of a batch row).
    return Annotated[
        python_type,
        Field(ge=spec.ge, le=spec.le, description=spec.description),
        BeforeValidator(_number_not_text),
    ]


def _house_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """What a house model's schema says beyond its fields: its cross-field rules (as text and as
    `x-cross-field-rules`) and a real house as its example."""
    fields = model.model_fields.keys()
    rules = [r for r in CROSS_FIELD_RULES if fields >= set(r["fields"])]
    if rules:
        schema["description"] = (
            f"{schema.get('description', '')}\n\nCross-field rules (422 when broken): "
            + "; ".join(f"{r['rule']}: {r['description']}" for r in rules)
        ).strip()
        schema["x-cross-field-rules"] = rules
    schema["examples"] = [{f: EXAMPLE_HOUSE[f] for f in fields}]


class _HouseBase(BaseModel):
    """Shared behaviour of the house models: unknown fields are errors, known-but-unused
    columns of the sales file are dropped, and cross-field rules are checked."""

    # Infinity and NaN refused by the model's config, which pydantic checks in its Rust core;
    # as a field constraint it ran a Python check per field (6 % of a batch's API time).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=_house_schema)

    @model_validator(mode="before")
    @classmethod
    def _drop_known_unused(cls, data: Any) -> Any:
        if isinstance(data, dict):
            used = cls.model_fields.keys()
            if len(data) > MAX_HOUSE_FIELDS:  # one comparison on the hot path
                raise _unknown_flood(data)
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


def _unknown_flood(data: dict[str, Any]) -> ValidationError:
    """One error for a house of too many fields; its input is the first few unknown ones, not
    the whole body (which an error would echo)."""
    unknown = [k for k in data if k not in KNOWN_COLUMNS]
    error = PydanticCustomError(
        "too_many_unknown_fields",
        "{count} fields are not columns of the house data; send only the house's columns",
        {"count": f"{len(unknown):,}"},
    )
    return ValidationError.from_exception_data(
        "house", [InitErrorDetails(type=error, loc=(), input=unknown[:3])]
    )


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
    return _HOUSE_ROWS.dump_python(_HOUSE_ROWS.validate_python(rows))


class FieldError(BaseModel):
    """One problem of a request, where it is (FastAPI's format: `["body", "zipcode"]`)."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error answer: what went wrong (text, or field errors: at most 20, then a note of how
    many more), and the id to quote about it, also in the X-Request-ID header."""

    detail: str | list[FieldError]
    request_id: str


def json_or_csv_body(
    key: str, items: dict[str, Any], json_example: Any, csv_example: str, what: str
) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes `{key: [items]}` as JSON or the same
    items as CSV (batch jobs, sales): a CSV is described as the rows it carries, a header line
    of the column names, then one `what` a line."""
    rows = {"type": "array", "minItems": 1, "items": items}
    csv_rows = rows | {"description": f"A header line of the column names, then one {what} a line."}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [key],
                        "properties": {key: rows},
                        "additionalProperties": False,
                    },
                    "example": json_example,
                },
                "text/csv": {
                    "schema": csv_rows,
                    "example": csv_example,
                },
            },
        }
    }


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's error answers for the OpenAPI document, all in the `ErrorBody` shape (422, the
    invalid input every route with parameters can get, included)."""
    invalid = {422: "Invalid input: each problem named at its field."}
    return {
        status: {"model": ErrorBody, "description": text}
        for status, text in sorted((invalid | descriptions).items())
    }


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
    as_of: str | None = Field(
        None,
        description="The month whose market the price is for (YYYY-MM); None for models that "
        "do not know the sale date.",
    )
    confidence: str | None = Field(
        None,
        description="Confidence grade, A (most certain) to D, from the forecast standard "
        "deviation `fsd` (docs/model_report.md says what each grade measured).",
    )
    fsd: float | None = Field(
        None,
        description="Forecast standard deviation: the estimate's expected error as a share of "
        "the price (0.08 = 8 %); the ranges are as wide as it says.",
    )
    comps: list[Comp] = Field(
        default_factory=list,
        description="Comparable past sales (with ?comps=N), most similar first, prices also "
        "moved to `as_of`.",
    )


class BatchAccepted(BaseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    status_url: str
    rows_total: int
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
    as_of: str | None = Field(None, description="The month asked for at submission, if any.")
    comps: int = Field(0, description="Comparable sales asked for per row.")
    # Declared for the OpenAPI document; the answer splices the workers' rows in instead
    # (api/routes/batch.py, `status_json`, which relies on this being the last field).
    results: list[BatchRowResult] | None = None


class ModelInfo(BaseModel):
    version: str
    kind: str
    created_at: str
    active: bool
    workers: int = Field(description="Worker processes serving this version now.")
    request_fields: list[str]
    zipcodes: list[str] = Field(description="The area this version serves.")
    as_of_months: list[str] = Field(
        default_factory=list,
        description="First and last month (YYYY-MM) the version can price a home at (`as_of`); "
        "empty for models that do not know the sale date.",
    )
    metrics: dict[str, Any]


class Activation(BaseModel):
    active: str
    previous: str | None = Field(description="The version that was active before.")


class RecordedEstimate(BaseModel):
    """A past estimate as the record keeps it (`GET /v1/estimates/{request_id}`)."""

    request_id: str = Field(
        description="The id the estimate was answered with; a batch row's is `<job id>-<row>`."
    )
    key_name: str = Field(description="Name of the API key that asked for it.")
    created_at: datetime = Field(description="When it was answered (UTC).")
    model_version: str = Field(description="The bundle that produced it.")
    model_kind: str
    variant: Literal["full", "minimal"] = Field(
        description="`minimal`: from POST /v1/predict/minimal's model, on eight fields."
    )
    job_id: str | None = Field(None, description="The batch job it was a row of, if any.")
    row: int | None = Field(None, description="Its 0-based row in that batch job.")
    house: dict[str, Any] = Field(description="The house as sent, after validation.")
    prediction: float = Field(description="Estimated sale price in US dollars.")
    interval_80: PriceRange | None = None
    interval_95: PriceRange | None = None
    confidence: str | None = None
    fsd: float | None = None
    as_of: str | None = Field(None, description="The month whose market it priced for.")
    warnings: list[str] = Field(default_factory=list)
