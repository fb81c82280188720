"""A model call's records, as the workers build them for the record's buffer (worker/records.py,
and a batch chunk's houses in worker/tasks.py): plain dicts serialised once, which must be the
very JSON `RECORD_BATCH` writes for the same records (the recorder hands it to PostgreSQL as it
is, and validates it with `RECORD_BATCH` when PostgreSQL refuses it)."""

import math
from typing import Any

from api.schemas import validate_rows
from shared.wire.jobs import encode_rows
from shared.wire.messages import RECORD_BATCH, Estimate, EstimateRecord, EstimateReply, PriceRange
from worker.records import records_of
from worker.tasks import decode_rows, houses_of

AT_MS = 1_790_000_000_000


def gbm_estimate(n: int) -> Estimate:
    """As the gbm kind answers: ranges, grade, month, sometimes a warning."""
    price = 412_345.67 + 1_000.01 * n
    return Estimate(
        prediction=price,
        interval_80=PriceRange(low=price - 40_000.5, high=price + 52_000.25),
        interval_95=PriceRange(low=price - 81_000.0, high=price + 99_000.75),
        warnings=["sqft_living beyond the training data"] if n % 2 else [],
        as_of="2015-05",
        confidence="ABCD"[n % 4],
        fsd=0.1234,
    )


def validated(estimate: Estimate, house: dict[str, Any], **fields: Any) -> EstimateRecord:
    """The record built the validating way, from the same values."""
    ranges = {}
    for level, interval in (("80", estimate.interval_80), ("95", estimate.interval_95)):
        if interval is not None:
            ranges |= {f"low_{level}": interval.low, f"high_{level}": interval.high}
    return EstimateRecord(
        at_ms=AT_MS,
        house=house,
        prediction=estimate.prediction,
        confidence=estimate.confidence,
        fsd=estimate.fsd,
        as_of=estimate.as_of,
        warnings=estimate.warnings,
        **ranges,
        **fields,
    )


def chunk_records(rows: list[dict[str, Any]], first_row: int) -> bytes:
    """What the chunk task builds: the stored rows decoded, their houses, their records."""
    frame = decode_rows(encode_rows(rows))
    count = len(rows)
    return records_of(
        [gbm_estimate(n) for n in range(count)],
        houses_of(frame),
        [f"job7-{row}" for row in range(first_row, first_row + count)],
        keys=["crm"] * count,
        variants=["full"] * count,
        at_ms=AT_MS,
        model_version="v2",
        model_kind="gbm",
        job_id="job7",
        first_row=first_row,
    )


def test_a_chunk_s_records_are_the_json_record_batch_writes_for_its_rows(future_rows):
    rows = validate_rows(future_rows[:40])  # as the API stores them: ints, floats, text
    expected = [
        validated(
            gbm_estimate(n),
            row,
            request_id=f"job7-{1000 + n}",
            key="crm",
            model_version="v2",
            model_kind="gbm",
            variant="full",
            job_id="job7",
            row=1000 + n,
        )
        for n, row in enumerate(rows)
    ]
    built = chunk_records(rows, first_row=1000)
    assert built == RECORD_BATCH.dump_json(expected)
    assert RECORD_BATCH.validate_json(built) == expected


def test_a_missing_house_value_is_recorded_as_null_and_the_others_as_sent(future_rows):
    rows = validate_rows(future_rows[:3])
    rows[1]["sqft_basement"] = None
    rows[2]["zipcode"] = None
    records = RECORD_BATCH.validate_json(chunk_records(rows, first_row=0))
    assert records[1].house["sqft_basement"] is None and records[2].house["zipcode"] is None
    assert [record.house for record in records] == rows  # 1680 == 1680.0: same values
    assert b"NaN" not in chunk_records(rows, first_row=0)


def test_nan_in_a_house_is_written_as_null():
    built = records_of(
        [gbm_estimate(0)],
        [{"zipcode": "98118", "sqft_living": math.nan}],
        ["r0"],
        keys=["anna"],
        variants=["full"],
        at_ms=AT_MS,
        model_version="v2",
        model_kind="gbm",
    )
    assert b'"house":{"zipcode":"98118","sqft_living":null}' in built
    assert RECORD_BATCH.validate_json(built)[0].house == {"zipcode": "98118", "sqft_living": None}


def test_a_micro_batch_s_records_are_the_json_record_batch_writes_for_its_replies(future_rows):
    """Single predictions: the replies of one call, of several keys and both variants; the
    baseline's answers have no ranges, grade or month."""
    houses = future_rows[:3]
    replies = [
        EstimateReply(
            request_id=f"r{n}",
            model_version="v1",
            model_kind="baseline",
            prediction=350_000.5 + n,
            batch_size=3,
        )
        for n in range(3)
    ]
    keys, variants = ["anna", "ben", "anna"], ["full", "minimal", "full"]
    built = records_of(
        replies,
        houses,
        [reply.request_id for reply in replies],
        keys=keys,
        variants=variants,  # type: ignore[arg-type]
        at_ms=AT_MS,
        model_version="v1",
        model_kind="baseline",
    )
    expected = [
        validated(
            reply,
            house,
            request_id=reply.request_id,
            key=key,
            model_version="v1",
            model_kind="baseline",
            variant=variant,
        )
        for reply, house, key, variant in zip(replies, houses, keys, variants, strict=True)
    ]
    assert built == RECORD_BATCH.dump_json(expected)
    assert [(r.job_id, r.row, r.low_80, r.confidence) for r in expected] == [(None,) * 4] * 3
