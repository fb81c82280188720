"""`realty`: set up data, train and evaluate bundles, list them, score CSV files offline, and
switch the running service between versions."""

import getpass
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
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
    verify_bundle,
)
from shared.model.contract import MODEL_KINDS, cents
from shared.model.data import DataMissingError, ensure_data, read_csv
from shared.model.manifest import check_version
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.settings import get_settings
from shared.tools.rollout import Rollout, RolloutError
from shared.tools.training import TRAINERS
from shared.wire import audit, names
from shared.wire.api_keys import InvalidKeyError, KeyRegistry, Role
from shared.wire.audit import AuditEntry
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
    InvalidKeyError,
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
        typer.Option(
            "--if-missing",
            help="Do nothing when the newest bundle of this kind is one the workers would serve.",
        ),
    ] = False,
) -> None:
    """Train a model kind into a new, immutable bundle version, signed with the bundle signing
    key (generated on the first run)."""
    settings = get_settings()
    if kind not in TRAINERS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose from {', '.join(TRAINERS)}")
    key = signing_key(settings, create=True)  # before minutes of training, not after
    existing = latest_version(settings.model_dir, kind)
    if if_missing and existing:
        # Verified as a worker would: a bundle signed with another key (or none) after a key
        # change or an upgrade is replaced, so `make train` leaves a servable bundle behind.
        try:
            verify_bundle(settings.model_dir, existing, key=key)
        except BundleError as exc:
            console.print(
                f"{kind}: not serving {existing} ({escape(str(exc))}): training anew",
                soft_wrap=True,
            )
        else:
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


@contextmanager
def _audited(action: str, target: str, client: redis.Redis | None = None) -> Iterator[None]:
    """Record the admin action on the audit list once it is over, with how it ended; the actor
    is the operator's login (whoever can reach Redis's admin credentials)."""
    outcome = "stopped"
    try:
        yield
        outcome = "done"
    finally:
        entry = AuditEntry(
            actor=f"cli:{getpass.getuser()}",
            action=action,
            target=target,
            details={"outcome": outcome},
        )
        with suppress(redis.RedisError):
            audit.record(client or _redis(), entry)


@app.command()
def rollout(version: Annotated[str, typer.Argument(help="The version to make active.")]) -> None:
    """Start VERSION's workers, wait until they are warm, make it active, drain the old one."""
    check_version(version)
    with _audited("rollout", version):
        _rollout().run(version)


@app.command()
def drain(version: Annotated[str, typer.Argument(help="An inactive version to retire.")]) -> None:
    """Stop VERSION's workers once its queues are empty (after a rollout left them finishing
    batch jobs)."""
    check_version(version)
    manager = _rollout()
    active = manager.redis.get(names.ACTIVE_VERSION)
    if active is None or version == active:
        raise typer.BadParameter(f"{version} is not an inactive version beside an active one")
    with _audited("drain", version, manager.redis):
        manager.drain(version, active)


@app.command()
def rollback() -> None:
    """Roll out the version that was active before the last switch, the same way."""
    manager = _rollout()
    previous = manager.previous()
    with _audited("rollback", previous, manager.redis):
        manager.run(previous)


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
    bundle = load_bundle(
        settings.model_dir,
        check_version(model),
        key=signing_key(settings, create=False),
        artifacts=settings.compiled_trees,
    )
    predictor = Predictor(bundle)
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


keys = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@keys.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="Who holds it, e.g. anna.lee or batch-crm.")],
    role: Annotated[str, typer.Option(help="agent, batch or admin.")] = "agent",
    rate: Annotated[
        float | None,
        typer.Option(help="Requests per second (0: no limit); default: REALTY_RATE_PER_S."),
    ] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a digest."""
    client = _redis()
    with _audited("key_create", name, client):
        key = KeyRegistry(client).create(name, Role.named(role), rate)
    console.print(f"created key {name!r} ({role}); keep it now, it is not shown again:")
    typer.echo(key)


@keys.command("list")
def list_keys() -> None:
    """Every key's name, role, rate and age (never the key)."""
    table = Table(title="API keys")
    for column in ("name", "role", "requests/s", "created", "id"):
        table.add_column(column)
    for record in KeyRegistry(_redis()).records():
        rate = "setting" if record.rate_per_s is None else f"{record.rate_per_s:g}"
        created = datetime.fromtimestamp(record.created_at, UTC).isoformat(timespec="seconds")
        table.add_row(record.name, record.role, rate, created, record.key_id)
    console.print(table)


@keys.command("revoke")
def revoke_key(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke every key of that name; API processes refuse it within REALTY_KEY_CACHE_S."""
    client = _redis()
    with _audited("key_revoke", name, client):
        revoked = KeyRegistry(client).revoke(name)
    console.print(f"revoked {len(revoked)} key(s) named {name!r}")


@app.command("audit")
def show_audit(
    count: Annotated[int, typer.Option(help="How many of the newest entries.")] = 50,
) -> None:
    """Admin actions, newest first: activations, rollouts, rollbacks, drains, keys."""
    table = Table(title="audit")
    for column in ("at (UTC)", "actor", "action", "target", "details"):
        table.add_column(column)
    for entry in audit.entries(_redis(), count):
        at = datetime.fromtimestamp(entry.at, UTC).isoformat(timespec="seconds")
        details = ", ".join(f"{k}={v}" for k, v in entry.details.items())
        table.add_row(at, entry.actor, entry.action, entry.target, details)
    console.print(table)


if __name__ == "__main__":
    app()
