"""The workers put every estimate they answer into the record's Redis buffer, with who asked,
what was sent and what was answered; the recorder (tests/integration/test_recording.py) takes it
on to PostgreSQL. A full buffer never costs an answer."""

import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import requests
from stack import Stack, as_rows, running_stack

from shared.tools.procs import wait_for
from shared.wire import names
from shared.wire.api_keys import Role
from shared.wire.messages import RECORD_BATCH, EstimateRecord


def buffered(stack: Stack) -> dict[str, EstimateRecord]:
    """Every record waiting in the buffer, by request id."""
    items = stack.redis_client().lrange(names.RECORDS, 0, -1)
    return {r.request_id: r for item in items for r in RECORD_BATCH.validate_json(item)}


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_single_estimate_is_recorded_as_answered(stack: Stack, house: dict[str, Any]) -> None:
    key = stack.key("records-agent", Role.AGENT)
    answer = requests.post(
        f"{stack.api_url}/v1/predict?comps=2", json=house, headers=as_key(key), timeout=30
    )
    assert answer.status_code == 200
    body = answer.json()
    # The estimate's id is the request's own: what the client sees in X-Request-ID.
    assert body["request_id"] == answer.headers["x-request-id"]
    wait_for(lambda: body["request_id"] in buffered(stack), 10, "the record")
    record = buffered(stack)[body["request_id"]]
    assert record.key == "records-agent"
    assert record.variant == "full" and record.job_id is None and record.row is None
    assert record.model_version == body["model_version"]
    assert record.house == {k: v for k, v in house.items() if k in record.house}
    assert set(record.house) >= {"zipcode", "sqft_living", "bedrooms", "lat", "long"}
    assert record.prediction == body["prediction"]
    assert record.as_of == body["as_of"] and record.confidence == body["confidence"]
    if body["interval_80"] is not None:
        assert (record.low_80, record.high_80) == tuple(body["interval_80"].values())
        assert (record.low_95, record.high_95) == tuple(body["interval_95"].values())
    assert abs(record.at_ms / 1000 - time.time()) < 60


def test_a_client_chosen_request_id_does_not_become_the_record_s_key(
    stack: Stack, house: dict[str, Any]
) -> None:
    """Clients' ids need not be unique; the record's must be."""
    first, second = (
        requests.post(
            f"{stack.api_url}/v1/predict/minimal",
            json=house,
            headers=as_key(stack.admin_key) | {"X-Request-ID": "crm-7"},
            timeout=30,
        ).json()["request_id"]
        for _ in range(2)
    )
    assert first != second and "crm-7" not in (first, second)
    wait_for(lambda: {first, second} <= set(buffered(stack)), 10, "both records")
    assert buffered(stack)[first].variant == "minimal"


def test_every_row_of_a_batch_job_is_recorded_under_its_job_and_row(
    stack: Stack, future_rows: list[dict[str, Any]]
) -> None:
    key = stack.key("records-crm", Role.BATCH)
    rows = future_rows[:45]  # two chunks of the session's 30 rows
    submitted = requests.post(
        f"{stack.api_url}/v1/batch", json={"rows": rows}, headers=as_key(key), timeout=30
    )
    assert submitted.status_code == 202
    job_id = submitted.json()["job_id"]
    wanted = {f"{job_id}-{row}" for row in range(len(rows))}
    wait_for(lambda: wanted <= set(buffered(stack)), 60, "the job's records")
    status = requests.get(
        f"{stack.api_url}/v1/batch/{job_id}", headers=as_key(key), timeout=30
    ).json()
    records = buffered(stack)
    for result in status["results"]:
        record = records[f"{job_id}-{result['row']}"]
        assert (record.job_id, record.row, record.key) == (job_id, result["row"], "records-crm")
        assert record.prediction == result["prediction"]
        assert record.house["zipcode"] == str(rows[result["row"]]["zipcode"])


@pytest.fixture(scope="module")
def small_buffer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("small-buffer"), records_buffer_rows=3) as stack:
        yield stack


def test_past_its_bound_the_buffer_counts_rows_dropped_and_answers_go_on(
    small_buffer: Stack, future_rows: list[dict[str, Any]]
) -> None:
    for house in future_rows[:5]:
        answer = small_buffer.http.post(f"{small_buffer.api_url}/v1/predict", json=house)
        assert answer.status_code == 200
    client = small_buffer.redis_client()
    wait_for(lambda: client.get(names.RECORDS_DROPPED) == "2", 10, "two rows counted dropped")
    assert client.get(names.RECORDS_ROWS) == "3"
    assert len(buffered(small_buffer)) == 3
    rows = as_rows(pd.DataFrame(future_rows[:4]))
    job = small_buffer.http.post(f"{small_buffer.api_url}/v1/batch", json={"rows": rows})
    assert job.status_code == 202
    status_url = f"{small_buffer.api_url}/v1/batch/{job.json()['job_id']}"
    wait_for(
        lambda: small_buffer.http.get(status_url).json()["status"] == "succeeded", 30, "the job"
    )
    assert client.get(names.RECORDS_DROPPED) == "6"


def test_a_request_the_model_refused_leaves_no_record(stack: Stack, house: dict[str, Any]) -> None:
    client = stack.redis_client()
    before = client.get(names.RECORDS_ROWS)
    refused = stack.http.post(f"{stack.api_url}/v1/predict", json=house | {"zipcode": "10001"})
    assert refused.status_code == 422
    time.sleep(0.5)  # the reply went out with any record in one script: nothing may follow
    assert client.get(names.RECORDS_ROWS) == before
