"""Batch job states as the fake batch service reports them."""

from collections.abc import Sequence

from api.job_store import BatchJob
from api.schemas import BatchStatus
from shared.wire.jobs import JobResults, encode_result
from shared.wire.messages import Estimate


def finished(
    job_id: str,
    estimates: Sequence[Estimate],
    *,
    version: str = "v2",
    chunk_rows: int = 1_000,
    comps: int = 0,
) -> BatchJob:
    """A job that succeeded with one row per estimate, in order, its chunks of `chunk_rows`
    written as workers write them."""
    status = BatchStatus(
        job_id=job_id,
        status="succeeded",
        model_version=version,
        rows_total=len(estimates),
        rows_done=len(estimates),
        created_at="2026-11-28T00:00:00Z",
        expires_in_s=100,
        comps=comps,
    )
    chunks = tuple(
        encode_result(estimates[start : start + chunk_rows], start, version).decode()
        for start in range(0, len(estimates), chunk_rows)
    )
    return BatchJob(status, JobResults(chunks))


def succeeded(job_id: str, *prices: float, comps: int = 0, **fields: object) -> BatchJob:
    """A finished job of v2 with one result per price, each with `fields`."""
    return finished(job_id, [Estimate(prediction=p, **fields) for p in prices], comps=comps)
