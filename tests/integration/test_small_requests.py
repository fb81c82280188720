"""Small requests stay small, on real processes: a hostile body on a house route (2 MB declared,
2 MB streamed, the 300,000 unknown keys of the report) is answered 413 in under 200 ms, while
/health/live, probed every 50 ms meanwhile, answers each probe in under 100 ms: the API's event
loop never parses the flood. (Before: one 3.5 MB body held that loop for 23.6 s.)"""

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from stack import Stack

from api.request_context import HOUSE_BODY_BYTES

pytestmark = pytest.mark.integration

PROBE_EVERY_S = 0.05
MEASURE_S = 2.0  # hostile bodies back to back for this long: about 40 probes meanwhile
JSON = {"content-type": "application/json"}


def flood_of_unknown_keys(house: dict, keys: int) -> bytes:
    return json.dumps(house | {f"unknown_{i}": 0 for i in range(keys)}).encode()


def streamed(body: bytes, size: int = 16_384) -> Iterator[bytes]:
    """No Content-Length: the API must count as the chunks arrive."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


# The prober runs in a process of its own, so that this one's work (sending the bodies) cannot
# delay a probe: what it measures is the API alone. It probes until its stdin closes, then prints
# its latencies as JSON.
PROBER = """
import json, sys, threading, time
import requests
url, every = sys.argv[1], float(sys.argv[2])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
latencies, failures = [], []
with requests.Session() as session:
    session.get(url, timeout=5)  # connected before the first timed probe
    print("probing", flush=True)
    while not done.is_set():
        started = time.perf_counter()
        answer = session.get(url, timeout=5)
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            failures.append(answer.status_code)
        done.wait(every)
print(json.dumps({"latencies": latencies, "failures": failures}), flush=True)
"""


class Prober:
    """GET /health/live every PROBE_EVERY_S, from another process, timing each answer."""

    def __init__(self, url: str) -> None:
        self.argv = [sys.executable, "-c", PROBER, url, str(PROBE_EVERY_S)]
        self.latencies: list[float] = []
        self.failures: list[int] = []

    def __enter__(self) -> "Prober":
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "probing"
        return self

    def __exit__(self, *_: object) -> None:
        out, _ = self.proc.communicate(input="", timeout=30)
        result = json.loads(out.strip().splitlines()[-1])
        self.latencies, self.failures = result["latencies"], result["failures"]


def timed(send: Callable[[], requests.Response]) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = send()
    return time.perf_counter() - started, answer


def test_hostile_house_bodies_are_refused_at_once_and_health_stays_prompt(
    stack: Stack, house: dict
):
    # Built before the clock starts: json.dumps of 300,000 keys would hold this process's GIL.
    declared = b" " * 2_000_000  # over HOUSE_BODY_BYTES, within the stack's app-wide 2 MB
    chunked = flood_of_unknown_keys(house, 170_000)  # about 2 MB
    reported = flood_of_unknown_keys(house, 300_000)  # the 3.5 MB of the report
    assert len(chunked) > 1_900_000 and len(reported) > 3_400_000
    predict = f"{stack.api_url}/v1/predict"
    hostile = {
        "2 MB declared": lambda s: s.post(predict, data=declared, headers=JSON, timeout=30),
        "2 MB streamed": lambda s: s.post(
            predict, data=streamed(chunked), headers=JSON, timeout=30
        ),
        "300,000 keys": lambda s: s.post(predict, data=reported, headers=JSON, timeout=30),
    }
    with requests.Session() as session:
        session.headers.update(stack.http.headers)
        for send in hostile.values():  # warm up: connections, the first 413 of each kind
            send(session)
        timings: dict[str, list[float]] = {name: [] for name in hostile}
        with Prober(f"{stack.api_url}/health/live") as prober:
            until = time.monotonic() + MEASURE_S
            while time.monotonic() < until:
                for name, send in hostile.items():
                    elapsed, answer = timed(lambda send=send: send(session))
                    timings[name].append(elapsed)
                    assert answer.status_code == 413, (name, answer.text[:300])
                    assert f"{HOUSE_BODY_BYTES:,}-byte limit" in answer.json()["detail"]
                    assert answer.json()["request_id"] == answer.headers["x-request-id"]
                    assert len(answer.content) < 500
            time.sleep(2 * PROBE_EVERY_S)  # a last probe after the last body
    report = {k: f"max {max(v) * 1000:.1f} ms" for k, v in timings.items()}
    probes = f"{len(prober.latencies)} probes, max {max(prober.latencies) * 1000:.1f} ms"
    print(f"hostile bodies: {report}; health: {probes}")
    assert not prober.failures
    assert len(prober.latencies) >= 20, probes
    for name, seconds in timings.items():
        assert max(seconds) < 0.200, (name, report)
    assert max(prober.latencies) < 0.100, probes


def test_a_house_body_just_under_the_limit_is_still_estimated(api: requests.Session, house: dict):
    body = json.dumps(house).encode().ljust(HOUSE_BODY_BYTES)
    assert api.post("/v1/predict", data=body, headers=JSON).status_code == 200
    over = api.post("/v1/predict", data=body + b" ", headers=JSON)
    assert over.status_code == 413


def test_a_flood_under_the_limit_is_one_short_error(api: requests.Session, house: dict):
    body = flood_of_unknown_keys(house, 3_000)  # about 56 KB
    assert len(body) < HOUSE_BODY_BYTES
    answer = api.post("/v1/predict", data=body, headers=JSON)
    assert answer.status_code == 422 and len(answer.content) < 500
    (error,) = answer.json()["detail"]
    assert error["type"] == "too_many_unknown_fields" and "3,000 fields" in error["msg"]
