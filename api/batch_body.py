"""Reading a batch body (JSON `{"rows": [...]}` or CSV with a header) as it arrives, bounded.

A body parsed whole costs many times its size in Python objects (ten concurrent 32 MiB uploads
raised the API's RSS by 2.7 GB, docs/operations.md), and the row cap was only looked at
afterwards. Here the body is pulled in chunks and read one row at a time: the byte
cap is enforced while receiving, the row cap at the first row past it, a row nested beyond the
schema (rows are flat objects of numbers and text) is a 422 as soon as it is read, and each block
of rows is validated as it comes, so that only the compact validated rows stay in memory
(`api.batches.EncodedRows`). At most `batch_parse_concurrency` bodies are read at once per API
process (`ParseGate`); reading runs in a worker thread so the event loop keeps answering.

Plain Python: the API does not load pandas to read a CSV, and JSON is framed row by row with the
standard library's C decoder (`raw_decode`), which refuses nesting past the recursion limit
without building it (an incremental event parser such as ijson builds any depth, and merely
iterating its C backend's events took longer than this whole framing).

CSV cells become what a JSON client would send: numbers as numbers, zipcodes as text, an empty
cell as null; anything else stays text, so validation names it.
"""

import asyncio
import codecs
import csv
import io
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.batches import EncodedRows
from api.errors import (
    MAX_REPORTED_ERRORS,
    InvalidInputError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    field_errors,
)
from api.request_context import HOUSE_BODY_BYTES
from api.schemas import validate_rows
from api.validation import unknown_zipcode_error
from shared.model.contract import FIELDS_BY_NAME, HOUSE_COLUMNS, KNOWN_COLUMNS, ZIPCODE
from shared.model.manifest import Manifest
from shared.settings import Settings

MEDIA_TYPES = ("application/json", "text/csv")

# Rows validated together: one pydantic call per block, which holds the GIL throughout while
# the event loop waits. Timing `validate_rows` block by block over 100,000 rows of
# future_unseen_examples.csv: blocks of 100 took at most 3.0 ms (0.82-0.88 s in all), blocks of
# 1,000 up to 92 ms (0.97-1.21 s in all; the long ones are garbage collections).
VALIDATE_BLOCK_ROWS = 100
# A batch row may be as large as a single prediction's whole body; a real one is ~330 bytes.
MAX_ROW_CHARS = HOUSE_BODY_BYTES

Pull = Callable[[], bytes]
"""The body's next chunk, b"" once it has all arrived."""


def media_type(content_type: str | None) -> str:
    """The batch body's media type, or 415."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaTypeError(f"send application/json or text/csv, not {media!r}")
    return media


def _body_error(message: str) -> InvalidInputError:
    return InvalidInputError.at(("body",), message)


@dataclass(frozen=True)
class BatchLimits:
    max_bytes: int
    max_rows: int
    chunk_rows: int

    @classmethod
    def of(cls, settings: Settings) -> "BatchLimits":
        return cls(settings.max_body_bytes, settings.max_batch_rows, settings.batch_chunk_rows)

    def too_many_bytes(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"the body is over the {self.max_bytes:,}-byte limit of a batch job "
            f"(and a job takes at most {self.max_rows:,} rows): split it into smaller jobs"
        )


# --- the body as text --------------------------------------------------------------------------


class _PulledBody(io.RawIOBase):
    """The body as a file, pulled chunk by chunk, refused once it passes `limits.max_bytes`.
    Each read pulls at most one chunk, so that a reader asks for no more of the body than it
    needs to go on (a client that stops sending is refused from what it sent)."""

    def __init__(self, pull: Pull, limits: BatchLimits) -> None:
        super().__init__()
        self._pull = pull
        self._limits = limits
        self._left = memoryview(b"")
        self.received = 0

    def readable(self) -> bool:
        return True

    def chunk(self) -> bytes:
        """The next chunk as it came, b"" at the end."""
        if self._left:
            left, self._left = bytes(self._left), memoryview(b"")
            return left
        chunk = self._pull()
        self.received += len(chunk)
        if self.received > self._limits.max_bytes:
            raise self._limits.too_many_bytes()
        return chunk

    def readinto(self, buffer: Any) -> int:
        if not self._left:
            self._left = memoryview(self.chunk())
            if not self._left:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def body_text(pull: Pull, limits: BatchLimits) -> io.TextIOWrapper:
    """UTF-8 text (a BOM allowed) with the line endings untranslated, as `csv` needs them.
    (A line is read as soon as it is in; `read(n)` would wait for n characters.)"""
    raw = io.BufferedReader(_PulledBody(pull, limits), buffer_size=64 * 1024)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


TextPieces = Callable[[], str]
"""The body's next piece of text as it arrives, "" at the end."""


def body_pieces(pull: Pull, limits: BatchLimits) -> TextPieces:
    """UTF-8 text (a BOM allowed), a chunk at a time."""
    raw = _PulledBody(pull, limits)
    decode = codecs.getincrementaldecoder("utf-8-sig")().decode

    def piece() -> str:
        while chunk := raw.chunk():
            if text := decode(chunk):
                return text
        return decode(b"", final=True)

    return piece


# --- JSON ----------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*\Z")
_DECODE = json.JSONDecoder().raw_decode
_SCALARS = frozenset({int, float, str, bool, type(None)})
_SHAPE = 'expected a JSON object {"rows": [ {house}, ... ]}'


def _nested(row: int, field: str | None = None) -> InvalidInputError:
    loc: tuple[str | int, ...] = ("body", "rows", row) + ((field,) if field else ())
    return InvalidInputError(
        [
            {
                "type": "json_too_deep",
                "loc": loc,
                "msg": "nested beyond the schema: each row is one flat object of numbers and "
                "text, one per house",
            }
        ]
    )


class _JsonText:
    """A window on the body's text: values are decoded where they start, and a value cut by the
    window's end waits for more text instead of failing."""

    def __init__(self, pieces: TextPieces) -> None:
        self._pieces = pieces
        self.buf = ""
        self.pos = 0
        self._before = 0  # characters of the body before `buf`, for error positions
        self._ended = False

    def at(self, pos: int | None = None) -> str:
        return f"character {self._before + (self.pos if pos is None else pos):,}"

    def _more(self, window: int = 1) -> bool:
        """Text appended until the window from `pos` holds `window` characters or the body
        ended; False when there was none."""
        pieces = []
        have = len(self.buf) - self.pos
        while have < window and not self._ended:
            piece = self._pieces()
            self._ended = not piece
            pieces.append(piece)
            have += len(piece)
        if not any(pieces):
            return False
        self._before += self.pos
        self.buf = self.buf[self.pos :] + "".join(pieces)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace, "" at the end of the body."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, allowed: str, what: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            found = repr(char) if char else "the end of the body"
            raise _body_error(
                f"the body is not valid JSON: expected {what} at {self.at()}, found {found}"
            )
        self.pos += 1
        return char

    def value(self, limit: int, too_large: str) -> Any:
        """The JSON value starting at the next character; RecursionError past Python's nesting
        limit, before anything deeper is built."""
        self.peek()
        while True:
            try:
                value, end = _DECODE(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if exc.pos - self.pos > limit:
                    raise PayloadTooLargeError(too_large) from None
                # Cut by the window's end, or broken: decoded again once the window doubled
                # (not once per chunk, which costs the square of a row's length in tiny chunks).
                window = len(self.buf) - self.pos
                if window <= limit and self._more(2 * window):
                    continue
                message = f"the body is not valid JSON: {exc.msg} at {self.at(exc.pos)}"
                raise _body_error(message) from None
            except ValueError as exc:  # e.g. an integer of over 4,300 digits
                raise _body_error(f"the body could not be read as JSON: {exc}") from exc
            if end - self.pos > limit:
                raise PayloadTooLargeError(too_large)
            # A number the window cut ("1" of "1.5e10") may go on in the text still to come.
            if _NUMBER_TAIL.match(self.buf, end) and self._more(len(self.buf) - self.pos + 1):
                continue
            self.pos = end
            return value


def json_rows(pieces: TextPieces) -> Iterator[Any]:
    """The rows of `{"rows": [...]}`, one at a time as the text arrives. The body is nothing
    else: another top-level field, or a row holding an object or array, is a 422 at once."""
    body = _JsonText(pieces)
    body.expect("{", _SHAPE)
    if body.peek() == "}":
        raise _body_error(_SHAPE)
    seen_rows = False
    while True:
        if body.peek() != '"':
            body.expect('"', "a field name in double quotes")
        key = body.value(MAX_ROW_CHARS, f"a field name of over {MAX_ROW_CHARS:,} characters")
        body.expect(":", "':'")
        if key != "rows":
            raise _body_error(f'unknown top-level field(s) [{key!r}]: the body holds only "rows"')
        if seen_rows:
            raise _body_error('"rows" is given twice')
        seen_rows = True
        if body.peek() != "[":
            raise _body_error(_SHAPE)
        body.pos += 1
        if body.peek() == "]":
            body.pos += 1
        else:
            yield from _json_row_list(body)
        if body.expect(",}", "',' or '}'") == "}":
            break
    if body.peek():
        raise _body_error(f"the body is not valid JSON: extra data at {body.at()}")


def _json_row_list(body: _JsonText) -> Iterator[Any]:
    too_large = f"a row of over {MAX_ROW_CHARS:,} characters of JSON: a house is a few hundred"
    for index in itertools.count():
        try:
            row = body.value(MAX_ROW_CHARS, too_large)
        except RecursionError:
            raise _nested(index) from None
        if type(row) is dict:
            if not _SCALARS.issuperset(map(type, row.values())):
                raise _nested(index, next(k for k, v in row.items() if type(v) not in _SCALARS))
        elif type(row) is list:
            raise _nested(index)
        yield row  # a scalar: validation names it, as for any other wrong row
        if body.expect(",]", "',' or ']'") == "]":
            return


# --- CSV -----------------------------------------------------------------------------------------


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _real(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _text(text: str) -> str:
    return text


def _converter(column: str) -> Callable[[str], Any]:
    """A float column's cell is tried as a float at once, sparing an int() that fails (an
    exception per cell); the value is the same once validated."""
    if column == ZIPCODE:
        return _text
    spec = FIELDS_BY_NAME.get(column)
    return _real if spec is not None and spec.kind == "float" else _number


def _lines(text: io.TextIOBase) -> Iterator[str]:
    """Lines of at most MAX_ROW_CHARS: one endless line is refused (413, as a body too large)
    as soon as that much of it arrived, not accumulated."""
    while line := text.readline(MAX_ROW_CHARS):
        if len(line) == MAX_ROW_CHARS and line[-1] not in "\r\n":
            raise PayloadTooLargeError(
                f"a CSV line of over {MAX_ROW_CHARS:,} characters: a house is a hundred or so"
            )
        yield line


def csv_rows(text: io.TextIOBase) -> Iterator[dict[str, Any]]:
    """The rows of a CSV with a header line, one at a time as the text arrives."""
    try:
        reader = csv.reader(_lines(text), strict=True)
        header = next(reader, None)
        if header is None:
            return
        _check_header(header)
        converters = [_converter(c) for c in header]
        width = len(header)
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue  # a blank line
            if len(cells) != width:
                raise _body_error(
                    f"CSV line {line} has {len(cells)} cells where the header has {width}"
                )
            cells_of = zip(header, converters, cells, strict=True)
            yield {c: (f(v) if v else None) for c, f, v in cells_of}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _body_error(f"the CSV body could not be read: {exc}") from exc


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


# --- counting, validating, keeping -----------------------------------------------------------


class _FirstErrors:
    """The first MAX_REPORTED_ERRORS problems in full, and how many there were: a broken
    100,000-row file is reported as before without holding 100,000 error dicts."""

    def __init__(self) -> None:
        self.first: list[Any] = []
        self.count = 0

    def add(self, error: Any) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED_ERRORS:
            self.first.append(error)


def collect_rows(rows: Iterable[Any], limits: BatchLimits, manifest: Manifest) -> EncodedRows:
    """Count, validate and keep the rows as they are read: past `limits.max_rows` a 413 at once;
    invalid rows or unserved zipcodes a 422 once all are read, with the existing per-row
    messages (the first 20, then how many); otherwise the validated rows, encoded by chunk."""
    served = frozenset(manifest.zipcodes)
    kept = EncodedRows(limits.chunk_rows)
    invalid, unserved = _FirstErrors(), _FirstErrors()
    block: list[Any] = []
    start = total = 0

    def validate() -> None:
        try:
            valid = validate_rows(block)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error["loc"]
                invalid.add({**error, "loc": (start + loc[0], *loc[1:])})
            kept.clear()
            return
        for offset, row in enumerate(valid):
            if row[ZIPCODE] not in served:
                unserved.add((("rows", start + offset), row[ZIPCODE]))
        if invalid.count or unserved.count:
            kept.clear()  # the job is refused: only its errors are still needed
        else:
            kept.extend(valid)

    for total, row in enumerate(rows, start=1):
        if total > limits.max_rows:
            raise PayloadTooLargeError(
                f"the batch has more than {limits.max_rows:,} rows, the limit of one job: "
                "split it into smaller jobs"
            )
        block.append(row)
        if len(block) == VALIDATE_BLOCK_ROWS:
            validate()
            start, block = total, []
    if block:
        validate()
    if not total:
        raise _body_error("the batch has no rows")
    if invalid.count:
        raise field_errors(invalid.first, ("body", "rows"), f"{total} rows", invalid.count)
    if unserved.count:
        raise unknown_zipcode_error(unserved.first, manifest, unserved.count)
    kept.seal()
    return kept


def parse_body(pull: Pull, media: str, limits: BatchLimits, manifest: Manifest) -> EncodedRows:
    """A whole batch body, pulled chunk by chunk: blocking, so run it in a worker thread."""
    try:
        if media == "text/csv":
            rows: Iterable[Any] = csv_rows(body_text(pull, limits))
        else:
            rows = json_rows(body_pieces(pull, limits))
        return collect_rows(rows, limits, manifest)
    except UnicodeDecodeError as exc:
        raise _body_error(f"the body is not UTF-8 text: {exc}") from exc


# --- one API process's reading of batch bodies ------------------------------------------------


class ParseGate:
    """At most `slots` batch bodies read at once in this process; a request waits `wait_s` for
    a turn, then gets 503 + Retry-After. A reading holds its rows encoded, one chunk's rows as
    dicts and a chunk of text (docs/operations.md, "Faults"), and the turn is held until the job
    is in Redis, so this bounds the API's memory however many uploads come."""

    def __init__(self, slots: int, wait_s: float) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._free = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise ServiceUnavailableError(
                f"{self.slots} batch uploads are being read already, the most at once; "
                "retry after Retry-After"
            ) from None
        try:
            yield
        finally:
            self._free.release()


def parse_gate(app: FastAPI, settings: Settings) -> ParseGate:
    """The app's gate, made at its first batch (an asyncio object belongs in the app's loop)."""
    gate: ParseGate | None = getattr(app.state, "batch_parse_gate", None)
    if gate is None:
        gate = ParseGate(settings.batch_parse_concurrency, settings.batch_parse_wait_s)
        app.state.batch_parse_gate = gate
    return gate


def check_declared_length(request: Request, limits: BatchLimits) -> None:
    """A declared Content-Length over the cap is refused before anything is read or waited for."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise PayloadTooLargeError(
            f"the body is {int(declared):,} bytes, over the {limits.max_bytes:,}-byte limit of "
            f"a batch job (and a job takes at most {limits.max_rows:,} rows): split it into "
            "smaller jobs"
        )


async def receive_rows(
    request: Request, media: str, limits: BatchLimits, manifest: Manifest
) -> EncodedRows:
    """The request's rows, read in a worker thread that pulls the body from the event loop chunk
    by chunk: the loop stays free while rows are parsed and validated, and no more of the body
    is received than the parser has asked for (the rest waits in the socket)."""
    chunks = request.stream()

    async def next_chunk() -> bytes:
        return await anext(chunks, b"")

    def pull() -> bytes:
        return anyio.from_thread.run(next_chunk)

    return await run_in_threadpool(parse_body, pull, media, limits, manifest)
