"""Steady, bounded load on `/v1/predict`, recording every answer: the proof that rollouts and
scaling lose nothing. Bounded in rate, count and time; stops by itself; loopback only.

    python -m shared.tools.steady_load --url http://127.0.0.1:8000 --rate 25 --seconds 20
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import pandas as pd
import requests
import typer


@dataclass(frozen=True)
class Answer:
    sent: float  # time.time() just before sending
    received: float
    status: int  # 0: no HTTP answer at all
    model_version: str | None
    detail: str = ""


@dataclass
class LoadRun:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200 or not a.model_version]

    def rate(self) -> float:
        span = max(a.received for a in self.answers) - min(a.sent for a in self.answers)
        return len(self.answers) / span if span else 0.0


def houses(csv_path: Path) -> list[dict]:
    frame = pd.read_csv(csv_path, dtype={"zipcode": str})
    return json.loads(frame.to_json(orient="records"))


def run_load(
    url: str,
    rows: list[dict],
    *,
    key: str,
    rate: float,
    seconds: float,
    clients: int = 8,
) -> LoadRun:
    """Send `rate` requests per second for `seconds`, from `clients` threads, then stop."""
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("load is only ever sent to loopback")
    run = LoadRun()
    total = int(rate * seconds)
    start = time.monotonic() + 0.05
    local = threading.local()

    def one(index: int) -> None:
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {key}"
        sent = time.time()
        try:
            response = session.post(f"{url}/v1/predict", json=rows[index % len(rows)], timeout=15)
            body = response.json()
            answer = Answer(
                sent,
                time.time(),
                response.status_code,
                body.get("model_version"),
                "" if response.ok else str(body.get("detail"))[:200],
            )
        except (requests.RequestException, ValueError) as exc:
            answer = Answer(sent, time.time(), 0, None, f"{type(exc).__name__}: {exc}"[:200])
        with run.lock:
            run.answers.append(answer)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(total)))
    run.answers.sort(key=lambda a: a.sent)
    return run


class BackgroundLoad(threading.Thread):
    """`run_load` in a thread, so a test can roll out or scale while the load flows."""

    def __init__(
        self, url: str, rows: list[dict], *, key: str, rate: float, seconds: float
    ) -> None:
        super().__init__(daemon=True)
        self.args = (url, rows)
        self.key = key
        self.rate, self.seconds = rate, seconds
        self.result: LoadRun | None = None

    def run(self) -> None:
        self.result = run_load(*self.args, key=self.key, rate=self.rate, seconds=self.seconds)

    def finish(self) -> LoadRun:
        self.join(self.seconds + 60)
        assert self.result is not None, "the load did not finish"
        return self.result


def main(
    url: Annotated[str, typer.Option()] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 25.0,
    seconds: Annotated[float, typer.Option(help="How long to send.")] = 20.0,
    clients: Annotated[int, typer.Option(help="Concurrent client threads.")] = 8,
    csv_path: Annotated[Path, typer.Option("--csv")] = Path("data/future_unseen_examples.csv"),
    key: Annotated[str, typer.Option(envvar="REALTY_API_KEY", show_default=False)] = "",
) -> None:
    run = run_load(url, houses(csv_path), key=key, rate=rate, seconds=seconds, clients=clients)
    versions: dict[str, int] = {}
    for answer in run.answers:
        versions[answer.model_version or "-"] = versions.get(answer.model_version or "-", 0) + 1
    latencies = sorted(a.received - a.sent for a in run.answers)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    typer.echo(
        f"{len(run.answers)} requests at {run.rate():.1f}/s, {len(run.failures)} failed; "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; answered by {versions}"
    )
    for failure in run.failures[:10]:
        typer.echo(f"  {failure.status}: {failure.detail}")
    raise typer.Exit(1 if run.failures else 0)


if __name__ == "__main__":
    typer.run(main)
