"""Access control on real processes: keys made and revoked with `realty keys`, roles, admin
actions refused to others and to cross-site browsers, per-key quotas, jobs readable only by
their key, and the audit list."""

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from stack import Stack, running_stack, wait_for

from shared.wire import names
from shared.wire.api_keys import Role

pytestmark = pytest.mark.integration


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_made_with_realty_works_for_its_role_until_revoked(stack: Stack, house: dict):
    made = stack.realty("keys", "create", "anna.lee", "--role", "agent")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("rk_") and " " not in key
    assert key not in stack.redis_client().hget(names.API_KEYS, key.split("_")[1])  # a digest

    predict = f"{stack.api_url}/v1/predict"
    assert requests.post(predict, json=house, headers=as_key(key), timeout=30).status_code == 200
    batch = requests.post(
        f"{stack.api_url}/v1/batch", json={"rows": [house]}, headers=as_key(key), timeout=30
    )
    assert batch.status_code == 403 and "batch" in batch.json()["detail"]
    listed = stack.realty("keys", "list")
    assert "anna.lee" in listed.stdout and key not in listed.stdout

    assert stack.realty("keys", "revoke", "anna.lee").returncode == 0
    time.sleep(float(stack.env.get("REALTY_KEY_CACHE_S", 1.0)) + 0.2)
    revoked = requests.post(predict, json=house, headers=as_key(key), timeout=30)
    assert revoked.status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (as_key("rk_0123456789abcdef_" + "x" * 43), 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
    ],
    ids=["no-key", "unknown-key", "malformed"],
)
def test_calls_without_a_valid_key_are_401(stack: Stack, house: dict, headers, status):
    answer = requests.post(f"{stack.api_url}/v1/predict", json=house, headers=headers, timeout=30)
    assert answer.status_code == status
    assert "key" in answer.json()["detail"]


def test_activation_is_for_admins_from_no_other_site_and_is_audited(stack: Stack):
    client = stack.redis_client()
    active = client.get(names.ACTIVE_VERSION)
    url = f"{stack.api_url}/v1/models/{active}/activate"
    agent = stack.key("activation-agent", Role.AGENT)
    assert requests.post(url, headers=as_key(agent), timeout=10).status_code == 403
    cross_site = as_key(stack.admin_key) | {"Origin": "https://elsewhere.example"}
    assert requests.post(url, headers=cross_site, timeout=10).status_code == 403
    assert requests.post(url, timeout=10).status_code == 401
    assert client.get(names.ACTIVE_VERSION) == active
    assert stack.http.post(url, timeout=10).status_code == 200  # the same version: harmless
    trail = stack.realty("audit", "--count", "5")
    assert trail.returncode == 0 and "activate" in trail.stdout and "admin" in trail.stdout
    assert stack.admin_key not in trail.stdout


@pytest.fixture
def quota_stack(tmp_path: Path) -> Iterator[Stack]:
    """Small chunks so that a job of 3,000 rows stays queued for a few seconds."""
    settings = {"max_jobs_per_key": 2, "batch_chunk_rows": 10, "max_batch_rows": 5_000}
    with running_stack(tmp_path, concurrency=2, **settings) as running:
        yield running


def test_a_key_past_its_batch_quota_gets_429_and_other_keys_are_unaffected(
    quota_stack: Stack, future_rows: list[dict]
):
    stack = quota_stack
    key_a = stack.key("crm-a", Role.BATCH)
    key_b = stack.key("agent-b", Role.AGENT, rate_per_s=0)
    rows = [future_rows[i % len(future_rows)] for i in range(3_000)]
    batch = f"{stack.api_url}/v1/batch"
    jobs = [requests.post(batch, json={"rows": rows}, headers=as_key(key_a), timeout=60)]
    jobs.append(requests.post(batch, json={"rows": rows}, headers=as_key(key_a), timeout=60))
    refused = requests.post(batch, json={"rows": rows}, headers=as_key(key_a), timeout=60)
    assert [j.status_code for j in jobs] == [202, 202]
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1 and "2 batch job(s)" in refused.json()["detail"]

    latencies = []
    for row in future_rows[:40]:  # while A's jobs run
        started = time.monotonic()
        answer = requests.post(
            f"{stack.api_url}/v1/predict", json=row, headers=as_key(key_b), timeout=30
        )
        latencies.append(time.monotonic() - started)
        assert answer.status_code == 200, answer.text
    assert statistics.quantiles(latencies, n=100)[98] < 1.0

    status_url = jobs[0].json()["status_url"]
    assert requests.get(status_url, headers=as_key(key_b), timeout=30).status_code == 404
    assert stack.http.get(status_url, timeout=30).status_code == 200  # an admin reads any job
    wait_for(
        lambda: all(
            requests.get(j.json()["status_url"], headers=as_key(key_a), timeout=30).json()["status"]
            == "succeeded"
            for j in jobs
        ),
        120,
        "A's jobs to finish",
    )
    again = requests.post(batch, json={"rows": rows[:10]}, headers=as_key(key_a), timeout=60)
    assert again.status_code == 202  # finished jobs no longer count


def test_only_an_admin_may_pin_an_inactive_version(stack: Stack, house: dict):
    active = stack.redis_client().get(names.ACTIVE_VERSION)
    inactive = "v1" if active != "v1" else "v2"
    key = stack.key("pinning-batch", Role.BATCH)
    pin = as_key(key) | {"X-Model-Version": inactive}
    single = requests.post(f"{stack.api_url}/v1/predict", json=house, headers=pin, timeout=30)
    batch = requests.post(
        f"{stack.api_url}/v1/batch", json={"rows": [house]}, headers=pin, timeout=30
    )
    assert (single.status_code, batch.status_code) == (403, 403)
    admin = stack.http.post(
        f"{stack.api_url}/v1/predict", json=house, headers={"X-Model-Version": inactive}
    )
    assert admin.status_code == 409  # allowed to pin, but nobody serves it in this stack
    own = as_key(key) | {"X-Model-Version": active}
    answer = requests.post(f"{stack.api_url}/v1/predict", json=house, headers=own, timeout=30)
    assert answer.status_code == 200


def test_a_key_over_its_request_rate_gets_429_with_retry_after(stack: Stack, house: dict):
    key = stack.key("slow-agent", Role.AGENT, rate_per_s=2)  # burst: 2 s of rate = 4
    url = f"{stack.api_url}/v1/predict"
    with requests.Session() as session:
        session.headers.update(as_key(key))
        codes = [session.post(url, json=house, timeout=30) for _ in range(8)]
    assert [c.status_code for c in codes].count(200) >= 4
    limited = [c for c in codes if c.status_code == 429]
    assert limited and all(int(c.headers["retry-after"]) >= 1 for c in limited)
    assert stack.http.post(url, json=house, timeout=30).status_code == 200  # others unaffected
