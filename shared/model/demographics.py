"""Joining zipcode demographics onto houses, the same way for training and serving."""

import pandas as pd

from shared.model.contract import ZIPCODE


class UnknownZipcodeError(ValueError):
    """A house lies outside the area the model was trained on.

    Raised instead of filling medians: an estimate for an unknown area would look as confident
    as any other while resting on invented neighbourhood data.
    """

    def __init__(self, zipcodes: list[str]) -> None:
        self.zipcodes = zipcodes
        shown = ", ".join(zipcodes[:10]) + (" …" if len(zipcodes) > 10 else "")
        super().__init__(f"zipcode outside the area this model serves: {shown}")


def join_demographics(houses: pd.DataFrame, demographics: pd.DataFrame) -> pd.DataFrame:
    """Left-join demographics on zipcode, keeping row order and index. One positional lookup
    and one concat: served micro-batches are small, so pandas' per-step overhead dominates."""
    zipcodes = houses[ZIPCODE].to_numpy()
    position = pd.Index(demographics[ZIPCODE]).get_indexer(zipcodes)
    if (position < 0).any():
        raise UnknownZipcodeError(sorted(set(zipcodes[position < 0])))
    joined = demographics.drop(columns=ZIPCODE).take(position)
    joined.index = houses.index
    return pd.concat([houses, joined], axis=1)
