"""Checks of a request that need the served model's manifest, as 422s in FastAPI's format."""

from collections.abc import Iterable, Sequence

from api.errors import InvalidInputError, field_errors
from shared.model.manifest import Manifest


def unknown_zipcode_error(
    rows: Iterable[tuple[Sequence[str | int], str]], manifest: Manifest, count: int | None = None
) -> InvalidInputError:
    """A 422 naming each offending zipcode and where it was, for rows as (location, zipcode);
    `count` of them in all when `rows` holds only the first ones."""
    return field_errors(
        (
            {
                "type": "zipcode_not_served",
                "loc": ("body", *loc, "zipcode"),
                "msg": f"zipcode {zipcode} is outside the area model {manifest.version} serves "
                f"({len(manifest.zipcodes)} King County zipcodes, see GET /v1/models)",
                "input": zipcode,
            }
            for loc, zipcode in rows
        ),
        total="the batch",
        count=count,
    )
