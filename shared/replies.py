"""Answering single predictions: each request names the list its reply goes to (its API
process's inbox, `api.inbox.ReplyInbox`) and carries the id the API matches the reply by."""

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import redis


def push_replies(
    client: redis.Redis, answered: Iterable[tuple[dict[str, Any], dict[str, Any]]], ttl_s: int
) -> None:
    """Send each (request, reply) pair's reply, tagged with the request's id, in one pipeline
    with one RPUSH per inbox: a micro-batch of 30 replies to two API processes costs four
    commands, not sixty. The inbox expires `ttl_s` after its last reply, should its API
    process be gone."""
    by_inbox: dict[str, list[str]] = defaultdict(list)
    for request, reply in answered:
        tagged = reply | {"request_id": request["request_id"]}
        by_inbox[request["reply_to"]].append(json.dumps(tagged))
    if not by_inbox:
        return
    with client.pipeline(transaction=False) as pipe:
        for inbox, replies in by_inbox.items():
            pipe.rpush(inbox, *replies)
            pipe.expire(inbox, ttl_s)
        pipe.execute()
