"""`python -m worker [--model VERSION]`: start a Celery worker for one model version.

The version decides the queue and the node name (`<version>@<host>`, as Flower shows it), so
it is resolved here, before Celery starts, and handed to the pool processes via the environment.
Its bundle is verified here too, signature first (`shared.model.bundles.verify_bundle`): a
bundle that is not the one training signed stops the worker at once with the reason, so it is
never advertised, a rollout to it never becomes warm, and the active version keeps serving.
"""

import os
import socket

# One BLAS/OpenMP thread per process (the pool already uses every core); read by those libraries
# when they load, so set before anything imports numpy.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from shared.model.bundles import BundleError, verify_bundle
from shared.model.manifest import check_version
from shared.model.signing import signing_key
from shared.settings import get_settings
from shared.wire import names
from worker.serving import resolve_version

cli = typer.Typer(add_completion=False)


@cli.command()
def main(
    model: str | None = typer.Option(None, help="Bundle version to serve (default: newest)."),
    concurrency: int | None = typer.Option(None, help="Processes (default: setting)."),
    name: str = typer.Option("%h", help="Host part of the Celery node name."),
    loglevel: str = typer.Option("INFO"),
) -> None:
    settings = get_settings()
    try:
        version = check_version(model or resolve_version(settings))
        # Fail here, clearly, not in every child.
        verify_bundle(settings.model_dir, version, key=signing_key(settings, create=False))
    except BundleError as exc:
        typer.echo(f"worker not started: {exc}", err=True)
        raise typer.Exit(1) from exc
    node = f"{version}@{name.replace('%h', socket.gethostname())}"
    os.environ["REALTY_MODEL_VERSION"] = version
    os.environ["REALTY_WORKER_NODE"] = node  # the pool processes' name in their task events
    get_settings.cache_clear()
    from worker.app import celery_app

    celery_app.worker_main(
        [
            "worker",
            f"--queues={','.join(names.version_queues(version))}",
            f"--hostname={node}",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":
    cli()
