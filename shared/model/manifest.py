"""A bundle's manifest: what a version is, what it needs, and the checksum of each of its files.

Plain pydantic: workers write it to Redis when they start serving a version, and the API reads
it from there (the served zipcodes, request fields and metrics) without the model's libraries.
"""

import re
from typing import Any

from pydantic import BaseModel

from shared.model.contract import as_of_problem
from shared.monitoring.profile import TrainingProfile

# ASCII digits only (`\d` would take any Unicode digit). Matched with `fullmatch`: `match`
# lets `$` stop before a trailing newline. The API validates its path parameter with the same
# pattern (pydantic's regex engine reads `$` as the end of the text).
VERSION_RE = re.compile(r"^v([0-9]+)$")


class BundleError(RuntimeError):
    """A bundle is missing, incomplete, of another format or altered since it was written."""


class InvalidVersionError(BundleError):
    """A name given as a version is not one (`v` and digits)."""


def version_number(name: str) -> int | None:
    """3 for "v3"; None for anything that is not a version name."""
    match = VERSION_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def check_version(name: str) -> str:
    """`name`, when it is a version name; InvalidVersionError otherwise.

    A version becomes a directory under the model directory, a queue, a node name and a worker's
    command line, and it arrives from people and from Redis: each entry point passes it here
    first, so `../../x` never reaches the file system or a process."""
    if VERSION_RE.fullmatch(name) is None:  # not version_number: int() of 5,000 digits raises
        raise InvalidVersionError(f"{name[:40]!r} is not a version name (v and digits, e.g. v3)")
    return name


class Manifest(BaseModel):
    version: str
    kind: str
    # How the model's files are written (its kind's `FORMAT`, see shared.model.bundles);
    # absent in the first format, which pickled the model.
    format: int = 1
    created_at: str
    input_features: list[str]
    request_fields: list[str]
    zipcodes: list[str]
    libraries: dict[str, str]
    files: dict[str, str]
    data_files: dict[str, str]
    metrics: dict[str, Any]
    training: dict[str, Any]
    # The first and last month the model can price a home at (YYYY-MM); empty for kinds that
    # do not know the sale date.
    as_of_months: list[str] = []
    # How the training homes and the model's estimates of them were distributed: what drift is
    # measured against (shared/monitoring); None in bundles trained before it was kept.
    profile: TrainingProfile | None = None

    def as_of_error(self, as_of: str) -> str | None:
        """Why this version cannot estimate at `as_of` (a well-formed YYYY-MM), or None."""
        if not self.as_of_months:
            return f"model {self.version} ({self.kind}) does not price at a chosen month"
        return as_of_problem(as_of, *self.as_of_months)
