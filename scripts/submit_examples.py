"""Check a running deployment end to end with the client's own houses.

This is what Sound Realty runs after starting or upgrading the service: every row of
future_unseen_examples.csv goes through `POST /v1/predict`, then all rows once more as one batch
job through `POST /v1/batch`, and the batch's estimates must equal the single ones to the cent.
It prints the estimates and a summary, and exits non-zero on any failure, saying what failed.

    python scripts/submit_examples.py --url http://127.0.0.1:8000

The core, `run()`, returns a `Summary` without printing, so the integration tests call it too.
"""

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urljoin, urlsplit

import pandas as pd
import requests
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

FUTURE_FILE = "future_unseen_examples.csv"
# Connect and read timeouts of one HTTP call; the API answers a prediction or 504s within 10 s.
HTTP_TIMEOUT_S = (5.0, 30.0)
# A service that was just started answers 503 with Retry-After until a worker is warm: wait for
# it a few times, never for long, and only until the service has answered anything else once.
STARTUP_ATTEMPTS = 6
STARTUP_MAX_WAIT_S = 10.0
POLL_INTERVAL_S = 0.5
CENT = 0.005  # two estimates "agree to the cent" when they differ by less than half a cent
TERMINAL_STATUSES = ("succeeded", "failed")

Notify = Callable[[str], None]


@dataclass
class RowResult:
    """The single-call estimate of one CSV row, or why there is none."""

    row: int
    zipcode: str | None
    sqft_living: Any
    bedrooms: Any
    prediction: float | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass
class Summary:
    """Everything the check found; `ok` is False when anything at all went wrong."""

    csv_path: Path
    rows_total: int = 0  # rows in the CSV; `rows` may hold fewer if the check was aborted
    rows: list[RowResult] = field(default_factory=list)
    batch_job_id: str | None = None
    batch_status: str = "not submitted"
    rows_matching: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def rows_ok(self) -> int:
        return sum(1 for r in self.rows if r.error is None)

    @property
    def latencies_ms(self) -> list[float]:
        return [r.latency_ms for r in self.rows if r.error is None and r.latency_ms is not None]

    @property
    def ok(self) -> bool:
        return (
            not self.failures
            and self.rows_total > 0
            and self.rows_ok == self.rows_total
            and self.batch_status == "succeeded"
            and self.rows_matching == self.rows_total
        )


class ServiceStartingError(Exception):
    """A 503 before the service has answered anything else: it is probably still starting."""

    def __init__(self, response: requests.Response, elapsed_ms: float) -> None:
        super().__init__(f"HTTP 503 from {response.request.method} {response.url}")
        self.response = response
        self.elapsed_ms = elapsed_ms
        self.retry_after_s = _retry_after(response)


class CheckAbortedError(Exception):
    """Nothing further can be checked (the service cannot be reached at all)."""


def _retry_after(response: requests.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:  # an HTTP date: not worth parsing for a wait capped at a few seconds
        seconds = 1.0
    return min(max(seconds, 0.0), STARTUP_MAX_WAIT_S)


def _wait_retry_after(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    return exc.retry_after_s if isinstance(exc, ServiceStartingError) else 1.0


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: requests.Response, limit: int = 400) -> str:
    """The service's explanation, with validation errors as `field: message; ...`."""
    body = _json(response)
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if body is None:
        text = response.text
    elif isinstance(detail, list) and all(isinstance(e, dict) and "msg" in e for e in detail):
        text = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e['msg']}"
            for e in detail
        )
    else:
        text = str(detail)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(response: requests.Response) -> str:
    """`POST /v1/predict → HTTP 422: <detail>`: the request and what the service said."""
    path = urlsplit(response.url).path or "/"
    return f"{response.request.method} {path} → HTTP {response.status_code}: {_detail(response)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """A CSV cell as a JSON value: numpy scalars to Python numbers, missing cells to null."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def load_rows(csv_path: Path) -> list[dict[str, Any]]:
    """The CSV's rows as JSON-ready dicts; zipcodes stay text (leading zeros matter)."""
    frame = pd.read_csv(csv_path, dtype={"zipcode": str})
    return [{k: _plain(v) for k, v in record.items()} for record in frame.to_dict("records")]


def default_csv() -> Path:
    return Path(os.environ.get("REALTY_DATA_DIR", "data")) / FUTURE_FILE


class _Client:
    """One HTTP session to the API, retrying 503s only while the service is starting up."""

    def __init__(self, base_url: str, session: requests.Session, notify: Notify) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.session = session
        self.notify = notify
        self.started = False

    def url(self, path_or_url: str) -> str:
        """Absolute URLs (the API's `status_url`) as they are; paths below the base URL."""
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def send(self, method: str, path_or_url: str, **kwargs: Any) -> tuple[requests.Response, float]:
        """The response and its round-trip time in ms; raises only for transport errors."""
        url = self.url(path_or_url)

        def attempt() -> tuple[requests.Response, float]:
            started = time.perf_counter()
            response = self.session.request(method, url, timeout=HTTP_TIMEOUT_S, **kwargs)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code == 503 and not self.started:
                raise ServiceStartingError(response, elapsed_ms)
            return response, elapsed_ms

        def before_sleep(state: RetryCallState) -> None:
            wait = _wait_retry_after(state)
            exc = state.outcome.exception() if state.outcome else None
            reason = _detail(exc.response, 160) if isinstance(exc, ServiceStartingError) else ""
            self.notify(
                f"service not ready (HTTP 503: {reason}); retrying in {wait:g} s "
                f"(attempt {state.attempt_number}/{STARTUP_ATTEMPTS})"
            )

        retrying = Retrying(
            retry=retry_if_exception_type(ServiceStartingError),
            stop=stop_after_attempt(STARTUP_ATTEMPTS),
            wait=_wait_retry_after,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            response, elapsed_ms = retrying(attempt)
        except ServiceStartingError as exc:  # never came up: every further call would wait too
            raise CheckAbortedError(
                f"the service still answers 503 after {STARTUP_ATTEMPTS} attempts; "
                f"{_describe(exc.response)}"
            ) from exc
        except requests.ConnectionError as exc:
            if not self.started:
                raise CheckAbortedError(
                    f"cannot reach the API at {self.base_url} ({exc.__class__.__name__}); "
                    "is the service running and is --url right?"
                ) from exc
            raise
        self.started = True
        return response, elapsed_ms


def _predict_one(client: _Client, index: int, row: dict[str, Any]) -> RowResult:
    result = RowResult(
        row=index,
        zipcode=row.get("zipcode"),
        sqft_living=row.get("sqft_living"),
        bedrooms=row.get("bedrooms"),
    )
    try:
        response, result.latency_ms = client.send("POST", "/v1/predict", json=row)
    except requests.RequestException as exc:
        result.error = f"POST /v1/predict failed: {exc.__class__.__name__}: {exc}"
        return result
    if response.status_code != 200:
        result.error = _describe(response)
        return result
    body = _json(response)
    prediction = body.get("prediction") if isinstance(body, dict) else None
    version = body.get("model_version") if isinstance(body, dict) else None
    if not _is_number(prediction) or not isinstance(version, str) or not version:
        result.error = (
            "POST /v1/predict → HTTP 200 but the body lacks a numeric `prediction` or a "
            "`model_version`: "
            f"{_detail(response)}"
        )
        return result
    result.prediction, result.model_version = float(prediction), version
    return result


def _poll(client: _Client, status_url: str, timeout: float, summary: Summary) -> dict | None:
    """The job's final status document, or None after recording why there is none."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while True:
        try:
            response, _ = client.send("GET", status_url)
        except requests.RequestException as exc:
            summary.batch_status = "error"
            summary.failures.append(f"GET {status_url} failed: {exc.__class__.__name__}: {exc}")
            return None
        body = _json(response) if response.status_code == 200 else None
        if not isinstance(body, dict) or body.get("status") not in (
            "queued",
            "running",
            *TERMINAL_STATUSES,
        ):
            summary.batch_status = "error"
            summary.failures.append(
                f"batch status: {_describe(response)}"
                if response.status_code != 200
                else f"batch status: no valid `status` in {_detail(response)}"
            )
            return None
        last = body
        if body["status"] in TERMINAL_STATUSES:
            return body
        if time.monotonic() >= deadline:
            summary.batch_status = "timeout"
            summary.failures.append(
                f"batch job {summary.batch_job_id} did not finish within {timeout:g} s "
                f"(last status {last.get('status')!r}, "
                f"{last.get('rows_done', '?')}/{last.get('rows_total', '?')} rows done)"
            )
            return None
        time.sleep(POLL_INTERVAL_S)


def _check_batch(
    client: _Client, rows: list[dict[str, Any]], timeout: float, summary: Summary
) -> None:
    try:
        response, _ = client.send("POST", "/v1/batch", json={"rows": rows})
    except requests.RequestException as exc:
        summary.batch_status = "error"
        summary.failures.append(f"POST /v1/batch failed: {exc.__class__.__name__}: {exc}")
        return
    accepted = _json(response) if response.status_code == 202 else None
    if not isinstance(accepted, dict) or not all(
        isinstance(accepted.get(k), str) and accepted[k] for k in ("job_id", "status_url")
    ):
        summary.batch_status = "rejected"
        summary.failures.append(
            f"batch submit: expected HTTP 202 with job_id and status_url; {_describe(response)}"
        )
        return
    summary.batch_job_id = accepted["job_id"]
    if accepted.get("rows_total") not in (None, len(rows)):
        summary.failures.append(
            f"batch job {summary.batch_job_id} accepted {accepted.get('rows_total')} rows, "
            f"{len(rows)} were sent"
        )
    client.notify(f"batch job {summary.batch_job_id} queued; polling {accepted['status_url']}")

    final = _poll(client, accepted["status_url"], timeout, summary)
    if final is None:
        return
    summary.batch_status = final["status"]
    if final["status"] == "failed":
        summary.failures.append(
            f"batch job {summary.batch_job_id} failed: {final.get('error') or 'no error given'}"
        )
        return
    _compare(final.get("results"), summary)


def _compare(results: Any, summary: Summary) -> None:
    """Each batch row must carry the same estimate and version as its single call."""
    job = f"batch job {summary.batch_job_id}"
    if not isinstance(results, list):
        summary.failures.append(f"{job} succeeded without a `results` list")
        return
    by_row: dict[int, dict[str, Any]] = {}
    for item in results:
        row = item.get("row") if isinstance(item, dict) else None
        if not isinstance(row, int) or not 0 <= row < summary.rows_total or row in by_row:
            summary.failures.append(f"{job}: invalid or duplicate result {item!r}")
            continue
        by_row[row] = item
    for single in summary.rows:
        batch = by_row.get(single.row)
        if batch is None:
            summary.failures.append(f"row {single.row}: missing from the {job} results")
            continue
        prediction, version = batch.get("prediction"), batch.get("model_version")
        if not _is_number(prediction) or not isinstance(version, str):
            summary.failures.append(f"row {single.row}: malformed batch result {batch!r}")
            continue
        if single.prediction is None:  # the single call failed and is reported already
            continue
        if abs(prediction - single.prediction) < CENT and version == single.model_version:
            summary.rows_matching += 1
        else:
            summary.failures.append(
                f"row {single.row}: batch estimate {_price(prediction, True)} ({version}) differs "
                f"from the single estimate {_price(single.prediction, True)} "
                f"({single.model_version})"
            )


def run(
    url: str,
    csv_path: Path,
    timeout: float = 120.0,
    *,
    key: str | None = None,
    session: requests.Session | None = None,
    notify: Notify | None = None,
) -> Summary:
    """Submit every CSV row singly and as one batch job; never raises for a service fault."""
    summary = Summary(csv_path=csv_path)
    try:
        rows = load_rows(csv_path)
    except (OSError, ValueError) as exc:
        summary.failures.append(f"cannot read {csv_path}: {exc}")
        return summary
    if not rows:
        summary.failures.append(f"{csv_path} has no rows: nothing was checked")
        return summary
    summary.rows_total = len(rows)

    own_session = session is None
    http = session or requests.Session()
    if own_session:
        http.headers["Accept"] = "application/json"
    if key:
        http.headers["Authorization"] = f"Bearer {key}"
    client = _Client(url, http, notify or (lambda _: None))
    try:
        for index, row in enumerate(rows):
            result = _predict_one(client, index, row)
            summary.rows.append(result)
            if result.error:
                summary.failures.append(f"row {index}: {result.error}")
        _check_batch(client, rows, timeout, summary)
    except CheckAbortedError as exc:
        summary.failures.append(str(exc))
    finally:
        if own_session:
            http.close()
    return summary


# --- output ------------------------------------------------------------------------------------


def _price(value: float | None, cents: bool = False) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if cents else f"${value:,.0f}"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rows_table(summary: Summary) -> Table:
    table = Table(title=f"Single estimates for {summary.csv_path}", title_justify="left")
    table.add_column("row", justify="right")
    table.add_column("zipcode")
    table.add_column("sqft_living", justify="right")
    table.add_column("bedrooms", justify="right")
    table.add_column("estimated price", justify="right")
    table.add_column("model_version")
    table.add_column("latency ms", justify="right")
    for r in summary.rows:
        price = "[red]FAILED[/red]" if r.error else _price(r.prediction)
        latency = "—" if r.latency_ms is None else f"{r.latency_ms:.1f}"
        table.add_row(
            str(r.row),
            r.zipcode or "?",
            _count(r.sqft_living),
            _count(r.bedrooms),
            price,
            r.model_version or "—",
            latency,
        )
    return table


def summary_table(summary: Summary) -> Table:
    table = Table(title="Summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    total = summary.rows_total
    table.add_row("rows OK", f"{summary.rows_ok}/{total}")
    table.add_row("failures", str(len(summary.failures)))
    job = f" (job {summary.batch_job_id})" if summary.batch_job_id else ""
    table.add_row("batch job", f"{summary.batch_status}{job}")
    table.add_row("rows matching", f"{summary.rows_matching}/{total} (batch = single, to the cent)")
    latencies = summary.latencies_ms
    if latencies:
        mean = sum(latencies) / len(latencies)
        table.add_row(
            "single latency",
            f"mean {mean:.1f} ms · p50 {percentile(latencies, 50):.1f} ms · "
            f"p95 {percentile(latencies, 95):.1f} ms",
        )
    else:
        table.add_row("single latency", "no successful calls")
    return table


MAX_FAILURES_SHOWN = 25
cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    url: Annotated[str, typer.Option(help="Base URL of the API, e.g. http://127.0.0.1:8000.")],
    csv: Annotated[
        Path | None,
        typer.Option(help=f"Houses to submit; default $REALTY_DATA_DIR/{FUTURE_FILE} (data/)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the batch job to finish.")
    ] = 120.0,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="REALTY_API_KEY",
            show_default=False,
            help="An API key of role batch or admin (make run's: .run/secrets/admin-key).",
        ),
    ] = None,
) -> None:
    """Submit every example house singly and as a batch; exit 1 on any failure."""
    console = Console()
    if not console.is_terminal:  # a log file or CI: don't squeeze the table into 80 columns
        console = Console(width=120)
    csv_path = csv or default_csv()
    console.print(f"Checking {url} with {csv_path}")

    def notify(message: str) -> None:
        console.print(f"[dim]{escape(message)}[/dim]", soft_wrap=True)

    summary = run(url, csv_path, timeout, key=key, notify=notify)

    if summary.rows:
        console.print(rows_table(summary))
    console.print(summary_table(summary))
    if summary.ok:
        console.print("[bold green]OK[/bold green]: every estimate arrived and batch = single.")
        return
    console.print(f"[bold red]FAILED[/bold red]: {len(summary.failures)} problem(s)")
    for failure in summary.failures[:MAX_FAILURES_SHOWN]:
        console.print(f"  [red]✗[/red] {escape(failure)}", highlight=False)
    if len(summary.failures) > MAX_FAILURES_SHOWN:
        console.print(f"  … and {len(summary.failures) - MAX_FAILURES_SHOWN} more")
    if not summary.failures:  # `ok` is False for a reason not listed (should not happen)
        console.print("  the check did not complete")
    raise typer.Exit(1)


if __name__ == "__main__":
    cli()
