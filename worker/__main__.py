"""`python -m worker [--model VERSION]`: start a Celery worker for one model version.

The version decides the queue and the node name (`<version>@<host>`, as Flower shows it), so
it is resolved here, before Celery starts, and handed to the pool processes via the environment.
"""

import os
import socket

# One BLAS/OpenMP thread per process (the pool already uses every core); read by those libraries
# when they load, so set before anything imports numpy.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from shared.model.bundles import BundleError, verify_bundle
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
    version = model or resolve_version(settings)
    try:
        verify_bundle(settings.model_dir, version)  # fail here, clearly, not in every child
    except BundleError as exc:
        typer.echo(f"cannot serve {version}: {exc}", err=True)
        raise typer.Exit(1) from exc
    node = f"{version}@{name.replace('%h', socket.gethostname())}"
    os.environ["REALTY_MODEL_VERSION"] = version
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
