"""What `api.request_context.RequestContext` adds to every request: the same ASGI call of an app
that answers at once, with and without the layer, for a POST /v1/predict as clients send it
(headers of curl or requests, a Content-Length, one body message). No sockets, no FastAPI: only
the layer's own cost. `python -m bench.request_context` prints one JSON object.
"""

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from api.request_context import HOUSE_BODY_BYTES, HOUSE_PATHS, RequestContext

BODY = b'{"bedrooms": 4, "bathrooms": 1.0, "sqft_living": 1680}' * 8
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-requests/2.34.2"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept", b"*/*"),
    (b"connection", b"keep-alive"),
    (b"authorization", b"Bearer rk_0000000000000001_" + b"k" * 43),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def answering_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body and answers, as a route does, with nothing else."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request_ns(app: Any, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter_ns()
    for _ in range(requests):
        scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": HEADERS}
        await app(scope, receive, send)
    return (time.perf_counter_ns() - started) / requests


async def measure(requests: int, repeats: int) -> dict[str, float]:
    layered = RequestContext(answering_app, dict.fromkeys(HOUSE_PATHS, HOUSE_BODY_BYTES))
    await per_request_ns(layered, requests)  # warm up
    bare, with_layer = [], []
    for _ in range(repeats):  # interleaved, so that a noisy neighbour hits both alike
        bare.append(await per_request_ns(answering_app, requests))
        with_layer.append(await per_request_ns(layered, requests))
    return {
        "requests_per_run": requests,
        "runs": repeats,
        "bare_ns": round(statistics.median(bare)),
        "with_layer_ns": round(statistics.median(with_layer)),
        "added_ns": round(statistics.median(w - b for w, b in zip(with_layer, bare, strict=True))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.requests, args.repeats))))


if __name__ == "__main__":
    main()
