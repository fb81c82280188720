"""The API's request metrics (api/metrics.py) and who may read them (api/scrape_access.py), on
the app in process: counted by route template and status, errors by type, the replies' trip,
and `/metrics` open to the scrape token and admin keys only."""

import pytest
from fake_keys import bearer
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from api import metrics
from api.errors import (
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    TooManyRequestsError,
)
from shared.settings import Settings
from shared.wire.api_keys import Role
from shared.wire.messages import EstimateReply

TOKEN = "scrape-token-for-tests-0123456789abcdefghijklmnop"


def count(route: str, status: int, method: str = "GET") -> float:
    metrics.flush()
    labels = {"method": method, "route": route, "status": str(status)}
    value = metrics.REGISTRY.get_sample_value("realty_http_request_duration_seconds_count", labels)
    return value or 0.0


def errors(kind: str) -> float:
    value = metrics.REGISTRY.get_sample_value("realty_api_errors_total", {"type": kind})
    return value or 0.0


@pytest.fixture
def scraped(app_on):
    """A client of the app whose scrape token is TOKEN."""
    with app_on(Settings(metrics_token=TOKEN)) as client:
        yield client


def test_requests_are_counted_by_route_template_never_by_raw_path(client):
    before = count("/v1/batch/{job_id}", 404)
    for job in ("j1", "j2", "a-job-nobody-made"):
        assert client.get(f"/v1/batch/{job}").status_code == 404
    assert count("/v1/batch/{job_id}", 404) == before + 3
    assert count("/v1/batch/j1", 404) == 0


def test_paths_no_route_has_share_one_series(client):
    before = count("unmatched", 404)
    for path in ("/v1/nothing", "/wp-admin/x.php", "/v1/predict/../../etc"):
        client.get(path)
    assert count("unmatched", 404) == before + 3


def test_an_invented_method_is_counted_as_other(client):
    before = count("/v1/models", 405, method="other")
    assert client.request("BREW", "/v1/models").status_code == 405
    assert count("/v1/models", 405, method="other") == before + 1


def test_error_answers_are_counted_by_their_type(client):
    unauthorized, not_found = errors("unauthorized"), errors("not_found")
    client.get("/v1/models", headers={"Authorization": "Bearer rk_wrong"})
    client.get("/v1/batch/missing")
    assert errors("unauthorized") == unauthorized + 1
    assert errors("not_found") == not_found + 1


def test_a_house_body_refused_unread_is_counted_too(client):
    too_large = errors("payload_too_large")
    before = count("/v1/predict", 413, method="POST")
    body = b"{" + b" " * (70 * 1024) + b"}"
    headers = {"Content-Type": "application/json", **bearer(Role.AGENT)}
    assert client.post("/v1/predict", content=body, headers=headers).status_code == 413
    assert errors("payload_too_large") == too_large + 1
    # Refused before routing, and still counted under the route it was sent to.
    assert count("/v1/predict", 413, method="POST") == before + 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidInputError("bad"), "invalid_input"),
        (TooManyRequestsError("slow down", 2.0), "too_many_requests"),
        (PayloadTooLargeError("big"), "payload_too_large"),
        (NotFoundError("gone"), "not_found"),
        (ServiceError("Method Not Allowed", status_code=405), "http_405"),
        (ServiceError("internal error"), "internal"),
    ],
)
def test_an_error_type_is_its_class_in_snake_case(error: ServiceError, kind: str):
    assert metrics.error_type(error) == kind


def test_a_reply_s_trip_is_observed_in_seconds_and_requests():
    def sample(name: str, suffix: str) -> float:
        value = metrics.REGISTRY.get_sample_value(f"{name}_{suffix}", {"version": "v7"})
        return value or 0.0

    reply = EstimateReply(
        request_id="r1",
        prediction=400000.0,
        model_version="v7",
        model_kind="gbm",
        batch_size=24,
        queued_ms=3.0,
        model_ms=6.0,
    )
    before = {
        name: (sample(name, "count"), sample(name, "sum"))
        for name in (
            "realty_prediction_queued_seconds",
            "realty_prediction_model_seconds",
            "realty_prediction_batch_size",
        )
    }
    metrics.observe_reply(reply)
    metrics.flush()
    expected = {
        "realty_prediction_queued_seconds": 0.003,
        "realty_prediction_model_seconds": 0.006,
        "realty_prediction_batch_size": 24,
    }
    for name, value in expected.items():
        assert sample(name, "count") == before[name][0] + 1
        assert sample(name, "sum") == pytest.approx(before[name][1] + value)


def test_a_tally_flushed_gives_what_observing_directly_gives():
    """The tally adds to prometheus-client's own buckets: its exposition must be the one the
    same observations made one by one would give, bounds and +Inf included."""
    values = [0.0, 0.004, 0.005, 0.0051, 0.15, 0.2, 3.0, 99.0]
    texts = []
    for via_tally in (False, True):
        registry = CollectorRegistry()
        histogram = Histogram("h_seconds", "h", buckets=metrics.LATENCY_BUCKETS, registry=registry)
        if via_tally:
            tally = metrics.Tally(histogram)
            for value in values:
                tally.observe(value)
            tally.flush()
        else:
            for value in values:
                histogram.observe(value)
        texts.append(
            b"\n".join(
                line for line in generate_latest(registry).splitlines() if b"_created" not in line
            )
        )
    assert texts[0] == texts[1]
    assert b'h_seconds_bucket{le="0.005"} 3.0' in texts[1]


def test_the_scrape_token_reads_metrics_with_the_request_metrics(scraped):
    scraped.get("/v1/models")
    answer = scraped.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert 'realty_queue_depth{queue="batch",version="v2"} 3.0' in answer.text
    assert 'realty_queue_limit{version="v2"} 64.0' in answer.text
    assert 'realty_http_request_duration_seconds_count{method="GET",route="/v1/models"' in (
        answer.text
    )


def test_the_scrape_token_opens_nothing_but_metrics(scraped):
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert scraped.get("/v1/models", headers=token).status_code == 401
    assert scraped.get("/v1/batch/j1", headers=token).status_code == 401


def test_metrics_refuse_a_wrong_token_and_keys_below_admin(scraped):
    wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
    assert scraped.get("/metrics", headers=wrong).status_code == 401
    assert scraped.get("/metrics", headers=bearer(Role.BATCH)).status_code == 403
    assert scraped.get("/metrics", headers=bearer(Role.ADMIN)).status_code == 200
