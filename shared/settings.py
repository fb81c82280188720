"""Every knob of the service, read from `REALTY_*` environment variables.

One module so that the API, the workers, training and the tests agree on paths, limits and
timeouts; each default is chosen on purpose and the reason sits next to it.
"""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REALTY_", extra="ignore")

    # --- data and bundles -------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the client's CSV files are read from.")
    source_data_dir: Path = Field(
        Path("../shared/data"),
        description="Where set-up copies the client's CSV files from when data_dir lacks them.",
    )
    model_dir: Path = Field(Path("model_artifacts"), description="Root of the versioned bundles.")
    secrets_dir: Path = Field(
        Path(".run/secrets"),
        description="Where missing secrets are generated at first start and kept (mode 0600; "
        "git-ignored).",
    )
    bundle_signing_key: SecretStr | None = Field(
        None,
        description="Signs every bundle's manifest at training; workers and `realty predict` "
        "refuse a bundle it did not sign (shared/model/signing.py). Unset: read from "
        "secrets_dir/bundle-signing-key, which training generates when missing.",
    )
    model_version: str | None = Field(
        None, description="The bundle a worker serves; unset means the newest bundle on disk."
    )

    # --- Redis and Celery -------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Without a password it is completed with redis_user and its password "
        "(shared/wire/redis_auth.py); never logged with one.",
    )
    redis_user: str = Field(
        "admin",
        description="Redis ACL user: api, worker, or admin (the operator's `realty`, the "
        "default). Each service names its own (Procfile, docker-compose.yml).",
    )
    redis_password: SecretStr | None = Field(
        None,
        description="redis_user's password; unset: read from secrets_dir/redis-<user>-password, "
        "generated there at first start (`make run`).",
    )
    # Connect/read timeouts keep a Redis outage a fast 503 instead of a hanging request.
    redis_socket_timeout_s: float = 2.0
    # Unacked messages of a worker that died return to the queue after this long (kombu's Redis
    # visibility timeout): it bounds how long a batch job stalls after a crash. It must exceed the
    # longest task (the hard time limit below) or a slow task would run twice. A chunk of
    # 1,000 rows takes well under a second, so 30 s is a wide margin.
    visibility_timeout_s: int = 60
    task_soft_time_limit_s: int = 20
    task_time_limit_s: int = 30
    worker_concurrency: int = 1
    # Heartbeats tell the API which versions have a live, warm worker.
    heartbeat_interval_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
    served_cache_s: float = Field(
        1.0, description="How long an API process trusts that a version has a live worker."
    )

    compiled_trees: bool = Field(
        True,
        description="Predict with a gbm bundle's compiled trees (shared/model/kinds/compiled.py); "
        "false: LightGBM itself, same answers, about 7x slower (docs/performance.md, case A).",
    )

    # Micro-batching of single predictions (worker/microbatch.py).
    microbatch_max_size: int = Field(64, description="Most requests answered by one model call.")
    microbatchers: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 2),
        ge=1,
        description="Pool processes of each worker that answer single predictions; the others "
        "take batch-job chunks only. Default: half this machine's cores, at least one: on 2 "
        "cores one micro-batcher answered more than two, at less CPU a request "
        "(docs/operations.md, Tuning).",
    )
    microbatch_max_wait_ms: float = Field(
        0.0,
        description="Longest extra wait for more requests, and only once under load. 0: a "
        "batch is what queued while the previous one was computed; waiting measured slower "
        "here (docs/operations.md, Tuning).",
    )

    processing_lease_s: float = Field(
        5.0,
        description="A micro-batcher that has not renewed its lease for this long counts as "
        "dead and its held requests are answered by another (worker/request_queue.py); above "
        "the slowest batch (64 explained rows: about 1 s).",
    )
    queue_wait_s: float = Field(
        2.0,
        description="Longest a single prediction should wait in its version's queue: the "
        "queue's depth limit is this times what the version's workers answer per second; "
        "past it, 503 + Retry-After at once instead of a 504 at the deadline.",
    )

    # --- rollout -----------------------------------------------------------------------------
    rollout_warm_timeout_s: float = Field(
        120.0, description="How long a rollout waits for the new version's workers to be warm."
    )
    rollout_drain_timeout_s: float = Field(
        600.0, description="How long old workers get to empty their queue (batch jobs included)."
    )
    pool_poll_s: float = Field(1.0, description="How often a worker pool re-reads the pointers.")

    # --- access: keys and quotas (docs/security.md) --------------------------------------------
    admin_key: SecretStr | None = Field(
        None,
        description="The first admin key (`rk_…`), registered by the API at start; unset: "
        "read from secrets_dir/admin-key, generated there at first start.",
    )
    key_cache_s: float = Field(
        1.0,
        description="How long an API process trusts a checked key: a revocation takes "
        "effect within this time, and a prediction costs no key lookup of its own.",
    )
    rate_per_s: float = Field(
        20.0, description="Requests per second per key (a key's own rate overrides it; 0: none)."
    )
    rate_burst_s: float = Field(
        2.0, description="A key's burst, in seconds of its rate (20/s and 2 s: 40 at once)."
    )
    max_jobs_per_key: int = Field(3, description="Batch jobs of one key queued or running.")
    max_rows_queued_per_key: int = Field(
        200_000, description="Rows of one key's unfinished batch jobs, all together."
    )

    # --- API limits and deadlines -------------------------------------------------------------
    http_header_timeout_s: float = Field(
        5.0,
        description="A request's headers must arrive within this of its first byte (or of "
        "the connection), else the connection is closed (api/http_protocol.py).",
    )
    http_body_timeout_s: float = Field(
        60.0,
        description="A request's whole body must arrive within this of its headers: a 32 MiB "
        "batch at 5 Mbit/s takes about 55 s.",
    )
    predict_timeout_s: float = Field(10.0, description="Deadline of a sync prediction (504 after).")
    retry_after_s: int = Field(5, description="Retry-After sent with every 503.")
    max_body_bytes: int = Field(32 * 1024 * 1024, description="Larger bodies get 413.")
    max_batch_rows: int = Field(100_000, description="Larger batch jobs get 413.")
    batch_chunk_rows: int = Field(1_000, description="Rows per chunk task of a batch job.")
    batch_parse_concurrency: int = Field(
        4,
        ge=1,
        description="Batch bodies one API process reads at once (api/batch_body.py), each held "
        "as it arrives, a row at a time: it bounds the API's memory under many uploads.",
    )
    batch_parse_wait_s: float = Field(
        10.0,
        ge=0,
        description="How long a batch upload waits for one of those turns before a 503 + "
        "Retry-After; its body waits unread meanwhile.",
    )
    batch_stall_s: float = Field(
        120.0,
        description="A job without progress for this long has its unfinished chunks sent again "
        "(when polled); above the visibility timeout, so normal redelivery comes first.",
    )
    job_ttl_s: int = Field(24 * 3600, description="How long batch results are kept.")
    reply_ttl_s: int = Field(60, description="How long an unread sync reply lives in Redis.")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
