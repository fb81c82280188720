"""Models, activation, readiness and metrics in process."""

import subprocess
import sys

from redis.exceptions import ConnectionError as RedisConnectionError


def test_models_lists_versions_with_their_workers_and_area(client):
    (model,) = client.get("/v1/models").json()
    assert model["version"] == "v2" and model["active"] is True
    assert model["workers"] == 2 and model["zipcodes"] == ["98118", "98103"]


def test_activation_moves_the_pointer_and_says_what_it_replaced(client, fakes):
    answer = client.post("/v1/models/v3/activate")
    assert answer.json() == {"active": "v3", "previous": "v1"}
    assert fakes.versions.activated == ["v3"]


def test_activation_needs_the_admin_token_once_one_is_set(app_on, fakes, settings):
    with app_on(settings.model_copy(update={"admin_token": "s3cret"})) as client:
        assert client.post("/v1/models/v3/activate").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/models/v3/activate", headers=wrong).status_code == 401
        assert fakes.versions.activated == []
        right = {"Authorization": "Bearer s3cret"}
        assert client.post("/v1/models/v3/activate", headers=right).status_code == 200
    assert fakes.versions.activated == ["v3"]


def test_activating_a_version_nobody_serves_is_a_409(client, fakes):
    fakes.versions.workers = 0
    assert client.post("/v1/models/v3/activate").status_code == 409
    assert fakes.versions.activated == []


def test_ready_needs_an_active_version_with_workers_and_a_reply_reader(client, fakes):
    assert client.get("/health/ready").status_code == 200
    fakes.inbox.reading = False
    assert "reads no replies" in client.get("/health/ready").json()["reason"]
    fakes.inbox.reading = True
    fakes.versions.workers = 0
    not_ready = client.get("/health/ready")
    assert not_ready.status_code == 503 and not_ready.headers["retry-after"] == "7"


def test_ready_is_a_503_while_redis_is_away_and_live_stays_200(client, fakes):
    fakes.versions.fail = RedisConnectionError("Connection refused")
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/live").status_code == 200


def test_metrics_show_queue_depths_workers_and_the_active_version(client):
    text = client.get("/metrics").text
    assert 'realty_queue_depth{queue="batch",version="v2"} 3.0' in text
    assert 'realty_live_workers{version="v2"} 2.0' in text
    assert 'realty_active{version="v2"} 1.0' in text


def test_an_unknown_route_is_a_json_404(client):
    answer = client.get("/v1/nothing")
    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


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
