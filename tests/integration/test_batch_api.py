"""POST /v1/batch and GET /v1/batch/{job_id}: jobs split into chunks, JSON or CSV both ways."""

import csv
import io
import json
import time

import pandas as pd
import pytest
import requests
from pydantic import TypeAdapter
from stack import Stack, as_rows, streamed

from shared.wire import names
from shared.wire.messages import Estimate


def wait_done(api: requests.Session, status_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(status_url, timeout=10).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    raise TimeoutError(f"batch job still {body['status']} after {timeout} s")


def test_json_batch_completes_with_one_prediction_per_row_in_order(
    api: requests.Session, future_examples: pd.DataFrame
):
    submitted = api.post("/v1/batch", json={"rows": as_rows(future_examples)})
    assert submitted.status_code == 202, submitted.text
    accepted = submitted.json()
    assert accepted["rows_total"] == 100
    done = wait_done(api, accepted["status_url"])
    assert done["status"] == "succeeded", done
    assert done["rows_done"] == 100
    assert [r["row"] for r in done["results"]] == list(range(100))
    assert {r["model_version"] for r in done["results"]} == {accepted["model_version"]}


ESTIMATE_FIELDS = ("prediction", "interval_80", "interval_95", "confidence", "fsd", "as_of")


def test_batch_estimates_equal_single_estimates(
    api: requests.Session, future_examples: pd.DataFrame
):
    """Price, ranges, grade and month: a row of a batch is answered as the same house alone."""
    rows = as_rows(future_examples.head(35))  # spans two chunks of 30
    accepted = api.post("/v1/batch", json={"rows": rows}).json()
    batch = wait_done(api, accepted["status_url"])["results"]
    singles = [api.post("/v1/predict", json=row).json() for row in rows]
    for name in (*ESTIMATE_FIELDS, "warnings"):
        assert [r[name] for r in batch] == [s[name] for s in singles], name


def test_a_batch_job_priced_at_a_month_with_comps_matches_single_answers(
    api: requests.Session, future_examples: pd.DataFrame
):
    active = next(m for m in api.get("/v1/models").json() if m["active"])
    if not active["as_of_months"]:
        pytest.skip(f"the active {active['kind']} bundle does not price at a chosen month")
    month = active["as_of_months"][0]
    options = {"as_of": month, "comps": 3}
    rows = as_rows(future_examples.head(5))
    accepted = api.post("/v1/batch", json={"rows": rows}, params=options)
    assert accepted.status_code == 202, accepted.text
    done = wait_done(api, accepted.json()["status_url"])
    assert (done["as_of"], done["comps"]) == (month, 3)
    singles = [api.post("/v1/predict", json=row, params=options).json() for row in rows]
    for name in (*ESTIMATE_FIELDS, "comps"):
        assert [r[name] for r in done["results"]] == [s[name] for s in singles], name
    assert {r["as_of"] for r in done["results"]} == {month}
    assert all(len(r["comps"]) == 3 for r in done["results"])
    as_csv = api.get(accepted.json()["status_url"], params={"format": "csv"}, timeout=10).text
    (first, *_) = csv.DictReader(io.StringIO(as_csv))
    assert first["as_of"] == month and len(json.loads(first["comps"])) == 3


def test_a_chunk_stored_by_a_worker_of_the_previous_release_is_answered_the_same(
    api: requests.Session, stack: Stack, future_examples: pd.DataFrame
):
    """During an upgrade, a chunk written before the rows' final form (Estimates without row
    numbers, defaults left out) reads back as the same rows, as JSON and as CSV."""
    accepted = api.post("/v1/batch", json={"rows": as_rows(future_examples.head(35))}).json()
    status_url = accepted["status_url"]
    wait_done(api, status_url)
    now = api.get(status_url, timeout=10)
    now_csv = api.get(status_url, params={"format": "csv"}, timeout=10).text
    results = names.job_results_key(accepted["job_id"])
    client = stack.redis_client()
    rows = json.loads(client.hget(results, "1"))  # rows 30-34
    estimates = [Estimate.model_validate(row) for row in rows]
    older = TypeAdapter(list[Estimate]).dump_json(estimates, exclude_defaults=True)
    client.hset(results, "1", older)
    assert not client.hget(results, "1").startswith('[{"row":')
    assert api.get(status_url, timeout=10).content == now.content
    assert api.get(status_url, params={"format": "csv"}, timeout=10).text == now_csv


def test_csv_batch_in_and_csv_results_out(api: requests.Session, future_examples: pd.DataFrame):
    body = future_examples.to_csv(index=False)
    submitted = api.post("/v1/batch", data=body, headers={"content-type": "text/csv"})
    assert submitted.status_code == 202, submitted.text
    status_url = submitted.json()["status_url"]
    assert wait_done(api, status_url)["status"] == "succeeded"
    as_csv = api.get(status_url, params={"format": "csv"}, timeout=10)
    assert as_csv.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(records) == 100
    assert list(records[0]) == [
        "row",
        "prediction",
        "low_80",
        "high_80",
        "low_95",
        "high_95",
        "confidence",
        "fsd",
        "as_of",
        "warnings",
        "model_version",
    ]
    by_accept = api.get(status_url, headers={"accept": "text/csv"}, timeout=10)
    assert by_accept.text == as_csv.text


def test_status_reports_progress_fields(api: requests.Session, future_examples: pd.DataFrame):
    accepted = api.post("/v1/batch", json={"rows": as_rows(future_examples)}).json()
    first = api.get(accepted["status_url"], timeout=10).json()
    assert first["status"] in ("queued", "running", "succeeded")
    assert first["rows_total"] == 100
    assert 0 <= first["rows_done"] <= 100
    assert 0 < first["expires_in_s"] <= 24 * 3600


def test_a_bad_row_is_named_by_index_and_field(api: requests.Session, future_examples):
    rows = as_rows(future_examples.head(10))
    rows[7]["bedrooms"] = -3
    response = api.post("/v1/batch", json={"rows": rows})
    assert response.status_code == 422
    assert ["body", "rows", 7, "bedrooms"] in [e["loc"] for e in response.json()["detail"]]


def test_unknown_zipcode_in_a_batch_is_named_with_its_row(api: requests.Session, future_examples):
    rows = as_rows(future_examples.head(5))
    rows[3]["zipcode"] = "99999"
    response = api.post("/v1/batch", json={"rows": rows})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "rows", 3, "zipcode"]


def test_many_bad_rows_give_a_capped_readable_answer(api: requests.Session, future_examples):
    rows = [row | {"grade": 99} for row in as_rows(future_examples)]
    detail = api.post("/v1/batch", json={"rows": rows}).json()["detail"]
    assert len(detail) == 21
    assert "100 errors" in detail[-1]["msg"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"houses": []}', "application/json"),
        ('{"rows": []}', "application/json"),
        ("not json", "application/json"),
        ('bedrooms,bathrooms\n"unterminated', "text/csv"),
    ],
)
def test_malformed_batch_gets_422(api: requests.Session, body: str, content_type: str):
    response = api.post("/v1/batch", data=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text


def test_csv_header_problems_are_named_once(api: requests.Session, future_examples):
    frame = future_examples.drop(columns=["grade"]).assign(colour="red")
    response = api.post(
        "/v1/batch", data=frame.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert "missing column(s) ['grade']" in error["msg"]
    assert "unknown column(s) ['colour']" in error["msg"]


def test_unknown_top_level_field_is_rejected(api: requests.Session, future_examples):
    body = {"rows": as_rows(future_examples.head(2)), "model": "v2"}
    response = api.post("/v1/batch", json=body)
    assert response.status_code == 422
    assert "model" in response.json()["detail"][0]["msg"]


def test_other_content_types_get_415(api: requests.Session):
    response = api.post("/v1/batch", data="x", headers={"content-type": "application/xml"})
    assert response.status_code == 415


def test_too_many_rows_get_413(api: requests.Session, future_examples: pd.DataFrame):
    rows = as_rows(future_examples.head(1)) * 5_001  # the test stack allows 5,000
    response = api.post("/v1/batch", json={"rows": rows})
    assert response.status_code == 413
    assert "5,000" in response.json()["detail"]


def test_too_large_body_gets_413_even_when_streamed(api: requests.Session):
    response = api.post("/v1/batch", data=streamed(3_000_000), headers={"content-type": "text/csv"})
    assert response.status_code == 413


def test_unknown_job_gets_404_with_a_clear_message(api: requests.Session):
    response = api.get("/v1/batch/0123456789abcdef")
    assert response.status_code == 404
    assert "unknown" in response.json()["detail"]
