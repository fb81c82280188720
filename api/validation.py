"""422 answers in FastAPI's own error format, for checks that need the served model."""

from collections.abc import Iterable, Sequence

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared.bundles import Manifest

MAX_REPORTED_ERRORS = 20


def unknown_zipcode_error(rows: Iterable[tuple[Sequence[str | int], str]], manifest: Manifest):
    """A 422 naming each offending zipcode and where it was, for rows as (location, zipcode)."""
    errors = [
        {
            "type": "zipcode_not_served",
            "loc": ("body", *loc, "zipcode"),
            "msg": f"zipcode {zipcode} is outside the area model {manifest.version} serves "
            f"({len(manifest.zipcodes)} King County zipcodes, see GET /v1/models)",
            "input": zipcode,
        }
        for loc, zipcode in rows
    ]
    return RequestValidationError(errors[:MAX_REPORTED_ERRORS])


def check_batch_zipcodes(zipcodes: Sequence[str], manifest: Manifest) -> None:
    """Every row's zipcode, before a job is accepted (single predictions are checked by the
    worker against its bundle)."""
    served = set(manifest.zipcodes)
    bad = [(("rows", i), z) for i, z in enumerate(zipcodes) if z not in served]
    if bad:
        raise unknown_zipcode_error(bad, manifest)


def rows_validation_error(exc: ValidationError, total_rows: int) -> RequestValidationError:
    """Batch errors located as body → rows → index → field, capped so a broken 100k-row file
    gives a readable answer rather than megabytes of repeats."""
    errors = exc.errors(include_url=False)
    shown = [
        {**error, "loc": ("body", "rows", *error["loc"])} for error in errors[:MAX_REPORTED_ERRORS]
    ]
    if len(errors) > MAX_REPORTED_ERRORS:
        shown.append(
            {
                "type": "too_many_errors",
                "loc": ("body", "rows"),
                "msg": f"{len(errors)} errors in {total_rows} rows; the first "
                f"{MAX_REPORTED_ERRORS} are shown",
            }
        )
    return RequestValidationError(shown)
