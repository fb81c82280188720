"""Batch bodies are read bounded, on real processes: nesting beyond the schema is a 422, a body
over the byte cap or the row cap is refused before the client has finished sending it, at most
`batch_parse_concurrency` bodies are read at once (the rest wait, then 503 + Retry-After), and
ten concurrent 32 MiB uploads raise the API's RSS by under 300 MB while /health/live, probed
every 50 ms, stays 200. (Before: a 32 MiB body was parsed whole, about 24 times its size, before
its rows were counted, and nested JSON was a 500.)"""

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from stack import Stack, running_stack

from shared.wire.api_keys import Role

pytestmark = pytest.mark.integration

MIB = 2**20
JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}
# The session stack's limits (tests/integration/conftest.py).
SESSION_MAX_BYTES, SESSION_MAX_ROWS = 2_000_000, 5_000


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def csv_lines(rows: list[dict], count: int) -> Iterator[bytes]:
    """A header, then `count` rows cycling through `rows`."""
    yield (",".join(rows[0]) + "\n").encode()
    for i in range(count):
        yield (",".join(str(v) for v in rows[i % len(rows)].values()) + "\n").encode()


def unfinished_request(
    stack: Stack,
    parts: Iterable[bytes],
    content_type: str,
    declared: int | None = None,
    key: str | None = None,
) -> http.client.HTTPResponse:
    """POST /v1/batch whose body never ends: `parts` are sent (chunked when no length is
    `declared`), the rest never is. An answer can only come from a server that refused the
    body from what it had; one waiting for the rest would time out the read."""
    sock = socket.create_connection(("127.0.0.1", stack.api_port), timeout=20)
    head = [
        "POST /v1/batch HTTP/1.1",
        f"Host: 127.0.0.1:{stack.api_port}",
        f"Authorization: Bearer {key or stack.admin_key}",
        f"Content-Type: {content_type}",
        f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked",
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    for part in parts:
        sock.sendall(part if declared is not None else b"%x\r\n%s\r\n" % (len(part), part))
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    answer.read()
    sock.close()
    return answer


# --- on the session stack (2,000,000 bytes, 5,000 rows) --------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"rows": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"rows": [{"bedrooms": ' + "[" * 100_000 + "]" * 100_000 + "}]}",
        '{"rows": [{"bedrooms": ' + "[" * 900 + "]" * 900 + "}]}",
        '{"rows": [{"bedrooms": {"rooms": 3}}]}',
    ],
    ids=["rows of arrays", "a field of arrays", "a field 900 deep", "a field of an object"],
)
def test_nesting_beyond_the_schema_is_a_422_naming_the_row(api: requests.Session, body: str):
    answer = api.post("/v1/batch", data=body, headers=JSON)
    assert answer.status_code == 422, answer.text[:300]
    (error,) = answer.json()["detail"]
    assert error["loc"][:3] == ["body", "rows", 0]
    assert "nested beyond the schema" in error["msg"]


def test_a_declared_length_over_the_cap_is_refused_before_any_body(stack: Stack):
    answer = unfinished_request(stack, [], "text/csv", declared=SESSION_MAX_BYTES + 1)
    assert answer.status == 413


def test_a_streamed_body_over_the_cap_is_refused_as_it_passes_it(stack: Stack, future_rows):
    # One row, then whitespace: only the byte cap can refuse it, and no more is ever sent.
    start = b'{"rows": [' + json.dumps(future_rows[0]).encode()
    padding = [b" " * 100_000] * (SESSION_MAX_BYTES // 100_000 + 1)
    started = time.monotonic()
    answer = unfinished_request(stack, [start, *padding], "application/json")
    assert answer.status == 413
    assert time.monotonic() - started < 5


def test_a_streamed_body_over_the_cap_gets_a_413_naming_the_limit(api: requests.Session, house):
    def body() -> Iterator[bytes]:
        yield b'{"rows": [' + json.dumps(house).encode()
        for _ in range(30):
            yield b" " * 100_000

    answer = api.post("/v1/batch", data=body(), headers=JSON)
    assert answer.status_code == 413
    assert f"{SESSION_MAX_BYTES:,}-byte limit" in answer.json()["detail"]


@pytest.mark.parametrize("media", ["text/csv", "application/json"])
def test_rows_over_the_cap_are_refused_before_the_body_has_arrived(
    stack: Stack, future_rows, media: str
):
    rows = SESSION_MAX_ROWS + 500
    if media == "text/csv":
        parts = list(csv_lines(future_rows, rows))
    else:
        parts = [b'{"rows": [', *(json.dumps(r).encode() + b"," for r in future_rows * 55)]
        assert len(parts) - 1 == rows
    # Declared longer than what is sent, and within the byte cap: the rest never comes.
    declared = sum(map(len, parts)) + 100_000
    assert declared < SESSION_MAX_BYTES
    answer = unfinished_request(stack, parts, media, declared)
    assert answer.status == 413


# --- a stack of the default limits: ten concurrent 32 MiB uploads -----------------------------


@pytest.fixture
def full_size_stack(tmp_path: Path) -> Iterator[Stack]:
    """The default limits (32 MiB, 100,000 rows, batch_parse_concurrency 4); stopped right
    after its test, with the jobs it accepted still running."""
    with running_stack(tmp_path, workers=1) as running:
        yield running


def body_of_32_mib(rows: list[dict]) -> bytes:
    """100,000 valid rows, spaced out to exactly the 32 MiB limit."""
    encoded = [json.dumps(rows[i % len(rows)]) for i in range(100_000)]
    text = '{"rows": [' + ",".join(encoded) + "]}"
    spare = 32 * MIB - len(text)
    assert spare > 0
    each = spare // len(encoded)
    text = '{"rows": [' + ("," + " " * each).join(encoded) + "]}"
    return text[:-2].encode() + b" " * (32 * MIB - len(text)) + b"]}"


# Probes /health/live and samples the API's RSS every 50 ms from a process of its own, so that
# the uploads' threads in this one cannot delay a probe; prints what it saw once stdin closes.
PROBER = """
import json, sys, threading, time
import requests
url, pid = sys.argv[1], sys.argv[2]
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
statuses, latencies, rss = [], [], []
with requests.Session() as session:
    session.get(url, timeout=5)
    print("probing", flush=True)
    while not done.is_set():
        started = time.perf_counter()
        try:
            statuses.append(session.get(url, timeout=5).status_code)
        except requests.RequestException as exc:
            statuses.append(repr(exc))
        latencies.append(time.perf_counter() - started)
        rss.append(rss_kib())
        done.wait(0.05)
print(json.dumps({"statuses": statuses, "latencies": latencies, "rss_kib": rss}), flush=True)
"""


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def test_ten_concurrent_32_mib_uploads_raise_rss_by_under_300_mb_and_health_stays_200(
    full_size_stack: Stack, future_rows
):
    stack = full_size_stack
    body = body_of_32_mib(future_rows)
    assert len(body) == 32 * MIB
    keys = [stack.key(f"uploader{i}", Role.BATCH) for i in range(10)]
    url = f"{stack.api_url}/v1/batch"
    # A first batch before measuring: the process's first imports, thread pool and connections.
    warm = requests.post(url, json={"rows": future_rows}, headers=bearer(keys[0]), timeout=30)
    assert warm.status_code == 202, warm.text
    pid = stack.api_proc.pid  # type: ignore[union-attr]
    before_kib = vm_kib(pid, "VmRSS")

    def upload(key: str) -> requests.Response:
        return requests.post(url, data=body, headers=JSON | bearer(key), timeout=120)

    prober = subprocess.Popen(
        [sys.executable, "-c", PROBER, f"{stack.api_url}/health/live", str(pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert prober.stdout is not None and prober.stdout.readline().strip() == "probing"
        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(upload, keys))
        took = time.monotonic() - started
        time.sleep(0.2)  # a few probes after the last answer
    finally:
        out, _ = prober.communicate(input="", timeout=30)
    seen = json.loads(out.strip().splitlines()[-1])
    peak_kib = vm_kib(pid, "VmHWM")
    codes = [a.status_code for a in answers]
    growth_mb = (peak_kib - before_kib) * 1024 / 1e6
    print(
        f"10 x 32 MiB: answers {sorted(codes)} in {took:.1f} s; API RSS {before_kib / 1024:.0f}"
        f" MiB before, peak {peak_kib / 1024:.0f} MiB (+{growth_mb:.0f} MB); health: "
        f"{len(seen['statuses'])} probes, max {max(seen['latencies']) * 1000:.0f} ms"
    )
    assert set(codes) <= {202, 503}, [a.text[:200] for a in answers]
    assert codes.count(202) >= 1
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["retry-after"]) > 0
    assert len(seen["statuses"]) >= 20
    assert set(seen["statuses"]) == {200}, seen["statuses"]
    assert growth_mb < 300


# --- a stack of one reading turn ---------------------------------------------------------------


@pytest.fixture
def one_turn_stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        workers=1,
        batch_parse_concurrency=1,
        batch_parse_wait_s=1.5,
    ) as running:
        yield running


def test_an_upload_past_the_concurrency_waits_for_a_turn_then_gets_a_503(
    one_turn_stack: Stack, future_rows
):
    stack = one_turn_stack
    body = json.dumps({"rows": future_rows}).encode()
    half = len(body) // 2

    def hold_the_turn(release: threading.Event) -> http.client.HTTPResponse:
        """An upload that sends half its body, then the rest once `release` is set."""

        def parts() -> Iterator[bytes]:
            yield body[:half]
            release.wait(10)
            yield body[half:]

        key = stack.key(f"holder{time.monotonic_ns()}", Role.BATCH)
        return unfinished_request(stack, parts(), "application/json", len(body), key)

    def post() -> tuple[float, requests.Response]:
        headers = JSON | bearer(stack.key(f"poster{time.monotonic_ns()}", Role.BATCH))
        started = time.monotonic()
        answer = requests.post(f"{stack.api_url}/v1/batch", data=body, headers=headers, timeout=30)
        return time.monotonic() - started, answer

    with ThreadPoolExecutor(2) as pool:
        # Released within the wait: the second upload waits, then is read.
        release = threading.Event()
        holder = pool.submit(hold_the_turn, release)
        time.sleep(0.3)  # the holder has its turn
        waiter = pool.submit(post)
        time.sleep(0.5)
        release.set()
        assert holder.result().status == 202
        waited, answer = waiter.result()
        assert answer.status_code == 202, answer.text
        assert waited >= 0.5

        # Held past the wait: 503 with Retry-After, after waiting the 1.5 s.
        release = threading.Event()
        holder = pool.submit(hold_the_turn, release)
        time.sleep(0.3)
        waited, answer = post()
        release.set()
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) > 0
        assert "batch uploads are being read already" in answer.json()["detail"]
        assert 1.5 <= waited < 5
        assert holder.result().status == 202
