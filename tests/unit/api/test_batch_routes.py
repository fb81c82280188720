"""POST /v1/batch and GET /v1/batch/{id} in process: JSON and CSV bodies become the same rows,
bad bodies are named, and results come back as JSON or CSV."""

import csv
import io
import json
from typing import Any

import pytest
from fake_jobs import finished, succeeded

from api.job_store import BatchJob
from api.routes.batch import CSV_COLUMNS, status_json
from api.schemas import BatchStatus
from shared.wire.messages import Comp, Estimate, PriceRange


def as_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def post_csv(client, text: str):
    return client.post("/v1/batch", content=text, headers={"content-type": "text/csv"})


def test_a_csv_body_becomes_the_same_rows_as_its_json(client, fakes, future_rows):
    rows = [row | {"zipcode": "98118"} for row in future_rows[:5]]  # the fakes' served area
    assert client.post("/v1/batch", json={"rows": rows}).status_code == 202
    accepted = post_csv(client, as_csv(rows))
    assert accepted.status_code == 202
    assert accepted.json()["rows_total"] == 5 and accepted.json()["model_version"] == "v2"
    from_json, from_csv = fakes.batch_jobs.submitted
    assert from_csv == from_json
    assert isinstance(from_csv[0]["zipcode"], str)


def test_csv_cells_are_read_as_a_json_client_would_send_them(client, fakes, house):
    row = house | {"zipcode": "98103", "id": 7129300520, "date": "20141013T000000"}
    assert post_csv(client, "\ufeff" + as_csv([row])).status_code == 202  # with a BOM
    (submitted,) = fakes.batch_jobs.submitted
    assert submitted[0]["zipcode"] == "98103" and "id" not in submitted[0]


def test_csv_header_problems_are_named_once(client, house):
    row = {k: v for k, v in house.items() if k != "grade"} | {"garage": 1}
    (error,) = post_csv(client, as_csv([row, row])).json()["detail"]
    assert "missing column(s) ['grade']" in error["msg"] and "['garage']" in error["msg"]


def test_a_short_csv_line_is_named_by_its_line(client, house):
    text = as_csv([house]) + "1,2\n"
    (error,) = post_csv(client, text).json()["detail"]
    assert "CSV line 3" in error["msg"]


def test_an_unreadable_csv_is_a_422_not_a_500(client):
    answer = post_csv(client, 'bedrooms,bathrooms\n"unterminated')
    assert answer.status_code == 422


def test_bad_rows_are_located_by_row_and_field_and_capped(client, house):
    rows = [house | {"bedrooms": -1} for _ in range(30)]
    detail = client.post("/v1/batch", json={"rows": rows}).json()["detail"]
    assert detail[0]["loc"] == ["body", "rows", 0, "bedrooms"]
    assert len(detail) == 21 and "30 errors in 30 rows" in detail[-1]["msg"]


def test_an_unserved_zipcode_is_named_with_its_row(client, house):
    rows = [house, house | {"zipcode": "98039"}]
    (error,) = client.post("/v1/batch", json={"rows": rows}).json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "zipcode"]


def test_too_many_rows_is_a_413_and_no_rows_a_422(client, house):
    assert client.post("/v1/batch", json={"rows": [house] * 151}).status_code == 413
    assert client.post("/v1/batch", json={"rows": []}).status_code == 422


def test_a_body_that_is_not_the_rows_object_is_named(client):
    for body in ('["a"]', '{"rows": [], "extra": 1}', "{", "[" * 100_000):
        answer = client.post(
            "/v1/batch", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, body[:20]


def test_a_batch_in_another_media_type_is_a_415(client):
    answer = client.post("/v1/batch", content="x", headers={"content-type": "text/plain"})
    assert answer.status_code == 415


def test_an_unknown_job_is_a_404(client):
    answer = client.get("/v1/batch/nope")
    assert answer.status_code == 404 and "nope" in answer.json()["detail"]


def test_results_come_as_json_or_csv(client, fakes):
    fakes.batch_jobs.statuses["j1"] = succeeded("j1", 1.5, 2.25)
    assert client.get("/v1/batch/j1").json()["results"][1]["prediction"] == 2.25
    as_text = client.get("/v1/batch/j1", params={"format": "csv"})
    assert as_text.headers["content-type"].startswith("text/csv")
    assert as_text.text.splitlines() == [
        "row,prediction,low_80,high_80,low_95,high_95,confidence,fsd,as_of,warnings,model_version",
        "0,1.5,,,,,,,,,v2",
        "1,2.25,,,,,,,,,v2",
    ]
    by_accept = client.get("/v1/batch/j1", headers={"accept": "text/csv"})
    assert by_accept.text == as_text.text


def test_csv_results_carry_each_rows_ranges_grade_month_and_warnings(client, fakes):
    fakes.batch_jobs.statuses["j1"] = succeeded(
        "j1",
        400000.0,
        interval_80=PriceRange(low=360000.0, high=440000.0),
        interval_95=PriceRange(low=330000.0, high=480000.0),
        confidence="B",
        fsd=0.09,
        as_of="2015-05",
        warnings=["sqft_lot is large", "yr_built is old"],
    )
    (line,) = list(csv.DictReader(io.StringIO(client.get("/v1/batch/j1?format=csv").text)))
    assert line == {
        "row": "0",
        "prediction": "400000.0",
        "low_80": "360000.0",
        "high_80": "440000.0",
        "low_95": "330000.0",
        "high_95": "480000.0",
        "confidence": "B",
        "fsd": "0.09",
        "as_of": "2015-05",
        "warnings": "sqft_lot is large | yr_built is old",
        "model_version": "v2",
    }


def test_a_job_asks_for_a_month_and_comps_which_its_csv_then_carries(client, fakes, house):
    answer = client.post("/v1/batch?as_of=2015-01&comps=3", json={"rows": [house]})
    assert answer.status_code == 202
    assert fakes.batch_jobs.options == [("2015-01", 3)]
    fakes.batch_jobs.statuses["j1"] = succeeded("j1", 400000.0, comps=3)
    header = client.get("/v1/batch/j1?format=csv").text.splitlines()[0]
    assert header.endswith(",model_version,comps")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("as_of=2015-13", "as_of"),
        ("as_of=May", "as_of"),
        ("comps=11", "comps"),
        ("comps=-1", "comps"),
    ],
)
def test_bad_batch_options_are_named_before_the_body_is_read(client, fakes, house, query, named):
    answer = client.post(f"/v1/batch?{query}", json={"rows": [house]})
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", named]]
    assert fakes.batch_jobs.submitted == []


def test_a_month_the_model_does_not_know_is_a_422_naming_its_months(client, fakes, house):
    answer = client.post("/v1/batch?as_of=2016-01", json={"rows": [house]})
    assert answer.status_code == 422
    assert "2014-05 to 2015-05" in answer.json()["detail"][0]["msg"]


def _job_with(rows: int, chunk_rows: int = 1_000) -> BatchJob:
    comp = Comp(
        id="1",
        sale_date="2015-03-01",
        price=400_000.0,
        price_as_of=410_000.0,
        distance_miles=None,
        bedrooms=3,
        bathrooms=2.5,
        sqft_living=1_800,
        grade=7,
        similarity=0.9,
    )
    estimates = [
        Estimate(
            prediction=350_000.0 + i,
            interval_80=PriceRange(low=300_000.0, high=400_000.5) if i % 3 else None,
            confidence="B" if i % 2 else None,
            fsd=0.1234 if i % 2 else None,
            as_of="2015-05",
            warnings=['sqft_lot 1e+06 is "above"'] if i % 7 == 0 else [],
            comps=[comp] if i % 5 == 0 else [],
        )
        for i in range(rows)
    ]
    return finished("j", estimates, version="v4", chunk_rows=chunk_rows, comps=1)


@pytest.mark.parametrize("rows", [0, 1, 999, 1_000, 2_501])
def test_a_status_splices_its_rows_exactly_as_pydantic_writes_the_whole_status(rows):
    """The rows are answered as the workers wrote them, never validated again."""
    job = _job_with(rows)
    written = [row for chunk in job.results.chunks for row in json.loads(chunk)]
    whole = BatchStatus.model_validate(job.status.model_dump() | {"results": written})
    assert b"".join(status_json(job.status, job.results)) == whole.model_dump_json().encode()


def test_results_over_many_chunks_come_whole_with_their_length_declared(client, fakes):
    fakes.batch_jobs.statuses["j"] = _job_with(2_501, chunk_rows=100)
    answer = client.get("/v1/batch/j")
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert [row["row"] for row in answer.json()["results"]] == list(range(2_501))
    lines = list(csv.DictReader(io.StringIO(client.get("/v1/batch/j?format=csv").text)))
    assert [int(line["row"]) for line in lines] == list(range(2_501))
    assert json.loads(lines[0]["comps"])[0]["id"] == "1"  # row 0 has a comparable sale
    assert lines[7]["warnings"] == 'sqft_lot 1e+06 is "above"'


def test_a_job_without_rows_answers_the_csv_header_alone(client, fakes):
    fakes.batch_jobs.statuses["j"] = _job_with(0)
    answer = client.get("/v1/batch/j?format=csv")
    assert answer.text.splitlines() == [",".join(CSV_COLUMNS) + ",comps"]
