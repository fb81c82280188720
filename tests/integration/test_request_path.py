"""The API's way to the workers and back, on a real redis-server: the outbox queues many
concurrent requests per Redis call onto the right version's list, and the inbox hands every
worker reply to the request awaiting it; a Redis outage reaches every waiting caller as an
error at once (a 503), and both work again when Redis is back."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from stack import Stack

from api.inbox import ReplyInbox
from api.outbox import RequestOutbox, Routed, Sender
from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import REPLY, EstimateReply, PredictRequest
from shared.wire.replies import push_replies

pytestmark = pytest.mark.integration


def _async_client(redis_stack: Stack) -> aioredis.Redis:
    return aioredis.Redis.from_url(redis_stack.redis_url, decode_responses=True, socket_timeout=2)


@asynccontextmanager
async def _reading_inbox(stack: Stack) -> AsyncIterator[ReplyInbox]:
    client = _async_client(stack)
    inbox = ReplyInbox(client)
    inbox.start()
    try:
        yield inbox
    finally:
        await inbox.stop()
        await client.aclose()


ADMIN = Sender("a" * 16, may_pin=True)  # no rate limit
# A version's queue holds at least 4 (a micro-batch) and at most 2 s of what it answers.
SMALL_QUEUE = Settings(microbatch_max_size=4, queue_wait_s=2.0)


def _request(request_id: str, reply_to: str) -> PredictRequest:
    return PredictRequest(request_id=request_id, reply_to=reply_to, house={}, deadline_ms=0)


def _reply(request_id: str, price: float = 0.0) -> EstimateReply:
    return EstimateReply(
        request_id=request_id, prediction=price, model_version="v1", model_kind="baseline"
    )


def _evalsha_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_concurrent_requests_share_redis_calls_and_land_on_their_versions(
    redis_stack: Stack,
) -> None:
    sync = redis_stack.redis_client()

    async def scenario() -> list[str | None]:
        client = _async_client(redis_stack)
        outbox = RequestOutbox(client, Settings())
        try:
            lonely = await outbox.send("lonely", ADMIN)
            assert lonely == Routed(version=None)  # no active version: nothing queued
            sync.set(names.ACTIVE_VERSION, "v1")
            calls_before = _evalsha_calls(sync)
            sends = [
                outbox.send(f"r{i}", ADMIN, pinned="v2" if i % 10 == 0 else None) for i in range(50)
            ]
            routed = await asyncio.gather(*sends)
            assert _evalsha_calls(sync) - calls_before <= 3  # one call per event-loop turn
            return [r.version for r in routed]
        finally:
            await client.aclose()

    versions = asyncio.run(scenario())
    assert versions == ["v2" if i % 10 == 0 else "v1" for i in range(50)]
    # Oldest at the right end, where the micro-batchers pop.
    assert sync.lrange(names.requests_list("v1"), 0, -1)[::-1] == [
        f"r{i}" for i in range(50) if i % 10
    ]
    assert sync.lrange(names.requests_list("v2"), 0, -1)[::-1] == ["r0", "r10", "r20", "r30", "r40"]
    assert not sync.exists(names.requests_list(""))  # "lonely" went nowhere


def test_a_full_queue_refuses_new_requests_at_once_and_queues_none_of_them(
    redis_stack: Stack,
) -> None:
    sync = redis_stack.redis_client()
    sync.delete(names.requests_list("v1"))
    sync.set(names.ACTIVE_VERSION, "v1")
    sync.set(names.queue_capacity("v1"), "10.0")  # v1's workers answer 10 a second: room for 20

    async def scenario() -> list[Routed]:
        client, sent = _async_client(redis_stack), []
        outbox = RequestOutbox(client, SMALL_QUEUE)
        try:
            for i in range(25):  # one by one, in order
                sent.append(await outbox.send(f"r{i}", ADMIN))
            return sent
        finally:
            await client.aclose()

    routed = asyncio.run(scenario())
    assert [r.version for r in routed[:20]] == ["v1"] * 20
    assert all(r.queue_full and r.version is None for r in routed[20:])
    assert sync.llen(names.requests_list("v1")) == 20
    sync.delete(names.queue_capacity("v1"))  # no rate measured: the least depth, 4
    assert asyncio.run(scenario())[0].queue_full


def test_the_outbox_keeps_redis_time_from_its_routing_calls(redis_stack: Stack) -> None:
    async def scenario() -> tuple[float, float]:
        client = _async_client(redis_stack)
        outbox = RequestOutbox(client, Settings())
        try:
            outbox.clock.offset_ms = 60_000.0  # as if this host's clock were a minute behind
            await outbox.send("r", ADMIN)
            seconds, micros = await client.time()
            return outbox.clock.now_ms(), seconds * 1000 + micros / 1000
        finally:
            await client.aclose()

    ours, redis_now = asyncio.run(scenario())
    assert abs(ours - redis_now) < 100


def test_a_redis_outage_fails_every_waiting_send_and_the_outbox_recovers(
    redis_stack: Stack,
) -> None:
    async def scenario() -> None:
        client = _async_client(redis_stack)
        outbox = RequestOutbox(client, Settings())
        try:
            redis_stack.redis_client().set(names.ACTIVE_VERSION, "v1")
            assert redis_stack.redis_proc is not None
            redis_stack.redis_proc.kill()
            results = await asyncio.gather(
                *(outbox.send(f"r{i}", ADMIN) for i in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, RedisConnectionError) for r in results), results
            redis_stack.start_redis()  # AOF: the active version survived
            assert (await outbox.send("after", ADMIN)).version == "v1"
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_each_reply_reaches_the_request_awaiting_it(redis_stack: Stack) -> None:
    async def scenario() -> None:
        async with _reading_inbox(redis_stack) as inbox:
            requests = [_request(f"id{i}", inbox.key) for i in range(20)]
            with (
                inbox.expect("id3") as third,
                inbox.expect("id17") as seventeenth,
            ):
                # A worker answers a micro-batch at once, in another order than asked.
                answered = [(r, _reply(r.request_id, float(i))) for i, r in enumerate(requests)]
                await asyncio.to_thread(
                    push_replies, redis_stack.redis_client(), answered[::-1], 60
                )
                assert await asyncio.wait_for(third, 5) == _reply("id3", 3.0)
                assert (await asyncio.wait_for(seventeenth, 5)).prediction == 17.0
            # Replies nobody waits for (callers gone) are read and dropped, not kept.
            await asyncio.sleep(0.2)
            assert redis_stack.redis_client().llen(inbox.key) == 0

    asyncio.run(scenario())


def test_push_replies_sends_one_push_per_inbox_and_lets_inboxes_expire(redis_stack: Stack) -> None:
    sync = redis_stack.redis_client()
    requests = [_request(f"id{i}", f"inbox{i % 2}") for i in range(6)]
    push_replies(sync, [(r, _reply(r.request_id, i)) for i, r in enumerate(requests)], ttl_s=30)
    sent = {
        inbox: [REPLY.validate_json(r) for r in sync.lrange(inbox, 0, -1)]
        for inbox in ("inbox0", "inbox1")
    }
    assert [r.prediction for r in sent["inbox0"]] == [0, 2, 4]
    assert [r.request_id for r in sent["inbox1"]] == [
        "id1",
        "id3",
        "id5",
    ]
    assert 0 < sync.ttl("inbox0") <= 30
    assert int(sync.info("commandstats")["cmdstat_rpush"]["calls"]) == 2


def test_a_redis_outage_fails_waiting_requests_at_once_and_the_inbox_recovers(
    redis_stack: Stack,
) -> None:
    async def scenario() -> None:
        async with _reading_inbox(redis_stack) as inbox:
            with inbox.expect("lost") as lost:
                await asyncio.sleep(0.1)  # the reader is blocked on Redis
                assert redis_stack.redis_proc is not None
                redis_stack.redis_proc.kill()
                with pytest.raises(RedisConnectionError):
                    await asyncio.wait_for(lost, 3)  # not at the 20 s predict deadline
            redis_stack.start_redis()
            with inbox.expect("later") as later:
                request = _request("later", inbox.key)
                await asyncio.to_thread(
                    push_replies, redis_stack.redis_client(), [(request, _reply("later"))], 60
                )
                assert (await asyncio.wait_for(later, 5)).request_id == "later"

    asyncio.run(scenario())


def test_malformed_replies_are_dropped_and_the_reader_reads_on(redis_stack: Stack) -> None:
    async def scenario() -> None:
        async with _reading_inbox(redis_stack) as inbox:
            sync = redis_stack.redis_client()
            with inbox.expect("good") as good:
                malformed = ("not json", "[1, 2]", '{"no": "id"}', '{"type": "estimate"}')
                sync.rpush(inbox.key, *malformed)
                request = _request("good", inbox.key)
                await asyncio.to_thread(push_replies, sync, [(request, _reply("good", 1.0))], 60)
                assert await asyncio.wait_for(good, 5) == _reply("good", 1.0)
            assert inbox.reading

    asyncio.run(scenario())


def test_a_key_over_its_rate_is_told_when_to_retry_and_other_keys_are_not_slowed(
    redis_stack: Stack,
) -> None:
    sync = redis_stack.redis_client()
    sync.set(names.ACTIVE_VERSION, "v1")
    slow, other = Sender("b" * 16, rate_per_s=5, burst=3), Sender("c" * 16, rate_per_s=5, burst=3)

    async def scenario() -> tuple[list[Routed], list[Routed], Routed]:
        client = _async_client(redis_stack)
        outbox = RequestOutbox(client, Settings())
        try:
            first = await asyncio.gather(*(outbox.send(f"s{i}", slow) for i in range(5)))
            others = await asyncio.gather(*(outbox.send(f"o{i}", other) for i in range(3)))
            await asyncio.sleep(0.25)  # a token comes back every 200 ms at 5/s
            return first, others, await outbox.send("later", slow)
        finally:
            await client.aclose()

    first, others, later = asyncio.run(scenario())
    assert [r.version for r in first] == ["v1", "v1", "v1", None, None]  # the burst, then none
    assert all(0 < r.retry_after_ms <= 200 for r in first[3:])
    assert [r.version for r in others] == ["v1"] * 3
    assert later.version == "v1"
    queued = sync.lrange(names.requests_list("v1"), 0, -1)[::-1]
    assert queued == ["s0", "s1", "s2", "o0", "o1", "o2", "later"]  # refused ones went nowhere


def test_only_a_key_that_may_pin_reaches_an_inactive_version(redis_stack: Stack) -> None:
    sync = redis_stack.redis_client()
    sync.set(names.ACTIVE_VERSION, "v2")
    agent = Sender("d" * 16)

    async def scenario() -> list[Routed]:
        client = _async_client(redis_stack)
        outbox = RequestOutbox(client, Settings())
        try:
            return [
                await outbox.send("inactive", agent, pinned="v1"),
                await outbox.send("active", agent, pinned="v2"),
                await outbox.send("admin", ADMIN, pinned="v1"),
            ]
        finally:
            await client.aclose()

    refused, active, admin = asyncio.run(scenario())
    assert refused == Routed(pin_refused=True)
    assert active.version == "v2" and admin.version == "v1"
    assert sync.lrange(names.requests_list("v1"), 0, -1) == ["admin"]
