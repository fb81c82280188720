"""The messages that cross Redis: each survives the wire as the same typed value, a newer
sender's extra fields are ignored, and a malformed message is refused with the field named."""

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.wire.messages import (
    CHUNK_ROWS,
    PREDICT_REQUEST,
    REPLY,
    BatchRowResult,
    ChunkTask,
    ErrorCode,
    ErrorReply,
    EstimateReply,
    Factor,
    JobRecord,
    PredictRequest,
    PriceRange,
)


def test_a_request_survives_the_wire(house):
    request = PredictRequest(
        request_id="r1", reply_to="inbox", house=house, variant="minimal", deadline_ms=1500
    )
    assert PREDICT_REQUEST.validate_json(request.model_dump_json()) == request
    assert request.pinned is False and request.explain is False


def test_replies_are_told_apart_by_their_type():
    estimate = EstimateReply(
        request_id="r1",
        prediction=350000.25,
        model_version="v2",
        model_kind="gbm",
        interval_80=PriceRange(low=1.0, high=2.0),
        factors=[Factor(feature="lot", value="lot 5,000 sq ft", effect_usd=-1.5, text="x")],
    )
    error = ErrorReply(
        request_id="r2", error=ErrorCode.UNKNOWN_ZIPCODE, detail="x", zipcodes=["00000"]
    )
    assert REPLY.validate_json(estimate.model_dump_json()) == estimate
    assert REPLY.validate_json(error.model_dump_json()) == error


def test_a_field_added_by_a_newer_sender_is_ignored():
    raw = '{"type": "error", "request_id": "r", "error": "internal", "detail": "x", "new": 1}'
    assert REPLY.validate_json(raw) == ErrorReply(
        request_id="r", error=ErrorCode.INTERNAL, detail="x"
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"request_id": "r"}',  # no type
        '{"type": "error", "request_id": "r", "error": "unheard_of", "detail": "x"}',
        '{"type": "estimate", "request_id": "r"}',  # no prediction
    ],
)
def test_a_malformed_reply_is_refused(raw):
    with pytest.raises(ValidationError):
        REPLY.validate_json(raw)


def test_a_request_without_its_deadline_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="deadline_ms"):
        PREDICT_REQUEST.validate_json('{"request_id": "r", "reply_to": "i", "house": {}}')


def test_a_job_record_reads_back_from_the_text_redis_returns():
    job = JobRecord.model_validate(
        {
            "job_id": "j",
            "model_version": "v2",
            "rows_total": "2500",
            "chunk_rows": "1000",
            "chunks": "3",
            "created_at": "1700000000.5",
            "progress_at": "1700000001",
            "attempts:1": "2",  # a chunk task's own counter in the same hash
        }
    )
    assert (job.rows_total, job.chunks, job.started_at) == (2500, 3, None)


def test_chunk_rows_and_results_keep_numbers_and_text():
    rows = {"bedrooms": [3, 4], "bathrooms": [1.5, 2.0], "zipcode": ["98118", "98103"]}
    assert CHUNK_ROWS.validate_json(CHUNK_ROWS.dump_json(rows)) == rows
    (row,) = TypeAdapter(list[BatchRowResult]).validate_json(
        b'[{"row": 7, "prediction": 1.25, "model_version": "v4", "as_of": "2015-05"}]'
    )
    assert (row.row, row.prediction, row.as_of, row.comps) == (7, 1.25, "2015-05", [])
    task = ChunkTask.model_validate({"job_id": "j", "chunk": 3})
    assert (task.chunk, task.as_of, task.comps) == (3, None, 0)  # options default to none
