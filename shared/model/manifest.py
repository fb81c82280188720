"""A bundle's manifest: what a version is, what it needs, and the checksum of each of its files.

Plain pydantic: workers write it to Redis when they start serving a version, and the API reads
it from there (the served zipcodes, request fields and metrics) without the model's libraries.
"""

import re
from typing import Any

from pydantic import BaseModel

VERSION_RE = re.compile(r"^v(\d+)$")


def version_number(name: str) -> int | None:
    """3 for "v3"; None for anything that is not a version name."""
    match = VERSION_RE.match(name)
    return int(match.group(1)) if match else None


class Manifest(BaseModel):
    version: str
    kind: str
    # How the model's files are written (`shared.model.bundles.FORMAT`); absent in the first
    # format, which pickled the model.
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
