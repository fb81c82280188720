"""Reading a batch body (JSON `{"rows": [...]}` or CSV with a header) into raw rows, before
validation. Plain Python: the API does not load pandas to read a CSV.

CSV cells become what a JSON client would send: numbers as numbers, zipcodes as text, an empty
cell as null; anything else stays text, so validation names it.
"""

import csv
import io
import json
from typing import Any

from api.errors import InvalidInputError, UnsupportedMediaTypeError
from shared.model.contract import HOUSE_COLUMNS, KNOWN_COLUMNS, ZIPCODE

MEDIA_TYPES = ("application/json", "text/csv")


def media_type(content_type: str | None) -> str:
    """The batch body's media type, or 415."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaTypeError(f"send application/json or text/csv, not {media!r}")
    return media


def _body_error(message: str) -> InvalidInputError:
    return InvalidInputError.at(("body",), message)


def parse_rows(body: bytes, media: str) -> list[Any]:
    return _csv_rows(body) if media == "text/csv" else _json_rows(body)


def _json_rows(body: bytes) -> list[Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _body_error(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise _body_error('expected a JSON object {"rows": [ {house}, ... ]}')
    if extra := sorted(set(document) - {"rows"}):
        raise _body_error(f'unknown top-level field(s) {extra}: the body holds only "rows"')
    return document["rows"]


def _cell(column: str, text: str) -> Any:
    if text == "":
        return None
    if column == ZIPCODE:
        return text
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            continue
    return text


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if header is None:
            return []
        _check_header(header)
        rows = []
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue  # a blank line
            if len(cells) != len(header):
                raise _body_error(
                    f"CSV line {line} has {len(cells)} cells where the header has {len(header)}"
                )
            rows.append({c: _cell(c, v) for c, v in zip(header, cells, strict=True)})
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _body_error(f"the CSV body could not be read: {exc}") from exc
    return rows


def _check_header(columns: list[str]) -> None:
    """Header problems are reported once, by column, rather than once per row."""
    missing = [c for c in HOUSE_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unknown:
        problems.append(f"unknown column(s) {unknown} (not columns of the house data)")
    if problems:
        raise _body_error("CSV header: " + "; ".join(problems))
