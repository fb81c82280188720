"""The contract is honest, in process: the OpenAPI document states the cross-field rules the
service enforces, its examples are accepted, every answer's media type and error shape is
declared, and it is a valid document (unique operation ids). The whole document against a real
stack, by schemathesis, is tests/integration/test_openapi_contract.py."""

import csv
import io
import warnings
from typing import Any

import pytest
from fake_jobs import succeeded

from api.main import create_app
from api.schemas import CROSS_FIELD_RULES, EXAMPLE_HOUSE
from shared.model.contract import consistency_errors


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of duplicate operation ids
        return create_app().openapi()


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


# One way to break each rule, starting from the example house.
BROKEN = {
    "sqft_above + sqft_basement == sqft_living": {"sqft_basement": 100},
    "yr_renovated == 0 or yr_renovated >= yr_built": {"yr_renovated": 1900},
}


@pytest.mark.parametrize("rule", CROSS_FIELD_RULES, ids=lambda r: r["rule"])
def test_each_stated_rule_is_one_the_service_enforces(rule):
    assert consistency_errors(EXAMPLE_HOUSE) == []
    problems = consistency_errors(EXAMPLE_HOUSE | BROKEN[rule["rule"]])
    assert [field for field, _ in problems] and all(f in rule["fields"] for f, _ in problems)


def test_every_rule_the_service_enforces_is_stated():
    """Each field a broken house is refused at belongs to a stated rule: a new rule in the
    contract fails here until it is stated in the document too."""
    stated = {f for rule in CROSS_FIELD_RULES for f in rule["fields"]}
    houses = [
        EXAMPLE_HOUSE | {"sqft_above": 100},
        EXAMPLE_HOUSE | {"sqft_living": 5_000},
        EXAMPLE_HOUSE | {"yr_built": 2020, "yr_renovated": 2000},
    ]
    refused_at = {field for house in houses for field, _ in consistency_errors(house)}
    assert refused_at and refused_at <= stated


@pytest.mark.parametrize(("model", "rules"), [("HouseFull", 2), ("HouseMinimal", 1)])
def test_house_schemas_state_their_cross_field_rules(document, model, rules):
    schema = schema_of(document, model)
    assert len(schema["x-cross-field-rules"]) == rules
    for rule in schema["x-cross-field-rules"]:
        assert rule["rule"] in schema["description"]
        assert set(rule["fields"]) <= schema["properties"].keys()


def test_a_zipcode_is_declared_as_the_text_or_number_the_service_takes(document, client, house):
    accepted = schema_of(document, "HouseFull")["properties"]["zipcode"]["anyOf"]
    assert {a["type"] for a in accepted} == {"string", "integer"}
    assert client.post("/v1/predict", json=house | {"zipcode": 98118}).status_code == 200


@pytest.mark.parametrize(
    ("model", "path"), [("HouseFull", "/v1/predict"), ("HouseMinimal", "/v1/predict/minimal")]
)
def test_the_house_examples_are_accepted(document, client, fakes, model, path):
    (example,) = schema_of(document, model)["examples"]
    assert client.post(path, json=example).status_code == 200
    assert fakes.predictions.asked[0]["house"] == example


def test_the_example_house_is_the_first_future_example(future_rows):
    assert future_rows[0] == EXAMPLE_HOUSE


@pytest.mark.parametrize("media", ["application/json", "text/csv"])
def test_the_batch_body_examples_are_accepted(document, client, fakes, media):
    body = document["paths"]["/v1/batch"]["post"]["requestBody"]["content"][media]
    example = body["example"]
    if media == "application/json":
        answer = client.post("/v1/batch", json=example)
    else:
        answer = client.post("/v1/batch", content=example, headers={"content-type": media})
    assert answer.status_code == 202, answer.text
    assert fakes.batch_jobs.submitted == [[EXAMPLE_HOUSE]]


def test_the_csv_results_are_declared_and_answered_as_declared(document, client, fakes):
    declared = document["paths"]["/v1/batch/{job_id}"]["get"]["responses"]["200"]["content"]
    assert set(declared) == {"application/json", "text/csv"}
    fakes.batch_jobs.statuses["j1"] = succeeded("j1", 352937.55)
    answer = client.get("/v1/batch/j1?format=csv")
    assert answer.headers["content-type"].split(";")[0] in declared
    example = list(csv.reader(io.StringIO(declared["text/csv"]["example"])))
    answered = list(csv.reader(io.StringIO(answer.text)))
    assert answered[0] == example[0]  # the same columns, in the same order
    assert [len(line) for line in answered] == [len(line) for line in example]


def test_every_error_answer_is_declared_in_the_one_error_shape(document):
    for path in ("/v1/predict", "/v1/predict/minimal", "/v1/batch"):
        responses = document["paths"][path]["post"]["responses"]
        errors = {s: r for s, r in responses.items() if s.startswith(("4", "5"))}
        assert {"401", "413", "415", "422", "429", "503"} <= errors.keys()
        for answer in errors.values():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert schema_of(document, "ErrorBody")["required"] == ["detail", "request_id"]


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_document_says_which_routes_need_a_key(client) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            needs_key = bool(operation.get("security"))
            assert needs_key == (not path.startswith("/health/")), path
