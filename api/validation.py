"""Checks of a request that need the served model's manifest, as 422s in FastAPI's format."""

from collections.abc import Iterable, Sequence

from api.errors import InvalidInputError, field_errors
from shared.model.manifest import Manifest


def unknown_zipcode_error(
    rows: Iterable[tuple[Sequence[str | int], str]], manifest: Manifest
) -> InvalidInputError:
    """A 422 naming each offending zipcode and where it was, for rows as (location, zipcode)."""
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
    )


def check_batch_zipcodes(zipcodes: Sequence[str], manifest: Manifest) -> None:
    """Every row's zipcode, before a job is accepted (single predictions are checked by the
    worker against its bundle)."""
    served = set(manifest.zipcodes)
    bad = [(("rows", i), z) for i, z in enumerate(zipcodes) if z not in served]
    if bad:
        raise unknown_zipcode_error(bad, manifest)
