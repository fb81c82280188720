"""Every knob of the service, read from `REALTY_*` environment variables.

One module so that the API, the workers, training and the tests agree on paths, limits and
timeouts; each default is chosen on purpose and the reason sits next to it.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.cores import usable_cores


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
    worker_node: str | None = Field(
        None,
        description="The Celery node name of this worker (`<version>@<host>`), set by "
        "`python -m worker` for its pool processes: the micro-batcher's task events carry it.",
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
    worker_concurrency: int = Field(
        default_factory=usable_cores,
        ge=1,
        description="Processes of each worker when `--concurrency` is not given: one per core "
        "this process may use, at most 4 (shared/cores.py: its CPU affinity and cgroup quota, "
        "so a container counts its own `cpus:` limit), the layout `make run` starts. Empty "
        "counts as unset (docker-compose.yml's `${WORKER_CONCURRENCY:-}`).",
    )

    @field_validator("worker_concurrency", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return usable_cores() if value == "" else value

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
        default_factory=lambda: max(1, usable_cores() // 2),
        ge=1,
        description="Pool processes of each worker that answer single predictions; the others "
        "take batch-job chunks only. Default: half the cores this process may use (its "
        "container's, shared/cores.py), at least one: on 2 cores one micro-batcher answered "
        "more than two, at less CPU a request (docs/operations.md, Tuning).",
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

    # --- the record of estimates and sales (shared/records, PostgreSQL) -----------------------
    database_url: str = Field(
        "postgresql+psycopg://127.0.0.1:5432/realty",
        description="SQLAlchemy URL of the record. Without a user, each process logs in as its "
        "role's (shared/records/database.py: redis_user api -> realty_api, worker -> "
        "realty_worker, admin -> realty, the owner, who migrates); without a password, with "
        "database_password. A URL with both (a managed database) is used as it is. Never "
        "logged with a password.",
    )
    database_password: SecretStr | None = Field(
        None,
        description="The process's database password; unset: read from "
        "secrets_dir/postgres-<user>-password, generated there at first start (`make run`).",
    )
    records_buffer_rows: int = Field(
        250_000,
        ge=1,
        description="Most estimates waiting in Redis to be written (about 0.7 KB each): while "
        "PostgreSQL is down they wait there and are written when it is back; past this bound "
        "new ones are counted as dropped (metric realty_records_dropped_total, an alert).",
    )
    records_retention_days: int = Field(
        730, ge=1, description="Estimates older than this are deleted (sales are kept)."
    )
    # --- the recorder and the database's roles (shared/records; helper R) -----------------------
    database_api_password: SecretStr | None = Field(
        None,
        description="realty_api's password, set by `realty db upgrade` (run as the owner); "
        "unset: secrets_dir/postgres-realty_api-password, generated where missing.",
    )
    database_worker_password: SecretStr | None = Field(
        None,
        description="realty_worker's password, set by `realty db upgrade` (run as the owner); "
        "unset: secrets_dir/postgres-realty_worker-password, generated where missing.",
    )
    database_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Longest wait for PostgreSQL to connect or answer one statement: past it "
        "GET /v1/estimates answers 503 and the recorder retries later, instead of hanging.",
    )
    records_write_rows: int = Field(
        5_000,
        ge=1,
        description="Most estimates the recorder writes in one statement (at least one buffer "
        "item, so a 1,000-row batch chunk is never split): a backlog of 100,000 drained at "
        "10,000 a second in such writes, each about 0.5 s, far under the statement timeout "
        "(docs/operations.md, Record of estimates).",
    )
    records_poll_s: float = Field(
        0.5,
        gt=0,
        description="How often an idle recorder looks at the buffer: an estimate is on record "
        "within about this long, and writes gather what arrived meanwhile into one statement.",
    )
    records_retry_max_s: float = Field(
        30.0,
        gt=0,
        description="Longest pause between the recorder's attempts while PostgreSQL is down "
        "(the pause doubles from records_poll_s up to this).",
    )
    records_delay_alert_s: float = Field(
        60.0,
        gt=0,
        description="Readiness says 'degraded: recording delayed' when the oldest estimate "
        "waiting in Redis is older than this (or the last write failed).",
    )
    records_purge_interval_s: float = Field(
        3600.0, gt=0, description="How often the recorder deletes estimates past retention."
    )
    records_purge_batch_rows: int = Field(
        10_000,
        ge=1,
        description="Rows deleted per statement by the retention purge: each a short "
        "transaction, so a first purge of years of estimates never holds long locks.",
    )

    # --- live accuracy and drift (shared/monitoring) -------------------------------------------
    accuracy_window_sales: int = Field(
        500,
        ge=1,
        description="Live accuracy of a version is measured on its latest this many sales fed "
        "back (by sale date): at 500, chance moves PPE10 by about 2 points (binomial standard "
        "error), so a drop of 5 is news; fewer sales answer sooner but noisier.",
    )
    drift_window_requests: int = Field(
        2_000,
        ge=1,
        description="Drift of a version is measured on its latest this many recorded "
        "estimates: enough for the zipcodes' 70 bins (drift_min_rows_per_bin each), recent "
        "enough to show a shift within a day of normal traffic.",
    )
    drift_psi_alert: float = Field(
        0.25,
        gt=0,
        description="A feature's (or the prediction's) population stability index above this "
        "is an alert: the usual reading is < 0.1 no shift, 0.1-0.25 moderate, > 0.25 a "
        "significant shift that warrants a look and likely a retraining.",
    )
    drift_min_rows_per_bin: int = Field(
        10,
        ge=1,
        description="A feature is judged only once the window holds this many estimates per "
        "bin of its training profile: sampling alone gives a PSI near (bins-1)/n, 0.09 at 10 "
        "per bin, safely under drift_psi_alert (deciles: 100 estimates; zipcodes: about 710).",
    )
    out_of_range_alert: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of recent estimates warning of an input outside the training range "
        "above which it is an alert: the training homes themselves never warn, so 5 % means "
        "homes unlike anything the model learned are coming in.",
    )
    live_cache_s: float = Field(
        30.0,
        ge=0,
        description="How long an API process reuses the live figures before asking PostgreSQL "
        "again: a scrape every 15 s costs one query per API process every 30 s, not one each.",
    )
    sales_max_rows: int = Field(
        20_000,
        ge=1,
        description="Most sales in one POST /v1/sales body or `realty sales import` file (413 "
        "past it): a month of a large brokerage's closings, and a few MB.",
    )
    monitor_refresh_s: float = Field(
        5.0, gt=0, description="How often `realty monitor` reads the figures again."
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
    api_fast_path: bool = Field(
        True,
        description="Answer valid houses from keys checked within key_cache_s without "
        "FastAPI's layers (api/fast_path.py; the same answers, 42 % fewer API CPU samples "
        "per prediction in docs/performance.md's flame graphs); false sends every request "
        "through FastAPI.",
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
    # 2,500: a 100,000-row job was processed 5-15 % sooner than with 1,000-row chunks (fewer
    # task round trips and model calls), 5,000 or 10,000 within the noise of it, and single
    # predictions beside a job answered p99 15-20 ms later (docs/operations.md, Tuning).
    batch_chunk_rows: int = Field(2_500, description="Rows per chunk task of a batch job.")
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

    # --- metrics and logs (api/metrics.py, worker/metrics.py, shared/logs.py; helper M) -------
    metrics_token: SecretStr | None = Field(
        None,
        description="The scrape credential: Prometheus presents it (Bearer) to read /metrics "
        "and the workers' metrics, and it opens nothing else, so Prometheus holds no API key. "
        "Unset: secrets_dir/metrics-token, generated there at first start.",
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port on which each worker pool serves its processes' metrics to "
        "Prometheus (GET /metrics, scrape token). 0: not served (several pools on one host "
        "each need a port of their own); compose and `make run` set one.",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="Address the worker pool's metrics port listens on: loopback by default; "
        "0.0.0.0 in a container, where Prometheus reaches it over the compose network.",
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="json: one JSON object per line (time, level, logger, message and fields "
        "such as request_id), for machines and `jq`, the same under make run, compose and the "
        "tests; text: the same lines for a human reading a terminal.",
    )
    log_level: str = Field(
        "INFO",
        description="Level of the API's and workers' own log lines. INFO includes one line "
        "per HTTP request; WARNING keeps only problems.",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
