"""Request validation in api/schemas.py: HouseFull, HouseMinimal and validate_rows."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel, ValidationError

from api.schemas import HouseFull, HouseMinimal, validate_rows
from shared.model.contract import MINIMAL_FIELDS

BOTH_MODELS = pytest.mark.parametrize("model", [HouseFull, HouseMinimal], ids=lambda m: m.__name__)


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[str, tuple]]:
    """(type, loc) of every validation error, or fail if the data is accepted."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(e["type"], e["loc"]) for e in caught.value.errors()]


def test_every_future_unseen_example_validates_unchanged(
    future_rows: list[dict[str, Any]],
) -> None:
    assert len(future_rows) == 100
    assert validate_rows(future_rows) == future_rows


def test_every_sale_the_model_learned_from_validates(data_dir: Path) -> None:
    """Bounds reject impossible houses, never ones like the training data."""
    sales = pd.read_csv(
        data_dir / "kc_house_data.csv", dtype={"zipcode": str, "id": str, "date": str}
    )
    rows = json.loads(sales.to_json(orient="records"))
    assert len(validate_rows(rows)) == len(rows) == 21613


@BOTH_MODELS
def test_missing_field_is_rejected_naming_it(model: type[BaseModel], house: dict) -> None:
    del house["sqft_lot"]
    assert errors_of(model, house) == [("missing", ("sqft_lot",))]


def test_missing_column_the_minimal_model_does_not_use_is_not_required(house: dict) -> None:
    del house["grade"]
    assert errors_of(HouseFull, house) == [("missing", ("grade",))]
    assert HouseMinimal.model_validate(house)


@BOTH_MODELS
def test_string_for_number_is_rejected_not_coerced(model: type[BaseModel], house: dict) -> None:
    assert errors_of(model, {**house, "bedrooms": "3"}) == [("number_type", ("bedrooms",))]


def test_bool_for_number_is_rejected_not_read_as_0_or_1(house: dict) -> None:
    assert errors_of(HouseFull, {**house, "waterfront": True}) == [("number_type", ("waterfront",))]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", ["bedrooms", "bathrooms", "sqft_lot", "lat"])
def test_non_finite_number_is_rejected(house: dict, field: str, value: float) -> None:
    assert [loc for _, loc in errors_of(HouseFull, {**house, field: value})] == [(field,)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("sqft_lot", -5043), ("sqft_living15", -1), ("bathrooms", -1.0), ("sqft_lot", 10**9)],
)
def test_negative_or_absurd_size_is_rejected(house: dict, field: str, value: float) -> None:
    (error_type, loc), *others = errors_of(HouseFull, {**house, field: value})
    assert not others
    assert loc == (field,)
    assert error_type in {"greater_than_equal", "less_than_equal"}


def test_fractional_bedrooms_are_rejected(house: dict) -> None:
    assert errors_of(HouseFull, {**house, "bedrooms": 2.5}) == [("int_from_float", ("bedrooms",))]


def test_whole_number_written_as_float_is_accepted_for_a_count(house: dict) -> None:
    assert HouseFull.model_validate({**house, "bedrooms": 3.0}).bedrooms == 3


@BOTH_MODELS
def test_integer_zipcode_is_normalised_to_five_digit_text(
    model: type[BaseModel], house: dict
) -> None:
    assert model.model_validate({**house, "zipcode": 98118}).zipcode == "98118"
    assert model.model_validate({**house, "zipcode": 2134}).zipcode == "02134"


@pytest.mark.parametrize(
    "zipcode", ["9811", "981180", "98118-1234", "abcde", " 98118", "98118\n", 123456, -1]
)
def test_zipcode_that_is_not_five_digits_is_rejected(house: dict, zipcode: object) -> None:
    assert errors_of(HouseFull, {**house, "zipcode": zipcode}) == [
        ("string_pattern_mismatch", ("zipcode",))
    ]


def test_zipcode_of_non_ascii_digits_is_rejected(house: dict) -> None:
    """Fullwidth "98118" (U+FF19 U+FF18 U+FF11 U+FF11 U+FF18)."""
    assert errors_of(HouseFull, {**house, "zipcode": "\uff19\uff18\uff11\uff11\uff18"}) == [
        ("string_pattern_mismatch", ("zipcode",))
    ]


@pytest.mark.parametrize("zipcode", [True, 98118.0])
def test_zipcode_that_is_a_bool_or_float_is_rejected(house: dict, zipcode: object) -> None:
    assert errors_of(HouseFull, {**house, "zipcode": zipcode}) == [("string_type", ("zipcode",))]


@BOTH_MODELS
def test_unknown_field_is_rejected_naming_it(model: type[BaseModel], house: dict) -> None:
    assert errors_of(model, {**house, "bedroom": 3}) == [("extra_forbidden", ("bedroom",))]


@BOTH_MODELS
def test_sales_only_columns_price_id_and_date_are_ignored(
    model: type[BaseModel], house: dict
) -> None:
    dumped = model.model_validate(
        {**house, "price": 221900, "id": "7129300520", "date": "20141013T000000"}
    ).model_dump()
    assert not {"price", "id", "date"} & dumped.keys()


def test_minimal_model_ignores_the_house_columns_it_does_not_use_even_if_invalid(
    house: dict,
) -> None:
    dumped = HouseMinimal.model_validate({**house, "grade": "junk", "lat": None}).model_dump()
    assert tuple(dumped) == MINIMAL_FIELDS


@BOTH_MODELS
def test_above_plus_basement_not_equal_to_living_is_rejected_at_sqft_living(
    model: type[BaseModel], house: dict
) -> None:
    assert errors_of(model, {**house, "sqft_above": 1000}) == [
        ("inconsistent_house", ("sqft_living",))
    ]


def test_renovation_before_construction_is_rejected_at_yr_renovated(house: dict) -> None:
    assert errors_of(HouseFull, {**house, "yr_built": 1990, "yr_renovated": 1980}) == [
        ("inconsistent_house", ("yr_renovated",))
    ]


def test_validate_rows_returns_one_plain_dict_per_row(house: dict) -> None:
    rows = validate_rows([house, {**house, "zipcode": 98115}])
    assert [row["zipcode"] for row in rows] == ["98118", "98115"]
    assert all(type(row) is dict for row in rows)


def test_validate_rows_names_the_index_and_field_of_each_bad_row(house: dict) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rows([house, {**house, "bedrooms": "3"}, house, {**house, "sqft_above": 1000}])
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("number_type", (1, "bedrooms")),
        ("inconsistent_house", (3, "sqft_living")),
    ]
