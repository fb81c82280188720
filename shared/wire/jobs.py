"""Batch jobs as stored in Redis, and how their status is derived (plain Python: the API reads
jobs without the model's libraries).

A job is a hash of metadata (`JobRecord`) plus a hash of chunk results keyed by chunk index. A
chunk result is written with one HSET of a fixed field, so a chunk that runs twice (redelivery
after a worker died) overwrites itself instead of adding rows: every row ends with exactly one
prediction.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from shared.wire.messages import (
    CHUNK_ROWS,
    BatchRowResult,
    Estimate,
    JobRecord,
    JobState,
)


def chunk_bounds(rows_total: int, chunk_rows: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of each chunk."""
    return [
        (start, min(start + chunk_rows, rows_total)) for start in range(0, rows_total, chunk_rows)
    ]


def encode_rows(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A chunk's validated rows as stored for its task, by column."""
    columns = rows[0].keys() if rows else []
    return CHUNK_ROWS.dump_json({column: [row[column] for row in rows] for column in columns})


# A result row as a plain dict of `BatchRowResult`'s fields and types: a chunk's rows are
# written through it, since building a model per row (`model_construct`) cost the worker four
# times as much as writing them (6.3 against 1.8 us a row, measured on 10,000 rows).
_ROW_DICT = TypedDict(  # type: ignore[misc]
    "_ROW_DICT", {name: field.annotation for name, field in BatchRowResult.model_fields.items()}
)
_ROW_DICTS: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[_ROW_DICT])  # type: ignore[valid-type]


def encode_result(estimates: Sequence[Estimate], first_row: int, model_version: str) -> bytes:
    """A chunk's estimates as the rows of the job's results, exactly as `BatchRowResult`
    writes them, amounts already in cents (`shared.model.contract.cents`). The API passes these
    rows to clients unread, so an amount that is not a number (which JSON would write as null
    under a field that promises a number) fails the chunk here instead (ValueError)."""
    for offset, estimate in enumerate(estimates):
        if not _finite(estimate):
            raise ValueError(f"row {first_row + offset}: the model gave no finite price")
    # The keys in `BatchRowResult`'s order: the serializer writes a dict's keys as they come
    # (the answer's bytes, and `_ROWS_MARK`, depend on it).
    return _ROW_DICTS.dump_json(
        [
            {
                "row": first_row + offset,
                "prediction": estimate.prediction,
                "model_version": model_version,
                "interval_80": estimate.interval_80,
                "interval_95": estimate.interval_95,
                "confidence": estimate.confidence,
                "fsd": estimate.fsd,
                "as_of": estimate.as_of,
                "warnings": estimate.warnings,
                "comps": estimate.comps,
            }
            for offset, estimate in enumerate(estimates)
        ]
    )


def _finite(estimate: Estimate) -> bool:
    amounts = [estimate.prediction]
    for price_range in (estimate.interval_80, estimate.interval_95):
        if price_range is not None:
            amounts += (price_range.low, price_range.high)
    return all(map(math.isfinite, amounts))


def derive_state(job: JobRecord, chunks_done: int, errors: Mapping[str, str]) -> JobState:
    if errors:
        return "failed"
    if chunks_done >= job.chunks:
        return "succeeded"
    if chunks_done or job.started_at:
        return "running"
    return "queued"


def rows_done(job: JobRecord, done_chunks: Sequence[int]) -> int:
    bounds = chunk_bounds(job.rows_total, job.chunk_rows)
    return sum(bounds[i][1] - bounds[i][0] for i in done_chunks)


_ROWS_MARK = '[{"row":'
"""How a chunk's rows start in their final form; a chunk that starts otherwise was written by
a worker from before that form (a list of `Estimate`s without `row`), during an upgrade."""


@dataclass(frozen=True)
class JobResults:
    """A finished job's results: each chunk's rows as one JSON array, in row order, kept as the
    text the workers wrote. The JSON answer splices them unread; only a CSV answer decodes."""

    chunks: tuple[str, ...]


def job_results(job: JobRecord, chunk_results: Mapping[str, str]) -> JobResults:
    """The job's chunks in submission order, whatever order they finished in (ValueError for
    one that is not a whole array of rows: it would be answered unread)."""
    bounds = chunk_bounds(job.rows_total, job.chunk_rows)
    chunks = []
    for index in sorted(int(i) for i in chunk_results):
        chunk = chunk_results[str(index)]
        if not chunk.startswith(_ROWS_MARK):
            chunk = _from_estimates(chunk, bounds[index][0], job.model_version)
        if not chunk.endswith("}]"):
            raise ValueError(f"job {job.job_id}: chunk {index}'s result is cut short")
        chunks.append(chunk)
    return JobResults(tuple(chunks))


def _from_estimates(chunk: str, first_row: int, model_version: str) -> str:
    estimates = [Estimate.model_validate(e) for e in json.loads(chunk)]
    return encode_result(estimates, first_row, model_version).decode()
