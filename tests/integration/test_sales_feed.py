"""Sale prices fed back to a running service: `POST /v1/sales` (JSON and CSV, batch or admin
keys) and `realty sales import`, on real processes and a real PostgreSQL. Impossible rows and
duplicates are refused with the row named, and then nothing is recorded."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from postgres import Postgres
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from stack import REPO, Stack, as_rows, running_stack

from shared.model.bundles import latest_version
from shared.records.schema import estimates, sales
from shared.tools.procs import wait_for
from shared.wire.api_keys import Role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Stack]:
    """The repository's newest bundle, served by a worker pool (whose recorder writes the
    record), with the module's PostgreSQL."""
    with running_stack(
        tmp_path_factory.mktemp("sales"),
        workers=0,
        pools=("pool1",),
        active=latest_version(REPO / "model_artifacts"),
        live_cache_s=0,  # every scrape reads the record: the outage shows at once
        **postgres.stack_settings(),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def batch_key(service: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.key('crm-import', Role.BATCH)}"}


def count(owner: Engine, table: Any) -> int:
    with owner.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)) or 0


def estimated(service: Stack, owner: Engine, houses: list[dict[str, Any]]) -> list[str]:
    """The request ids of `houses` estimated one by one, once they are on record."""
    ids = []
    for house in houses:
        answer = service.http.post(f"{service.api_url}/v1/predict", json=house, timeout=30)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["request_id"])

    def on_record() -> bool:
        with owner.connect() as connection:
            query = select(func.count()).select_from(estimates)
            return connection.scalar(query.where(estimates.c.request_id.in_(ids))) == len(ids)

    wait_for(on_record, 60, "the estimates on record")
    return ids


def post_sales(service: Stack, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(f"{service.api_url}/v1/sales", headers=headers, timeout=30, **kwargs)


def test_sales_by_request_id_as_json_and_as_csv(
    service: Stack, owner: Engine, batch_key: dict[str, str], future_rows: list[dict]
) -> None:
    ids = estimated(service, owner, future_rows[:4])
    before = count(owner, sales)
    answer = post_sales(
        service,
        batch_key,
        json={"sales": [{"request_id": ids[0], "price": 500_000, "date": "2026-01-15"}]},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"recorded": 1, "matched_by_house": 0}
    body = "request_id,price,date\n" + "".join(
        f"{i},{450_000 + n},2026-02-01\n" for n, i in enumerate(ids[1:])
    )
    answer = post_sales(service, batch_key | {"content-type": "text/csv"}, data=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["recorded"] == 3
    assert count(owner, sales) == before + 4
    with owner.connect() as connection:
        reported = connection.execute(
            select(sales.c.request_id, sales.c.price, sales.c.key_name, sales.c.source).where(
                sales.c.request_id == ids[1]
            )
        ).one()
    assert tuple(reported) == (ids[1], 450_000.0, "crm-import", "api")


def test_a_sale_by_the_house_is_linked_to_its_latest_estimate(
    service: Stack, owner: Engine, batch_key: dict[str, str], future_rows: list[dict]
) -> None:
    house = future_rows[10]
    first, latest = estimated(service, owner, [house, house])
    answer = post_sales(
        service, batch_key, json={"sales": [house | {"price": 610_000, "date": "2026-03-01"}]}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"recorded": 1, "matched_by_house": 1}
    with owner.connect() as connection:
        linked = connection.scalar(select(sales.c.request_id).where(sales.c.price == 610_000))
    assert linked == latest != first


def test_an_agent_key_may_not_report_sales(service: Stack, future_rows: list[dict]) -> None:
    agent = {"Authorization": f"Bearer {service.key('anna.lee', Role.AGENT)}"}
    body = {"sales": [{"request_id": "x", "price": 500_000, "date": "2026-01-15"}]}
    answer = post_sales(service, agent, json=body)
    assert answer.status_code == 403
    assert "batch" in answer.json()["detail"]
    assert post_sales(service, {}, json=body).status_code == 401


def test_impossible_rows_and_duplicates_are_refused_by_row_and_nothing_is_recorded(
    service: Stack, owner: Engine, batch_key: dict[str, str], future_rows: list[dict]
) -> None:
    ids = estimated(service, owner, future_rows[20:23])
    good = {"request_id": ids[0], "price": 500_000, "date": "2026-01-15"}
    assert post_sales(service, batch_key, json={"sales": [good]}).status_code == 201
    before = count(owner, sales)
    answer = post_sales(
        service,
        batch_key,
        json={
            "sales": [
                {"request_id": ids[1], "price": 500_000, "date": "2026-01-15"},  # good alone
                good,  # already on record
                {"request_id": ids[1], "price": 520_000, "date": "2026-01-16"},  # twice here
                {"request_id": ids[2], "price": -1, "date": "2026-01-15"},
                {"request_id": ids[2], "price": 500_000, "date": "2999-01-01"},
                {"request_id": "no-such-estimate", "price": 500_000, "date": "2026-01-15"},
            ]
        },
    )
    assert answer.status_code == 422, answer.text
    problems = [(e["loc"], e["msg"]) for e in answer.json()["detail"]]
    assert [loc for loc, _ in problems] == [
        ["body", "sales", 1, "request_id"],
        ["body", "sales", 2, "request_id"],
        ["body", "sales", 3, "price"],
        ["body", "sales", 4, "date"],
        ["body", "sales", 5, "request_id"],
    ]
    assert problems[0][1].startswith(f"row 1, request_id: a sale of estimate {ids[0]} was ")
    assert problems[1][1] == (
        f"row 2, request_id: row 0 already reports the sale of estimate {ids[1]}"
    )
    assert "not plausible" in problems[2][1] and "in the future" in problems[3][1]
    assert problems[4][1] == "row 5, request_id: no recorded estimate 'no-such-estimate'"
    assert count(owner, sales) == before  # row 0 was good, and is not recorded either


def test_rows_valid_on_their_own_that_the_record_contradicts_get_a_409(
    service: Stack, owner: Engine, batch_key: dict[str, str], future_rows: list[dict]
) -> None:
    [sold] = estimated(service, owner, future_rows[25:26])
    first = {"request_id": sold, "price": 500_000, "date": "2026-01-15"}
    assert post_sales(service, batch_key, json={"sales": [first]}).status_code == 201
    answer = post_sales(
        service,
        batch_key,
        json={"sales": [first, {"request_id": "unknown", "price": 500_000, "date": "2026-01-15"}]},
    )
    assert answer.status_code == 409, answer.text
    assert [e["loc"] for e in answer.json()["detail"]] == [
        ["body", "sales", 0, "request_id"],
        ["body", "sales", 1, "request_id"],
    ]


def test_bodies_that_are_not_sales_are_refused_plainly(
    service: Stack, batch_key: dict[str, str]
) -> None:
    csv_headers = batch_key | {"content-type": "text/csv"}
    cases = [
        (batch_key, {"json": {"rows": []}}, 422, 'expected a JSON object {"sales"'),
        (batch_key, {"json": {"sales": []}}, 422, "no sales in the body"),
        (
            csv_headers,
            {"data": "request_id,prise,date\nx,1,2026-01-01\n"},
            422,
            "CSV header: missing column(s) ['price']; unknown column(s) ['prise']",
        ),
        (csv_headers, {"data": "request_id,price,date\nx,1\n"}, 422, "CSV line 2 has 2 cells"),
        (batch_key | {"content-type": "text/plain"}, {"data": "x"}, 415, "text/csv"),
    ]
    for headers, body, status, words in cases:
        answer = post_sales(service, headers, **body)
        assert answer.status_code == status, (body, answer.text)
        detail = answer.json()["detail"]
        said = detail if isinstance(detail, str) else " ".join(e["msg"] for e in detail)
        assert words in said, (body, said)


def test_realty_sales_import_records_a_file_or_names_its_bad_rows(
    service: Stack, owner: Engine, future_examples: pd.DataFrame, tmp_path: Path
) -> None:
    ids = estimated(service, owner, as_rows(future_examples.iloc[30:33]))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"request_id,price,date\n{ids[0]},500000,2026-01-15\n{ids[1]},0,2026-01-15\n")
    before = count(owner, sales)
    refused = service.realty("sales", "import", str(bad))
    assert refused.returncode == 1
    assert f"{bad}: row 1, price: a price of $0 is not plausible" in refused.stderr
    assert count(owner, sales) == before
    good = tmp_path / "good.csv"
    good.write_text("request_id,price,date\n" + "".join(f"{i},500000,2026-01-15\n" for i in ids))
    imported = service.realty("sales", "import", str(good))
    assert imported.returncode == 0, imported.stderr
    assert f"recorded 3 sales from {good}" in imported.stdout
    with owner.connect() as connection:
        query = select(sales.c.source, sales.c.key_name).where(sales.c.request_id == ids[2])
        source, key_name = connection.execute(query).one()
    assert source == "import" and key_name.startswith("cli:")


def test_without_postgresql_sales_get_a_503_and_metrics_still_answer(
    service: Stack, postgres: Postgres, batch_key: dict[str, str]
) -> None:
    postgres.stop()
    try:
        body = {"sales": [{"request_id": "x", "price": 500_000, "date": "2026-01-15"}]}
        answer = post_sales(service, batch_key, json=body)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"]
        assert "nothing was recorded" in answer.json()["detail"]
        scraped = service.http.get(f"{service.api_url}/metrics", timeout=60)
        assert scraped.status_code == 200
        samples = {
            s.name: s.value
            for family in text_string_to_metric_families(scraped.text)
            for s in family.samples
        }
        assert samples["realty_live_figures_up"] == 0
        assert "realty_queue_depth" in samples
    finally:
        postgres.start()
