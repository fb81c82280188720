"""Schemathesis hooks of test_openapi_contract.py (loaded by it through SCHEMATHESIS_HOOKS): the
rules the OpenAPI document states in words because JSON Schema cannot, applied to what
schemathesis generates, so that "valid by the schema" means valid by the whole contract.

- A positive house obeys the cross-field rules the schema lists in `x-cross-field-rules` (the
  service checks them with `shared.model.contract.consistency_errors`) and names a zipcode the
  served model knows ("must be one the model serves"; REALTY_TEST_ZIPCODES, which the test reads
  from GET /v1/models). Negative houses are left as generated.
- A positive `as_of` is a month the served model knows ("a month the model learned from": its
  `as_of_months`, REALTY_TEST_AS_OF_MONTHS), or absent for a model that knows none.
- A CSV batch body is the rows its schema describes, written as CSV with a header line.
- A positive sale is dated no later than today ("not after today").
- No negative CSV body is generated: CSV cells carry no type, so a row made invalid by a type
  alone ("3" for 3, 98118 for "98118") is the same bytes as a valid one, and the service rightly
  accepts it.
"""

import csv
import io
import os
from datetime import UTC, datetime
from typing import Any

import schemathesis
from schemathesis import GenerationMode

from shared.model.contract import FIELDS_BY_NAME, consistency_errors

SERVED_ZIPCODES = os.environ.get("REALTY_TEST_ZIPCODES", "98118").split(",")
AS_OF_MONTHS = [m for m in os.environ.get("REALTY_TEST_AS_OF_MONTHS", "").split(",") if m]
BASEMENT_MAX = int(FIELDS_BY_NAME["sqft_basement"].le or 0)
CSV = "text/csv"


def _lawful(house: Any) -> Any:
    """`house` changed as little as the documented rules need, all fields staying in bounds."""
    if not isinstance(house, dict):
        return house
    house = dict(house)
    if {"sqft_living", "sqft_above", "sqft_basement"} <= house.keys():
        basement = min(max(house["sqft_living"] - house["sqft_above"], 0), BASEMENT_MAX)
        house["sqft_basement"] = basement
        house["sqft_above"] = house["sqft_living"] - basement  # in [100, 60000] as living is
    if {"yr_built", "yr_renovated"} <= house.keys() and house["yr_renovated"] > 0:
        house["yr_renovated"] = max(house["yr_renovated"], house["yr_built"])
    if "zipcode" in house:
        house["zipcode"] = SERVED_ZIPCODES[int(house["zipcode"]) % len(SERVED_ZIPCODES)]
    assert not consistency_errors(house), house  # the rules here are the service's
    return house


def _lawful_body(path: str, body: Any) -> Any:
    if path in ("/v1/predict", "/v1/predict/minimal"):
        return _lawful(body)
    if path == "/v1/batch" and isinstance(body, dict) and isinstance(body.get("rows"), list):
        return body | {"rows": [_lawful(row) for row in body["rows"]]}
    if path == "/v1/batch" and isinstance(body, list):  # the CSV variant: its rows
        return [_lawful(row) for row in body]
    if path == "/v1/sales" and isinstance(body, dict) and isinstance(body.get("sales"), list):
        return body | {"sales": [_sold_by_today(sale) for sale in body["sales"]]}
    if path == "/v1/sales" and isinstance(body, list):  # the CSV variant: its rows
        return [_sold_by_today(sale) for sale in body]
    return body


def _sold_by_today(sale: Any) -> Any:
    """A sale dated after today moved to today ("not after today", the schema says)."""
    today = datetime.now(UTC).date().isoformat()
    if isinstance(sale, dict) and isinstance(sale.get("date"), str) and sale["date"] > today:
        return sale | {"date": today}
    return sale


def _mode(case: schemathesis.Case) -> GenerationMode | None:
    return case.meta.generation.mode if case.meta is not None else None


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    return not (case.media_type == CSV and _mode(case) == GenerationMode.NEGATIVE)


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    if _mode(case) == GenerationMode.POSITIVE and case.method == "POST":
        case.body = _lawful_body(case.path, case.body)
        if isinstance(case.query, dict) and "as_of" in case.query:
            case.query = _lawful_as_of(case.query)
    return case


def _lawful_as_of(query: dict[str, Any]) -> dict[str, Any]:
    """The generated month moved into the served model's months (kept within its year's
    months so the pattern still holds), or dropped where the model knows none."""
    query = dict(query)
    if not AS_OF_MONTHS:
        del query["as_of"]
        return query
    first, last = AS_OF_MONTHS
    query["as_of"] = min(max(str(query["as_of"]), first), last)
    return query


@schemathesis.serializer(CSV)
def rows_as_csv(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """The rows as a client's CSV file; a string (the schema's own example) is sent as it is."""
    if isinstance(value, str):
        return value.encode()
    out = io.StringIO()
    rows = value if isinstance(value, list) else [value]
    columns = list(dict.fromkeys(k for row in rows if isinstance(row, dict) for k in row))
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns] if isinstance(row, dict) else [row])
    return out.getvalue().encode()
