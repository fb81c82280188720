"""The agents' page: `/` and its few static files, plus `GET /v1/form`, what the page's form is
built from.

The page is plain HTML, CSS and JavaScript in `api/static/`, read once at import and served from
memory: no build step, nothing fetched from the internet, and no work added to the prediction
routes (the page calls `/v1/predict` like any other client).

The form's fields, labels, bounds and defaults are not written in the page: `GET /v1/form`
serves them from the feature contract (`shared.model.contract`: the fields, their bounds and
`FIELD_LABELS`) and the API's example house (`api.schemas.EXAMPLE_HOUSE`), the same definitions
the API validates with, so the form cannot drift from the rules. The zipcodes come from
`GET /v1/models`, the list the served version was trained on.
"""

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import AgentCaller
from api.errors import NotFoundError
from api.schemas import CROSS_FIELD_RULES, EXAMPLE_HOUSE, error_responses
from shared.model.contract import FIELD_LABELS, HOUSE_FIELDS, MAX_COMPS, MINIMAL_FIELDS
from shared.wire.api_keys import Role

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Everything the page loads is its own: no inline script, no other origin (a key typed into
# the page can only be sent back here), and no framing by another site.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new version of the page is picked up at once; the files are a few kB.
    "Cache-Control": "no-cache",
}


def _load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files by name, read once: a request can name only one of these."""
    return {
        path.name: (path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(STATIC_DIR.iterdir())
        if path.suffix in MEDIA_TYPES
    }


STATIC_FILES = _load_static()

router = APIRouter(tags=["agents' page"])


def _file(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFoundError(f"the page has no file {name!r}")
    body, media_type = STATIC_FILES[name]
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
async def page() -> Response:
    """The agents' page; it asks for a key itself, so serving it needs none."""
    return _file("index.html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    return _file(name)


class FormField(BaseModel):
    """One input of the page's form, as the feature contract defines the column."""

    name: str = Field(description="The column name, as the API takes it.")
    label: str = Field(description="The field in an agent's words, unit included.")
    hint: str = Field(description="What the field means (the contract's description).")
    kind: Literal["int", "float", "zipcode"]
    min: float | None = Field(description="Lowest value the API accepts (None: no bound).")
    max: float | None = Field(description="Highest value the API accepts (None: no bound).")
    step: Literal["1", "any"] = Field(description="Whole numbers only (1), or any number.")
    default: int | float | str = Field(description="The value of a typical home.")
    minimal: bool = Field(description="Whether /v1/predict/minimal takes it.")


class CallerInfo(BaseModel):
    name: str
    role: Literal["agent", "batch", "admin"]
    can_upload: bool = Field(description="Whether this key may submit batch jobs (POST /v1/batch).")


class FormSpec(BaseModel):
    """What a client form needs to ask for a house the way the API will accept it."""

    caller: CallerInfo = Field(description="Who the presented key belongs to, and what it may do.")
    fields: list[FormField]
    cross_field_rules: list[dict[str, Any]] = Field(
        description="Rules across fields (422 when broken), as in the house schemas."
    )
    max_comps: int = Field(description="The most comparable sales one estimate may ask for.")


FIELDS: list[FormField] = [
    FormField(
        name=spec.name,
        label=FIELD_LABELS[spec.name],
        hint=spec.description,
        kind=spec.kind,
        min=spec.ge,
        max=spec.le,
        step="1" if spec.kind == "int" else "any",
        default=EXAMPLE_HOUSE[spec.name],
        minimal=spec.name in MINIMAL_FIELDS,
    )
    for spec in HOUSE_FIELDS
]


@router.get(
    "/v1/form",
    response_model=FormSpec,
    responses=error_responses({401: "No API key, or a wrong or revoked one."}),
)
async def form(caller: AgentCaller) -> FormSpec:
    """The house form of the agents' page, from the feature contract: each field's label, bounds
    and typical value, which fields the minimal estimate takes, and what the key may do."""
    return FormSpec(
        caller=CallerInfo(
            name=caller.name, role=caller.role.label, can_upload=caller.role >= Role.BATCH
        ),
        fields=FIELDS,
        cross_field_rules=list(CROSS_FIELD_RULES),
        max_comps=MAX_COMPS,
    )
