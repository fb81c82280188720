"""Answering single predictions: each request names the list its reply goes to (its API
process's inbox, `api.inbox.ReplyInbox`) and the reply carries the request's id, by which the
API matches it to its caller."""

from collections import defaultdict
from collections.abc import Iterable

import redis

from shared.wire.messages import AnyReply, PredictRequest


def by_inbox(answered: Iterable[tuple[PredictRequest, AnyReply]]) -> dict[str, list[str]]:
    """Each reply's JSON, grouped by the inbox it goes to."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for request, reply in answered:
        grouped[request.reply_to].append(reply.model_dump_json())
    return grouped


def push_replies(
    client: redis.Redis, answered: Iterable[tuple[PredictRequest, AnyReply]], ttl_s: int
) -> None:
    """Send each (request, reply) pair's reply in one pipeline with one RPUSH per inbox: a
    micro-batch of 30 replies to two API processes costs four commands, not sixty. The inbox
    expires `ttl_s` after its last reply, should its API process be gone."""
    grouped = by_inbox(answered)
    if not grouped:
        return
    with client.pipeline(transaction=False) as pipe:
        for inbox, replies in grouped.items():
            pipe.rpush(inbox, *replies)
            pipe.expire(inbox, ttl_s)
        pipe.execute()
