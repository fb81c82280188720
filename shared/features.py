"""The feature contract: the one place that says which house fields exist, their types and
plausible ranges, and which fields each model kind needs.

The API's request schemas (`shared.schemas`), the workers' enrichment (`shared.predictor`) and
training (`shared.training`) all read these definitions, so a field cannot mean one thing at
training time and another when served.
"""

from dataclasses import dataclass
from datetime import date
from typing import Literal

ZIPCODE = "zipcode"
TARGET = "price"

_THIS_YEAR = date.today().year


@dataclass(frozen=True)
class FieldSpec:
    """One house column. Bounds reject impossible or absurd values, not merely unusual ones:
    they are wider than the training data (see `realty models` for what the model saw)."""

    name: str
    kind: Literal["int", "float", "zipcode"]
    description: str
    ge: float | None = None
    le: float | None = None


HOUSE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("bedrooms", "int", "Number of bedrooms.", 0, 50),
    FieldSpec("bathrooms", "float", "Number of bathrooms (0.25 steps; 0.5 = toilet only).", 0, 20),
    FieldSpec("sqft_living", "int", "Interior living space, sq ft.", 100, 60_000),
    FieldSpec("sqft_lot", "int", "Land, sq ft.", 100, 5_000_000),
    FieldSpec("floors", "float", "Number of floors (half floors allowed).", 1, 5),
    FieldSpec("waterfront", "int", "1 if the house is on the waterfront, else 0.", 0, 1),
    FieldSpec("view", "int", "Quality of the view, 0 (none) to 4 (excellent).", 0, 4),
    FieldSpec("condition", "int", "Condition, 1 (poor) to 5 (very good).", 1, 5),
    FieldSpec("grade", "int", "King County construction grade, 1 to 13.", 1, 13),
    FieldSpec("sqft_above", "int", "Living space above ground, sq ft.", 100, 60_000),
    FieldSpec("sqft_basement", "int", "Living space below ground, sq ft.", 0, 30_000),
    FieldSpec("yr_built", "int", "Year built.", 1800, _THIS_YEAR + 1),
    FieldSpec("yr_renovated", "int", "Year of last renovation, 0 if never.", 0, _THIS_YEAR + 1),
    FieldSpec(ZIPCODE, "zipcode", "Five-digit US zipcode; must be one the model serves."),
    FieldSpec("lat", "float", "Latitude.", 46.5, 48.5),
    FieldSpec("long", "float", "Longitude.", -123.5, -120.5),
    FieldSpec(
        "sqft_living15", "int", "Living space of the 15 nearest neighbours, sq ft.", 100, 60_000
    ),
    FieldSpec("sqft_lot15", "int", "Lot of the 15 nearest neighbours, sq ft.", 100, 5_000_000),
)
FIELDS_BY_NAME = {f.name: f for f in HOUSE_FIELDS}
HOUSE_COLUMNS: tuple[str, ...] = tuple(f.name for f in HOUSE_FIELDS)

# Columns of the sales file that are not house features. Requests may carry them (a row pasted
# from the sales file) and they are ignored; any other unknown field is rejected as a likely typo.
SALES_ONLY_COLUMNS: tuple[str, ...] = ("id", "date", TARGET)
KNOWN_COLUMNS = frozenset(HOUSE_COLUMNS + SALES_ONLY_COLUMNS)


@dataclass(frozen=True)
class ModelKind:
    """What a kind of model reads: house columns (in training order) and whether the zipcode
    demographics are joined in. `request_fields` is what a request must carry for it."""

    name: str
    house_features: tuple[str, ...]
    uses_demographics: bool

    @property
    def request_fields(self) -> tuple[str, ...]:
        extra = (ZIPCODE,) if self.uses_demographics and ZIPCODE not in self.house_features else ()
        return self.house_features + extra


BASELINE = ModelKind(
    name="baseline",
    house_features=(
        "bedrooms",
        "bathrooms",
        "sqft_living",
        "sqft_lot",
        "floors",
        "sqft_above",
        "sqft_basement",
    ),
    uses_demographics=True,
)
MODEL_KINDS: dict[str, ModelKind] = {BASELINE.name: BASELINE}

# `/v1/predict/minimal` takes only what the served model needs.
MINIMAL_FIELDS: tuple[str, ...] = BASELINE.request_fields


def consistency_errors(house: dict[str, object]) -> list[tuple[str, str]]:
    """Cross-field rules every sale in the client's data obeys; a request breaking them describes
    a house that cannot exist, so it is rejected rather than guessed at."""
    errors: list[tuple[str, str]] = []
    living, above, basement = (house.get(k) for k in ("sqft_living", "sqft_above", "sqft_basement"))
    if None not in (living, above, basement) and above + basement != living:  # type: ignore[operator]
        errors.append(
            (
                "sqft_living",
                f"sqft_above ({above}) + sqft_basement ({basement}) must equal "
                f"sqft_living ({living})",
            )
        )
    built, renovated = house.get("yr_built"), house.get("yr_renovated")
    if built is not None and renovated and renovated < built:  # type: ignore[operator]
        errors.append(("yr_renovated", f"yr_renovated ({renovated}) is before yr_built ({built})"))
    return errors
