"""The feature contract in shared/model/contract.py."""

from pathlib import Path

from shared.model.contract import (
    BASELINE,
    FIELDS_BY_NAME,
    HOUSE_COLUMNS,
    HOUSE_FIELDS,
    KNOWN_COLUMNS,
    MINIMAL_FIELDS,
    MODEL_KINDS,
    SALES_ONLY_COLUMNS,
    ModelKind,
    consistency_errors,
)


def test_house_columns_are_the_18_columns_of_future_unseen_examples_in_file_order(
    data_dir: Path,
) -> None:
    header = (data_dir / "future_unseen_examples.csv").read_text().splitlines()[0].split(",")
    assert len(HOUSE_COLUMNS) == 18
    assert list(HOUSE_COLUMNS) == header


def test_every_house_column_has_one_spec_by_name() -> None:
    assert list(FIELDS_BY_NAME) == list(HOUSE_COLUMNS)
    assert len(FIELDS_BY_NAME) == len(HOUSE_FIELDS)


def test_numeric_fields_have_ordered_bounds_and_the_zipcode_has_none() -> None:
    for spec in HOUSE_FIELDS:
        if spec.kind == "zipcode":
            assert (spec.ge, spec.le) == (None, None)
        else:
            assert spec.ge is not None and spec.le is not None and spec.ge < spec.le, spec.name


def test_sales_only_columns_are_known_but_are_not_house_features() -> None:
    assert set(SALES_ONLY_COLUMNS) == {"id", "date", "price"}
    assert set(SALES_ONLY_COLUMNS) <= KNOWN_COLUMNS
    assert not set(SALES_ONLY_COLUMNS) & set(HOUSE_COLUMNS)


def test_baseline_requests_the_clients_seven_house_columns_then_zipcode() -> None:
    assert BASELINE.request_fields == (
        "bedrooms",
        "bathrooms",
        "sqft_living",
        "sqft_lot",
        "floors",
        "sqft_above",
        "sqft_basement",
        "zipcode",
    )
    assert BASELINE.uses_demographics


def test_minimal_request_fields_are_what_the_baseline_needs() -> None:
    assert BASELINE.request_fields == MINIMAL_FIELDS


def test_model_kinds_are_registered_under_their_own_name() -> None:
    assert all(name == kind.name for name, kind in MODEL_KINDS.items())
    assert MODEL_KINDS["baseline"] is BASELINE


def test_request_fields_do_not_repeat_a_zipcode_that_is_already_a_house_feature() -> None:
    kind = ModelKind("k", ("zipcode", "bedrooms"), uses_demographics=True)
    assert kind.request_fields == ("zipcode", "bedrooms")


def test_request_fields_omit_the_zipcode_when_demographics_are_not_used() -> None:
    kind = ModelKind("k", ("bedrooms",), uses_demographics=False)
    assert kind.request_fields == ("bedrooms",)


def test_a_house_whose_above_plus_basement_equals_living_is_consistent() -> None:
    house = {"sqft_living": 2220, "sqft_above": 1660, "sqft_basement": 560}
    assert consistency_errors(house) == []


def test_above_plus_basement_differing_from_living_is_reported_on_sqft_living() -> None:
    errors = consistency_errors({"sqft_living": 2000, "sqft_above": 1660, "sqft_basement": 560})
    assert [field for field, _ in errors] == ["sqft_living"]
    assert "1660" in errors[0][1] and "560" in errors[0][1] and "2000" in errors[0][1]


def test_renovation_before_construction_is_reported_on_yr_renovated() -> None:
    errors = consistency_errors({"yr_built": 1990, "yr_renovated": 1980})
    assert [field for field, _ in errors] == ["yr_renovated"]
    assert "1980" in errors[0][1] and "1990" in errors[0][1]


def test_never_renovated_zero_and_renovation_in_the_build_year_are_consistent() -> None:
    assert consistency_errors({"yr_built": 1990, "yr_renovated": 0}) == []
    assert consistency_errors({"yr_built": 1990, "yr_renovated": 1990}) == []


def test_rules_skip_fields_the_house_does_not_carry() -> None:
    assert consistency_errors({}) == []
    assert consistency_errors({"sqft_living": 1000, "yr_renovated": 1900}) == []


def test_every_broken_rule_is_reported_together() -> None:
    house = {
        "sqft_living": 1,
        "sqft_above": 1000,
        "sqft_basement": 0,
        "yr_built": 2000,
        "yr_renovated": 1999,
    }
    assert [field for field, _ in consistency_errors(house)] == ["sqft_living", "yr_renovated"]
