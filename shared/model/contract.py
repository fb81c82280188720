"""The feature contract: the one place that says which house fields exist, their types and
plausible ranges, and which fields each model kind needs.

The API's request schemas (`api.schemas`), the workers' enrichment (`shared.model.predictor`) and
training (`shared.tools.training`) all read these definitions, so a field cannot mean one thing at
training time and another when served. Plain Python: the API imports it without the model's
libraries.
"""

import re
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

# Each column in an agent's words, unit included: the agents' page labels its form with these
# (served by api/routes/page.py with the bounds above), so a field is named in one place.
FIELD_LABELS: dict[str, str] = {
    "bedrooms": "Bedrooms",
    "bathrooms": "Bathrooms",
    "sqft_living": "Living area (sq ft)",
    "sqft_lot": "Lot size (sq ft)",
    "floors": "Floors",
    "waterfront": "On the waterfront (1 yes, 0 no)",
    "view": "View (0 none to 4 excellent)",
    "condition": "Condition (1 poor to 5 very good)",
    "grade": "Construction grade (1 to 13)",
    "sqft_above": "Living area above ground (sq ft)",
    "sqft_basement": "Basement living area (sq ft)",
    "yr_built": "Year built",
    "yr_renovated": "Year renovated (0 if never)",
    ZIPCODE: "Zip code",
    "lat": "Latitude",
    "long": "Longitude",
    "sqft_living15": "Living area of the 15 nearest homes (sq ft)",
    "sqft_lot15": "Lot size of the 15 nearest homes (sq ft)",
}

# Columns of the sales file that are not house features. Requests may carry them (a row pasted
# from the sales file) and they are ignored; any other unknown field is rejected as a likely typo.
SALES_ONLY_COLUMNS: tuple[str, ...] = ("id", "date", TARGET)
KNOWN_COLUMNS = frozenset(HOUSE_COLUMNS + SALES_ONLY_COLUMNS)


VARIANTS: tuple[str, ...] = ("full", "minimal")
"""Every bundle answers two kinds of request: `full` (all 18 house columns, `/v1/predict` and
batches) and `minimal` (the 8 fields of `/v1/predict/minimal`). A bundle holds an estimator for
each, so a version is one consistent unit for rollout."""


@dataclass(frozen=True)
class ModelKind:
    """What a kind of model reads: house columns (in training order) and whether the zipcode
    demographics are joined in. `request_fields` is what a `full` request must carry for it;
    `minimal_features` are the house columns of its `minimal` variant (None: the same as full)."""

    name: str
    house_features: tuple[str, ...]
    uses_demographics: bool
    minimal_features: tuple[str, ...] | None = None

    @property
    def request_fields(self) -> tuple[str, ...]:
        return self.variant_request_fields("full")

    def variant_features(self, variant: str) -> tuple[str, ...]:
        """The house columns a variant's estimator reads."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if variant == "minimal" and self.minimal_features is not None:
            return self.minimal_features
        return self.house_features

    def variant_request_fields(self, variant: str) -> tuple[str, ...]:
        features = self.variant_features(variant)
        extra = (ZIPCODE,) if self.uses_demographics and ZIPCODE not in features else ()
        return features + extra


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
# Gradient-boosted trees on log(price): every house column (lat/long included) plus the zipcode
# demographics and the derived features below; its minimal variant reads only what
# `/v1/predict/minimal` takes. The measured gain of each feature group is in docs/model_report.md.
GBM = ModelKind(
    name="gbm",
    house_features=tuple(c for c in HOUSE_COLUMNS if c != ZIPCODE),
    uses_demographics=True,
    minimal_features=BASELINE.house_features,
)
MODEL_KINDS: dict[str, ModelKind] = {BASELINE.name: BASELINE, GBM.name: GBM}

# `/v1/predict/minimal` takes only what the served model needs; every kind's minimal variant
# reads exactly these fields (checked in tests/unit/test_features.py).
MINIMAL_FIELDS: tuple[str, ...] = BASELINE.request_fields


def consistency_errors(house: dict[str, object]) -> list[tuple[str, str]]:
    """Cross-field rules every sale in the client's data obeys; a request breaking them describes
    a house that cannot exist, so it is rejected rather than guessed at."""
    errors: list[tuple[str, str]] = []
    living, above, basement = (
        house.get("sqft_living"),
        house.get("sqft_above"),
        house.get("sqft_basement"),
    )
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


def cents(dollars: float) -> float:
    """The one rounding rule of every price the service answers (single, batch, ranges, factors,
    `realty predict`): Python's correctly rounded `round` to cents, never NumPy's `round`, which
    scales by 100 first and can land a cent away on a few values."""
    return round(float(dollars), 2)


# What an estimate may be asked for besides the house: the month to price it at, and how many
# comparable sales to show (the API's parameters, the batch options and the models read these).
AS_OF_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # YYYY-MM; which months a bundle knows, it says
MAX_COMPS = 10

# The confidence grades, by the upper FSD bound of each but the last (shared/model/confidence.py
# grades by them; the answers' schema and the model report describe them from here).
GRADE_FSD: tuple[tuple[str, float], ...] = (("A", 0.08), ("B", 0.12), ("C", 0.18))
LAST_GRADE = "D"


def grade_rule() -> str:
    """The grades in words: "A (FSD < 8 %), B (< 12 %), C (< 18 %) or D"."""
    bounds = [f"{g} ({'FSD ' if i == 0 else ''}< {b:.0%})" for i, (g, b) in enumerate(GRADE_FSD)]
    return f"{', '.join(bounds)} or {LAST_GRADE}".replace("%", " %")


def as_of_problem(as_of: str, first: str, last: str) -> str | None:
    """Why a model that learned the months `first` to `last` cannot price at `as_of`, or None:
    the one wording of the API's check (from the manifest) and the model's own."""
    if re.fullmatch(AS_OF_PATTERN, as_of) is None:
        return f"as_of {as_of[:20]!r} is not a month (YYYY-MM, {first} to {last})"
    if not first <= as_of <= last:  # YYYY-MM text orders as the months do
        return f"as_of {as_of} is outside the months this model learned from: {first} to {last}"
    return None
