"""The workers' side of the record of estimates: each model call's estimates become one item of
the Redis buffer (`names.RECORDS`, a JSON array of `EstimateRecord`), pushed in the round trip
that already carries the answers, so recording costs an answer no wait and no connection of its
own. The recorder (shared/records) writes the buffer to PostgreSQL in batches; while the
database is down the buffer grows, up to `records_buffer_rows`, and past that bound the rows are
counted as dropped (an alert) rather than letting Redis fill up and refuse the queue itself.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from shared.wire import names
from shared.wire.messages import RECORD_BATCH, Estimate, EstimateRecord, Variant

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


def range_of(estimate: Estimate) -> dict[str, float | None]:
    low_80 = high_80 = low_95 = high_95 = None
    if estimate.interval_80 is not None:
        low_80, high_80 = estimate.interval_80.low, estimate.interval_80.high
    if estimate.interval_95 is not None:
        low_95, high_95 = estimate.interval_95.low, estimate.interval_95.high
    return {"low_80": low_80, "high_80": high_80, "low_95": low_95, "high_95": high_95}


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
    """The buffer item for one model call: a JSON array with one record per estimate. Built
    without validating again what the model has just produced (the recorder validates it)."""
    records = [
        EstimateRecord.model_construct(
            request_id=request_id,
            key=key,
            at_ms=at_ms,
            model_version=model_version,
            model_kind=model_kind,
            variant=variant,
            job_id=job_id,
            row=None if first_row is None else first_row + offset,
            house=house,
            prediction=estimate.prediction,
            confidence=estimate.confidence,
            fsd=estimate.fsd,
            as_of=estimate.as_of,
            warnings=estimate.warnings,
            **range_of(estimate),
        )
        for offset, (estimate, house, request_id, key, variant) in enumerate(
            zip(estimates, houses, request_ids, keys, variants, strict=True)
        )
    ]
    return RECORD_BATCH.dump_json(records)
