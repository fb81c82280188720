"""Models, activation, readiness and metrics in process."""

import subprocess
import sys

import pytest
from fake_keys import KEY_OF, bearer
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.wire.api_keys import Role


def test_models_lists_versions_with_their_workers_and_area(client):
    (model,) = client.get("/v1/models").json()
    assert model["version"] == "v2" and model["active"] is True
    assert model["workers"] == 2 and model["zipcodes"] == ["98118", "98103"]


def test_activation_by_an_admin_moves_the_pointer_and_says_what_it_replaced(client, fakes):
    answer = client.post("/v1/models/v3/activate", headers=bearer(Role.ADMIN))
    assert answer.json() == {"active": "v3", "previous": "v1"}
    assert fakes.versions.activated == ["v3"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": ""}, 401),
        ({"Authorization": "Bearer rk_0000000000000009_" + "x" * 43}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        (bearer(Role.AGENT), 403),
        (bearer(Role.BATCH), 403),
        (bearer(Role.ADMIN) | {"Origin": "https://elsewhere.example"}, 403),
    ],
    ids=["no-key", "unknown-key", "not-bearer", "agent", "batch", "cross-site"],
)
def test_only_an_admin_key_from_no_other_site_may_activate(client, fakes, headers, status):
    assert client.post("/v1/models/v3/activate", headers=headers).status_code == status
    assert fakes.versions.activated == []


def test_the_service_s_own_origin_and_the_x_api_key_header_are_accepted(client, fakes):
    headers = {"Authorization": "", "X-API-Key": KEY_OF[Role.ADMIN], "Origin": "http://testserver"}
    assert client.post("/v1/models/v3/activate", headers=headers).status_code == 200


def test_a_version_name_that_is_not_one_is_refused_before_anything_else(client, fakes):
    answer = client.post("/v1/models/..%2F..%2Fx/activate", headers=bearer(Role.ADMIN))
    assert answer.status_code in (404, 422)
    assert fakes.versions.activated == []


def test_activating_a_version_nobody_serves_is_a_409(client, fakes):
    fakes.versions.workers = 0
    assert client.post("/v1/models/v3/activate", headers=bearer(Role.ADMIN)).status_code == 409
    assert fakes.versions.activated == []


def test_every_route_but_health_needs_a_key(client):
    client.headers.pop("Authorization")
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/v1/predict"),
        ("POST", "/v1/predict/minimal"),
        ("POST", "/v1/batch"),
        ("GET", "/v1/batch/j1"),
    ]:
        assert client.request(method, path, json={}).status_code == 401, path
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_ready_needs_an_active_version_with_workers_and_a_reply_reader(client, fakes):
    assert client.get("/health/ready").status_code == 200
    fakes.inbox.reading = False
    assert "reads no replies" in client.get("/health/ready").json()["reason"]
    fakes.inbox.reading = True
    fakes.versions.workers = 0
    not_ready = client.get("/health/ready")
    assert not_ready.status_code == 503 and not_ready.headers["retry-after"] == "7"


def test_ready_is_a_503_while_redis_keeps_nothing_on_disk(client, fakes):
    fakes.versions.persistent = False  # a crash would lose jobs already answered 202
    not_ready = client.get("/health/ready")
    assert not_ready.status_code == 503
    assert "without persistence" in not_ready.json()["reason"]


def test_ready_is_a_503_while_redis_is_away_and_live_stays_200(client, fakes):
    fakes.versions.fail = RedisConnectionError("Connection refused")
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/live").status_code == 200


def test_metrics_are_for_admins(client):
    assert client.get("/metrics", headers=bearer(Role.AGENT)).status_code == 403
    text = client.get("/metrics", headers=bearer(Role.ADMIN)).text
    assert 'realty_queue_depth{queue="batch",version="v2"} 3.0' in text
    assert 'realty_live_workers{version="v2"} 2.0' in text
    assert 'realty_active{version="v2"} 1.0' in text


def test_an_unknown_route_is_a_json_404(client):
    answer = client.get("/v1/nothing")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found", "request_id": answer.headers["x-request-id"]}


def test_the_api_process_loads_none_of_the_model_libraries():
    """The API validates and queues; pandas, NumPy, scikit-learn and LightGBM are the workers'."""
    code = (
        "import sys; from api.main import create_app; create_app(); "
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'lightgbm', 'joblib', 'scipy') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
