"""`realty`: set up data, train and evaluate bundles, list them, score CSV files offline, and
switch the running service between versions."""

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from shared.model.bundles import (
    BundleError,
    latest_version,
    list_manifests,
    load_bundle,
    servable,
)
from shared.model.contract import MODEL_KINDS, cents
from shared.model.data import DataMissingError, ensure_data, read_csv
from shared.model.predictor import Predictor
from shared.settings import get_settings
from shared.tools.rollout import Rollout, RolloutError
from shared.tools.training import TRAINERS
from shared.wire import names
from shared.wire.celery_app import make_celery
from shared.wire.redis_client import sync_client

console = Console()
error_console = Console(stderr=True)

# Failures the person at the terminal can act on (copy the data, pick an existing version,
# start Redis, look at the stopped rollout): a traceback would bury the one line they need.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    DataMissingError,
    BundleError,
    RolloutError,
    redis.ConnectionError,
    redis.TimeoutError,
)


def _describe(exc: Exception, command: str | None) -> str:
    if isinstance(exc, RolloutError):
        return f"{command} stopped: {exc}"
    if isinstance(exc, redis.RedisError):
        return f"Redis did not answer: {exc}"
    return str(exc)


class _ExpectedErrorsAsOneLine(TyperGroup):
    """Every command runs inside the group's `invoke`, so this is the one place that turns an
    expected failure into `realty: <what went wrong>` on stderr and exit status 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            line = escape(f"realty: {_describe(exc, ctx.invoked_subcommand)}")
            # soft_wrap: one line even when it is wider than the terminal.
            error_console.print(f"[red]{line}[/red]", soft_wrap=True)
            raise typer.Exit(1) from exc


app = typer.Typer(
    cls=_ExpectedErrorsAsOneLine, add_completion=False, no_args_is_help=True, help=__doc__
)


@app.command()
def setup() -> None:
    """Copy the client's CSV files into the data directory where they are missing."""
    settings = get_settings()
    copied = ensure_data(settings.data_dir, settings.source_data_dir)
    done = f"copied {', '.join(copied)}" if copied else "already complete"
    console.print(f"data in {settings.data_dir}: {done}")


@app.command()
def train(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(MODEL_KINDS)}.")] = "baseline",
    if_missing: Annotated[
        bool,
        typer.Option("--if-missing", help="Do nothing when a servable bundle of this kind exists."),
    ] = False,
) -> None:
    """Train a model kind into a new, immutable bundle version."""
    settings = get_settings()
    if kind not in TRAINERS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose from {', '.join(TRAINERS)}")
    existing = latest_version(settings.model_dir, kind)
    if if_missing and existing:
        console.print(f"{kind}: bundle {existing} exists, nothing to train")
        return
    with console.status(f"training {kind}…"):
        manifest = TRAINERS[kind](settings)
    test = manifest.metrics["test"]
    console.print(
        f"wrote {settings.model_dir / manifest.version} ({kind}): test R² {test['r2']:.3f}, "
        f"MAE ${test['mae']:,.0f}"
    )


def _redis(*, quick: bool = False) -> redis.Redis:
    """The service's Redis: a probe that gives up within half a second (`quick`), or a client
    whose reads outlast a rollout's blocking 10 s ping."""
    settings = get_settings()
    if quick:
        settings = settings.model_copy(update={"redis_socket_timeout_s": 0.5})
    return sync_client(settings, read_timeout_s=settings.redis_socket_timeout_s + 10)


def _active_version() -> str | None:
    """The service's active version, if its Redis can be reached quickly."""
    try:
        return _redis(quick=True).get(names.ACTIVE_VERSION)
    except redis.RedisError:
        return None


def _rollout() -> Rollout:
    settings = get_settings()
    return Rollout(make_celery(settings), _redis(), settings, echo=console.print)


@app.command()
def rollout(version: Annotated[str, typer.Argument(help="The version to make active.")]) -> None:
    """Start VERSION's workers, wait until they are warm, make it active, drain the old one."""
    _rollout().run(version)


@app.command()
def drain(version: Annotated[str, typer.Argument(help="An inactive version to retire.")]) -> None:
    """Stop VERSION's workers once its queues are empty (after a rollout left them finishing
    batch jobs)."""
    manager = _rollout()
    active = manager.redis.get(names.ACTIVE_VERSION)
    if active is None or version == active:
        raise typer.BadParameter(f"{version} is not an inactive version beside an active one")
    manager.drain(version, active)


@app.command()
def rollback() -> None:
    """Roll out the version that was active before the last switch, the same way."""
    manager = _rollout()
    manager.run(manager.previous())


@app.command()
def models() -> None:
    """List bundles with their held-out metrics and which one the service has active."""
    settings = get_settings()
    active = _active_version()
    table = Table(title=f"bundles in {settings.model_dir}")
    for column in ("version", "kind", "created", "test R²", "test MAE", "test MAPE", "active"):
        table.add_column(column)
    for m in list_manifests(settings.model_dir):
        test = m.metrics.get("test", {})
        table.add_row(
            m.version,
            m.kind if servable(m) else f"{m.kind} (format {m.format}: retrain)",
            m.created_at,
            f"{test.get('r2', float('nan')):.3f}",
            f"${test.get('mae', float('nan')):,.0f}",
            f"{test.get('mape', float('nan')):.1%}",
            "yes" if m.version == active else "",
        )
    console.print(table)
    if active is None:
        console.print("(active version unknown: the service's Redis is not reachable)")


@app.command()
def predict(
    input_csv: Annotated[Path, typer.Argument(help="Houses, with the columns the model needs.")],
    model: Annotated[str, typer.Option("--model", help="Bundle version, e.g. v1.")],
    out: Annotated[Path | None, typer.Option(help="Write a CSV here instead of stdout.")] = None,
) -> None:
    """Score a CSV offline through the same code path the workers use."""
    settings = get_settings()
    predictor = Predictor(load_bundle(settings.model_dir, model, artifacts=settings.compiled_trees))
    houses = read_csv(input_csv)
    result = pd.DataFrame(
        {
            "row": range(len(houses)),
            "prediction": [cents(price) for price in predictor.predict(houses)],
            "model_version": predictor.version,
        }
    )
    if out is None:
        typer.echo(result.to_csv(index=False), nl=False)
    else:
        result.to_csv(out, index=False)
        console.print(f"wrote {len(result)} predictions to {out}")


@app.command()
def evaluate(
    docs: Annotated[Path, typer.Option(help="Where model_report.md and img/ are written.")] = Path(
        "docs"
    ),
) -> None:
    """Evaluate the client's model and the candidates on the same splits and seeds (train vs
    held-out, 5-fold CV, learning curve, temporal and repeat-sale splits, price bands, zipcodes,
    interval coverage) and write docs/model_report.md with its charts."""
    from shared.tools.evaluation import evaluate as run_evaluation
    from shared.tools.report import write_report

    settings = get_settings()
    results = run_evaluation(settings)
    report = write_report(results, docs)
    console.print(f"wrote {report} and its charts in {docs / 'img'} ({results['runtime_s']} s)")
    for challenger, splits in results["beats_baseline"].items():
        misses = {split: m for split, m in splits.items() if m}
        verdict = "beats the client's model everywhere" if not misses else f"does not: {misses}"
        console.print(f"{challenger}: {verdict}")


if __name__ == "__main__":
    app()
