"""Batch job states as the fake batch service reports them."""

from api.schemas import BatchRowResult, BatchStatus


def succeeded(job_id: str, *prices: float) -> BatchStatus:
    """A finished job of v2 with one result per price, in row order."""
    return BatchStatus(
        job_id=job_id,
        status="succeeded",
        model_version="v2",
        rows_total=len(prices),
        rows_done=len(prices),
        created_at="2026-11-28T00:00:00Z",
        expires_in_s=100,
        results=[
            BatchRowResult(row=i, prediction=price, model_version="v2")
            for i, price in enumerate(prices)
        ],
    )
