"""Batch job states as the fake batch service reports them."""

from api.job_store import BatchJob
from api.schemas import BatchStatus
from shared.wire.jobs import JobResults, encode_result
from shared.wire.messages import Estimate


def succeeded(job_id: str, *prices: float, comps: int = 0, **fields: object) -> BatchJob:
    """A finished job of v2 with one result per price, in row order, each with `fields`; its
    rows written as a worker writes them."""
    estimates = [Estimate(prediction=price, **fields) for price in prices]
    status = BatchStatus(
        job_id=job_id,
        status="succeeded",
        model_version="v2",
        rows_total=len(prices),
        rows_done=len(prices),
        created_at="2026-11-28T00:00:00Z",
        expires_in_s=100,
        comps=comps,
    )
    return BatchJob(status, JobResults((encode_result(estimates, 0, "v2").decode(),)))
