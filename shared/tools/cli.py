"""`realty`: set up data, train and evaluate bundles, list them, score CSV files offline, and
switch the running service between versions."""

import getpass
import math
import sys
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
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from shared.model.bundles import (
    BundleError,
    latest_version,
    list_manifests,
    load_bundle,
    servable,
    verify_bundle,
)
from shared.model.contract import GBM, MODEL_KINDS, cents
from shared.model.data import DataMissingError, ensure_data, read_csv
from shared.model.manifest import check_version
from shared.model.market import month_label
from shared.model.predictor import Predictor
from shared.model.signing import signing_key
from shared.records.database import failure_words, sync_engine
from shared.records.export import export_csv
from shared.records.migrate import upgrade
from shared.records.retention import purge_expired
from shared.settings import get_settings
from shared.tools.rollout import Rollout, RolloutError
from shared.tools.training import TRAINERS, EmptySplitError, train_gbm
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
    EmptySplitError,
    redis.ConnectionError,
    redis.TimeoutError,
    DBAPIError,  # PostgreSQL unreachable, a login refused, the schema not migrated
)


def _describe(exc: Exception, command: str | None) -> str:
    if isinstance(exc, RolloutError):
        return f"{command} stopped: {exc}"
    if isinstance(exc, redis.RedisError):
        return f"Redis did not answer: {exc}"
    if isinstance(exc, DBAPIError):  # the driver's first line: where, never a password
        first = next(iter(str(exc.orig).splitlines()), type(exc.orig).__name__)
        return f"{failure_words(exc)} ({first})"
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
    sales_before: Annotated[
        datetime | None,
        typer.Option(
            "--sales-before",
            formats=["%Y-%m-%d"],
            help="gbm only: train on the sales before this day and test on the later ones "
            "(2015-03-01: the model of `realty evaluate`'s date-ordered holdout).",
        ),
    ] = None,
) -> None:
    """Train a model kind into a new, immutable bundle version, signed with the bundle signing
    key (generated on the first run)."""
    settings = get_settings()
    if kind not in TRAINERS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose from {', '.join(TRAINERS)}")
    if sales_before is not None and kind != GBM.name:
        raise typer.BadParameter(f"--sales-before trains a {GBM.name} bundle, not {kind}")
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
        if sales_before is None:
            manifest = TRAINERS[kind](settings)
        else:
            manifest = train_gbm(settings, sales_before=sales_before.date().isoformat())
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


# --- the record of estimates (shared/records) ------------------------------------------------
db = typer.Typer(help="The record's database (PostgreSQL).", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade(
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for PostgreSQL to accept connections.")
    ] = 0.0,
) -> None:
    """Migrate the record's schema to the newest revision, as its owner, and set the service
    roles' passwords (what rotating one takes). Safe to run again, and several at once."""
    revision = upgrade(get_settings(), wait_s=wait)
    console.print(f"the record's schema is at revision {revision}")


estimates = typer.Typer(help="The record of estimates: export, purge.", no_args_is_help=True)
app.add_typer(estimates, name="estimates")


@estimates.command("export")
def export_estimates(
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")],
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day (UTC); default: now.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV here instead of stdout.")] = None,
) -> None:
    """Every estimate made from SINCE to UNTIL (whole days, UTC) as CSV, oldest first: the
    record's fields, then the house's, one column each."""
    engine = sync_engine(get_settings(), "realty-cli")
    last = until.date() if until else None
    try:
        if out is None:
            count = export_csv(engine, since.date(), last, sys.stdout)
        else:  # written aside, then renamed: never half a file under its name
            partial = out.with_name(f".{out.name}.partial")
            try:
                with partial.open("w", newline="") as file:
                    count = export_csv(engine, since.date(), last, file)
                partial.replace(out)
            finally:
                partial.unlink(missing_ok=True)
    finally:
        engine.dispose()
    error_console.print(f"exported {count} estimates{f' to {out}' if out else ''}")


@estimates.command("purge")
def purge_estimates() -> None:
    """Delete the estimates older than REALTY_RECORDS_RETENTION_DAYS now (the recorder does
    it every REALTY_RECORDS_PURGE_INTERVAL_S too)."""
    settings = get_settings()
    engine = sync_engine(settings, "realty-cli")
    try:
        days = settings.records_retention_days
        deleted = purge_expired(engine, days, settings.records_purge_batch_rows)
    finally:
        engine.dispose()
    console.print(f"deleted {deleted} estimates older than {days} days")


# --- sale prices fed back, live accuracy and drift (shared/monitoring) --------------------------
sales_commands = typer.Typer(help="Sale prices fed back against the estimates.")
app.add_typer(sales_commands, name="sales")


@sales_commands.command("import")
def import_sales(
    file: Annotated[
        Path, typer.Argument(help="CSV: request_id, price, date (or the house's columns).")
    ],
) -> None:
    """Record the sale prices of FILE, each linked to its estimate, by the rules of POST
    /v1/sales: all or nothing, every refused row named (row numbered from 0; CSV line =
    row + 2)."""
    from shared.monitoring.sales import SalesRefused, import_file

    settings = get_settings()
    engine = sync_engine(settings, "realty-sales-import")
    try:
        recorded = import_file(engine, file, f"cli:{getpass.getuser()}", settings.sales_max_rows)
    except SalesRefused as refused:
        for refusal in refused.refusals:
            error_console.print(escape(f"{file}: {refusal}"), soft_wrap=True)
        error_console.print(f"[red]realty: {escape(str(refused))}[/red]")
        raise typer.Exit(1) from None
    except ValueError as exc:  # a file that is not a readable CSV of sales
        error_console.print(f"[red]realty: {escape(f'{file}: {exc}')}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(
        f"recorded {recorded.sales} sales from {file} ({recorded.by_house} matched by the house)"
    )


@app.command()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="Print the tables once and exit.")] = False,
    report: Annotated[
        Path, typer.Option(help="The model report whose holdout figures set the bands.")
    ] = Path("docs/model_report.json"),
) -> None:
    """Live accuracy per version (the latest sales fed back) and drift (the latest estimates
    against the training profile), every figure flagged when it leaves its band; refreshed
    every REALTY_MONITOR_REFRESH_S until Ctrl-C. Exit status 1 when the record could not be
    read (the last time)."""
    from shared.monitoring.monitor import watch

    settings = get_settings()
    client = _redis(quick=True)
    engine = sync_engine(settings, "realty-monitor")
    try:
        readable = watch(engine, client, settings, report, console, once=once)
    finally:
        engine.dispose()
    if not readable:
        raise typer.Exit(1)


# --- today's market from the sales fed back (shared/tools/market_refresh.py) -----------------
market = typer.Typer(help="The market index of a gbm bundle.", no_args_is_help=True)
app.add_typer(market, name="market")


@market.command("refresh")
def refresh_market(
    version: Annotated[
        str | None,
        typer.Option("--from", help="The bundle to refresh (default: the active version)."),
    ] = None,
) -> None:
    """Write a new bundle version with the same trees whose market index is carried past its
    training months by the sales on record (each month with enough sales). Roll it out like any
    version; weekly keeps estimates at today's market (docs/operations.md)."""
    from shared.tools.market_refresh import RefreshRefused, refresh

    settings = get_settings()
    source = check_version(version) if version else _active_version()
    if source is None:
        error_console.print(
            "[red]realty: the active version is unknown (Redis unreachable): say --from vN[/red]"
        )
        raise typer.Exit(1)
    bundle = load_bundle(settings.model_dir, source, key=signing_key(settings, create=False))
    engine = sync_engine(settings, "realty-market-refresh")
    try:
        written, index = refresh(settings, bundle, engine)
    except RefreshRefused as refused:
        error_console.print(f"[red]realty: {escape(str(refused))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    first, last = index.months()
    console.print(
        f"wrote {written}: {source}'s trees, estimates now as of {last} (index {first} to "
        f"{last}; prices {math.expm1(index.shift(index.last_month)):+.1%} since "
        f"{month_label(index.reference_month)}); roll it out with `realty rollout {written}`"
    )


if __name__ == "__main__":
    app()
