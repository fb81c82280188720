"""Joining zipcode demographics onto houses (shared/model/demographics.py)."""

import pandas as pd
import pytest

from shared.model.demographics import UnknownZipcodeError, join_demographics

DEMOGRAPHICS = pd.DataFrame(
    {"ppltn_qty": [100.0, 200.0, 300.0], "zipcode": ["98001", "98002", "98003"]}
)


def houses(zipcodes: list[str], index: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"bedrooms": range(len(zipcodes)), "zipcode": zipcodes},
        index=index if index is not None else range(len(zipcodes)),
    )


def test_each_house_gets_the_demographics_of_its_own_zipcode() -> None:
    joined = join_demographics(houses(["98003", "98001", "98003"]), DEMOGRAPHICS)
    assert joined["ppltn_qty"].tolist() == [300.0, 100.0, 300.0]
    assert joined.columns.tolist() == ["bedrooms", "zipcode", "ppltn_qty"]


def test_join_keeps_row_order_and_index() -> None:
    frame = houses(["98002", "98001", "98003"], index=[10, 3, 7])
    joined = join_demographics(frame, DEMOGRAPHICS)
    assert joined.index.tolist() == [10, 3, 7]
    assert joined["bedrooms"].tolist() == [0, 1, 2]
    assert joined["ppltn_qty"].tolist() == [200.0, 100.0, 300.0]


def test_join_leaves_its_inputs_unchanged() -> None:
    frame = houses(["98002"])
    before = frame.copy(), DEMOGRAPHICS.copy()
    join_demographics(frame, DEMOGRAPHICS)
    pd.testing.assert_frame_equal(frame, before[0])
    pd.testing.assert_frame_equal(DEMOGRAPHICS, before[1])


def test_unknown_zipcode_raises_listing_each_unknown_code_once_sorted() -> None:
    with pytest.raises(UnknownZipcodeError) as caught:
        join_demographics(houses(["99999", "98001", "00000", "99999"]), DEMOGRAPHICS)
    assert caught.value.zipcodes == ["00000", "99999"]
    assert "00000, 99999" in str(caught.value)


def test_unknown_zipcode_message_shows_ten_codes_but_the_error_keeps_all() -> None:
    unknown = [f"990{i:02d}" for i in range(12)]
    with pytest.raises(UnknownZipcodeError) as caught:
        join_demographics(houses(unknown), DEMOGRAPHICS)
    assert caught.value.zipcodes == unknown
    assert "99009 …" in str(caught.value)
    assert "99010" not in str(caught.value)


def test_unknown_zipcode_error_is_a_value_error() -> None:
    assert issubclass(UnknownZipcodeError, ValueError)
