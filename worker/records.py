"""The workers' side of the record of estimates: each model call's estimates become one item of
the Redis buffer (`names.RECORDS`, a JSON array of `EstimateRecord`), pushed in the round trip
that already carries the answers, so recording costs an answer no wait and no connection of its
own. The recorder (shared/records) writes the buffer to PostgreSQL in batches; while the
database is down the buffer grows, up to `records_buffer_rows`, and past that bound the rows are
counted as dropped (an alert) rather than letting Redis fill up and refuse the queue itself.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import to_json

from shared.wire import names
from shared.wire.messages import Estimate, Variant

# The buffer push as a Lua fragment, run inside the scripts that send answers (the micro-batch
# exchange, the chunk's result). {records}, {rows}, {dropped} are the KEYS indexes, {batch},
# {count}, {bound} the ARGV indexes of the JSON array, its row count and records_buffer_rows.
# It leaves `pushed` (rows buffered) in a local for the script to return.
PUSH_FRAGMENT = """
local pushed = 0
local count = tonumber(ARGV[{count}])
if count > 0 then
  if (tonumber(redis.call('GET', KEYS[{rows}])) or 0) + count <= tonumber(ARGV[{bound}]) then
    redis.call('RPUSH', KEYS[{records}], ARGV[{batch}])
    redis.call('INCRBY', KEYS[{rows}], count)
    pushed = count
  else
    redis.call('INCRBY', KEYS[{dropped}], count)
  end
end
"""

BUFFER_KEYS = (names.RECORDS, names.RECORDS_ROWS, names.RECORDS_DROPPED)

PUSH_RECORDS = (
    PUSH_FRAGMENT.format(records=1, rows=2, dropped=3, batch=1, count=2, bound=3)
    + "\nreturn pushed"
)


def records_of(
    estimates: Sequence[Estimate],
    houses: Sequence[Mapping[str, Any]],
    request_ids: Sequence[str],
    *,
    keys: Sequence[str],
    variants: Sequence[Variant],
    at_ms: int,
    model_version: str,
    model_kind: str,
    job_id: str | None = None,
    first_row: int | None = None,
) -> bytes:
    """The buffer item for one model call: a JSON array with one `EstimateRecord` per estimate,
    the same JSON `RECORD_BATCH` writes (tests/unit/worker/test_records.py). Built as plain
    dicts in the record's field order and serialised once, neither validated again (the model
    has just produced these values) nor made into a model per row: a batch chunk's records
    cost a third as much (docs/operations.md, What recording costs). NaN in a house is null."""
    records = []
    for offset, (estimate, house, request_id, key, variant) in enumerate(
        zip(estimates, houses, request_ids, keys, variants, strict=True)
    ):
        range_80, range_95 = estimate.interval_80, estimate.interval_95
        records.append(
            {
                "request_id": request_id,
                "key": key,
                "at_ms": at_ms,
                "model_version": model_version,
                "model_kind": model_kind,
                "variant": variant,
                "job_id": job_id,
                "row": None if first_row is None else first_row + offset,
                "house": house,
                "prediction": estimate.prediction,
                "low_80": None if range_80 is None else range_80.low,
                "high_80": None if range_80 is None else range_80.high,
                "low_95": None if range_95 is None else range_95.low,
                "high_95": None if range_95 is None else range_95.high,
                "confidence": estimate.confidence,
                "fsd": estimate.fsd,
                "as_of": estimate.as_of,
                "warnings": estimate.warnings,
            }
        )
    return to_json(records, inf_nan_mode="null")  # as RECORD_BATCH writes NaN
