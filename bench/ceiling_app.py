"""Case E: the ceiling, for the benchmark only. The least an HTTP prediction service can do on
this machine: read the same JSON body, parse it, and answer a constant estimate; no framework,
no validation, no queue, no model. Run by bench.run as `uvicorn bench.ceiling_app:app` with the
service API's own process count and options, so C/E says how much of the reachable speed the
service delivers.
"""

import json

from starlette.types import Receive, Scope, Send

# A constant answer of the service's size and shape (an estimate without factors or comps).
ANSWER = json.dumps(
    {
        "request_id": "0" * 32,
        "prediction": 500000.0,
        "interval_80": {"low": 450000.0, "high": 560000.0},
        "interval_95": {"low": 420000.0, "high": 600000.0},
        "factors": [],
        "warnings": [],
        "as_of": "2015-05",
        "confidence": "B",
        "fsd": 0.1,
        "comps": [],
        "model_version": "v0",
        "model_kind": "constant",
        "batch_size": 1,
        "elapsed_ms": 0.0,
    }
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # nothing to start or stop
        while True:
            event = (await receive())["type"]
            await send({"type": f"{event}.complete"})
            if event == "lifespan.shutdown":
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 200
    try:
        json.loads(body)
    except ValueError:
        status = 400
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
