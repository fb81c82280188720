"""Batch job bookkeeping (shared/wire/jobs.py). Records are read back from the strings Redis
returns, as the API reads them."""

import json
import math

import pandas as pd
import pytest
from pydantic import TypeAdapter

from shared.model.contract import cents
from shared.wire.jobs import (
    chunk_bounds,
    derive_state,
    encode_result,
    encode_rows,
    job_results,
    rows_done,
)
from shared.wire.messages import BatchRowResult, Comp, Estimate, Factor, JobRecord, PriceRange
from worker.tasks import decode_rows

RESULT_ROWS = TypeAdapter(list[BatchRowResult])
CHUNK_RESULT_BEFORE = TypeAdapter(list[Estimate])
"""How workers stored a chunk's result before its rows were written in their final form."""


def meta(rows_total: int, chunk_rows: int, **extra: str) -> JobRecord:
    """A job record as read back from its Redis hash (every value text)."""
    chunks = len(chunk_bounds(rows_total, chunk_rows))
    stored = {
        "job_id": "j",
        "rows_total": str(rows_total),
        "chunk_rows": str(chunk_rows),
        "chunks": str(chunks),
        "model_version": "v3",
        "created_at": "1700000000.0",
        "progress_at": "1700000000.0",
        "attempts:0": "1",
        **extra,
    }
    return JobRecord.model_validate(stored)


def encode_chunk(first_row: int, prices: list[float]) -> str:
    """A chunk's result as a baseline worker of v3 stores it: prices only."""
    return encode_result([Estimate(prediction=cents(p)) for p in prices], first_row, "v3").decode()


def results_of(job: JobRecord, finished: dict[str, str]) -> list[dict[str, object]]:
    """The job's rows in the order its answer carries them."""
    return [row for chunk in job_results(job, finished).chunks for row in json.loads(chunk)]


def estimate_of(price: float, **fields: object) -> Estimate:
    """A gbm row's estimate: range, grade, month and a warning."""
    return Estimate(
        prediction=price,
        interval_80=PriceRange(low=price * 0.9, high=price * 1.1),
        interval_95=PriceRange(low=price * 0.8, high=price * 1.2),
        confidence="B",
        fsd=0.09,
        as_of="2015-05",
        warnings=["sqft_lot 1e+06 is above the largest value in the training sales"],
        **fields,
    )


@pytest.mark.parametrize(
    ("rows_total", "chunk_rows", "expected"),
    [
        (25, 10, [(0, 10), (10, 20), (20, 25)]),
        (20, 10, [(0, 10), (10, 20)]),
        (3, 10, [(0, 3)]),
        (1, 1, [(0, 1)]),
        (0, 10, []),
    ],
)
def test_chunks_cover_every_row_once_in_order_with_a_short_last_chunk(
    rows_total: int, chunk_rows: int, expected: list[tuple[int, int]]
) -> None:
    assert chunk_bounds(rows_total, chunk_rows) == expected


@pytest.mark.parametrize(
    ("extra", "chunks_done", "errors", "state"),
    [
        ({}, 0, {}, "queued"),
        ({"started_at": "1700000000.0"}, 0, {}, "running"),
        ({}, 1, {}, "running"),
        ({"started_at": "1700000000.0"}, 2, {}, "running"),
        ({"started_at": "1700000000.0"}, 3, {}, "succeeded"),
        ({"started_at": "1700000000.0"}, 1, {"1": "boom"}, "failed"),
        ({"started_at": "1700000000.0"}, 3, {"1": "boom"}, "failed"),
    ],
    ids=[
        "queued-until-a-worker-starts",
        "running-once-started",
        "running-once-a-chunk-is-done",
        "running-while-chunks-remain",
        "succeeded-when-every-chunk-is-done",
        "failed-on-any-chunk-error",
        "failed-even-if-every-chunk-reported",
    ],
)
def test_job_state_is_derived_from_progress_and_errors(
    extra: dict[str, str], chunks_done: int, errors: dict[str, str], state: str
) -> None:
    assert derive_state(meta(25, 10, **extra), chunks_done, errors) == state


def test_rows_done_counts_the_rows_of_finished_chunks_including_a_short_last_one() -> None:
    job = meta(25, 10)
    assert rows_done(job, []) == 0
    assert rows_done(job, [2]) == 5
    assert rows_done(job, [0, 2]) == 15
    assert rows_done(job, [2, 1, 0]) == 25


def test_an_encoded_chunk_is_its_rows_in_their_final_form_numbered_from_its_first() -> None:
    assert json.loads(encode_chunk(20, [123456.789, 100, 0.5])) == [
        BatchRowResult(row=20 + i, prediction=p, model_version="v3").model_dump(mode="json")
        for i, p in enumerate([123456.79, 100.0, 0.5])
    ]


def test_result_rows_carry_ranges_grade_month_warnings_and_comps_but_no_factors() -> None:
    comp = Comp(
        id="7129300520",
        sale_date="2014-10-13",
        price=221900.0,
        price_as_of=230000.0,
        distance_miles=0.4,
        bedrooms=3,
        bathrooms=1.0,
        sqft_living=1180,
        grade=7,
        similarity=0.8,
    )
    factor = Factor(feature="size", value="1,800 sq ft", effect_usd=-1200.0, text="size: -$1k")
    estimate = estimate_of(400000.0, comps=[comp], factors=[factor])
    (row,) = results_of(meta(1, 10), {"0": encode_result([estimate], 0, "v3").decode()})
    assert "factors" not in row
    expected = estimate.model_dump(mode="json", exclude={"factors"})
    assert row == {"row": 0, "model_version": "v3"} | expected  # plain JSON values
    assert Comp.model_validate(row["comps"][0]) == comp
    assert (row["confidence"], row["as_of"]) == ("B", "2015-05")


def test_a_chunk_is_written_byte_for_byte_as_pydantic_writes_its_rows() -> None:
    odd = 'é "quoted" \\ \u2028 \x00 </script>'
    estimates = [
        estimate_of(100_000.0).model_copy(update={"warnings": [odd]}),
        Estimate(prediction=1e20, as_of=odd),  # no ranges, no grade: a baseline's row
        estimate_of(0.01).model_copy(update={"confidence": None, "fsd": None}),
    ]
    chunk = encode_result(estimates, 30, "v3")
    assert chunk == RESULT_ROWS.dump_json(RESULT_ROWS.validate_json(chunk))
    assert [row.row for row in RESULT_ROWS.validate_json(chunk)] == [30, 31, 32]
    assert RESULT_ROWS.validate_json(chunk)[0].warnings == [odd]


@pytest.mark.parametrize(
    "estimate",
    [
        Estimate(prediction=math.nan),
        Estimate(prediction=1.0, interval_80=PriceRange(low=0.5, high=math.inf)),
        Estimate(prediction=1.0, interval_95=PriceRange(low=-math.inf, high=2.0)),
    ],
)
def test_a_chunk_with_an_amount_that_is_not_a_number_fails_rather_than_answer_null(estimate):
    with pytest.raises(ValueError, match="row 8: the model gave no finite price"):
        encode_result([Estimate(prediction=1.0), estimate], 7, "v3")


def test_a_chunk_cut_short_is_refused_rather_than_answered() -> None:
    whole = encode_chunk(0, [1.0, 2.0])
    with pytest.raises(ValueError, match="chunk 0's result is cut short"):
        job_results(meta(2, 10), {"0": whole[:-5]})


def test_a_chunk_written_by_a_worker_from_before_the_final_form_is_read_the_same() -> None:
    """During an upgrade an older worker stores a chunk as `Estimate`s without row numbers."""
    estimates = [estimate_of(100_000.0), Estimate(prediction=5.0, warnings=["w"])]
    old = CHUNK_RESULT_BEFORE.dump_json(estimates, exclude_defaults=True).decode()
    job = meta(12, 10)
    results = job_results(job, {"1": old, "0": encode_chunk(0, [1.0] * 10)})
    new = encode_result(estimates, 10, "v3").decode()
    assert results.chunks == (encode_chunk(0, [1.0] * 10), new)


def test_results_are_in_submission_order_whatever_the_order_chunks_finished() -> None:
    job = meta(12, 1)
    order = (11, 2, 10, 0, 1, 3, 4, 5, 6, 7, 8, 9)
    rows = results_of(job, {str(i): encode_chunk(i, [float(i)]) for i in order})
    assert [r["row"] for r in rows] == list(range(12))
    assert [r["prediction"] for r in rows] == [float(i) for i in range(12)]


def test_a_chunk_written_twice_yields_each_row_exactly_once() -> None:
    """A redelivered chunk overwrites its own result field instead of adding rows."""
    job = meta(4, 2)
    results: dict[str, str] = {}
    for chunk, prices in [(0, [1.0, 2.0]), (1, [3.0, 4.0]), (0, [1.0, 2.0])]:
        results[str(chunk)] = encode_chunk(2 * chunk, prices)  # HSET, field = chunk index
    rows = results_of(job, results)
    assert [r["row"] for r in rows] == [0, 1, 2, 3]
    assert rows_done(job, [int(i) for i in results]) == 4
    assert derive_state(job, len(results), {}) == "succeeded"


def test_chunk_rows_are_stored_by_column_and_read_back_as_the_same_frame(future_rows) -> None:
    rows = future_rows[:25]
    payload = encode_rows(rows)
    assert set(json.loads(payload)) == set(rows[0])  # one key per column, not per row
    pd.testing.assert_frame_equal(decode_rows(payload), pd.DataFrame(rows))
