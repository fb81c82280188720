"""Names of everything the API and the workers share in Redis, in one place."""

ACTIVE_VERSION = "realty:active_version"
PREVIOUS_VERSION = "realty:previous_version"  # what `realty rollback` returns to
ROLLOUT_TARGET = "realty:rollout_target"  # a version worker pools start before it is activated
ROLLOUT_LOCK = "realty:rollout_lock"  # one rollout at a time
MODELS = "realty:models"  # set of versions some worker has registered
PREDICT_CHUNK_TASK = "realty.predict_chunk"
PING_TASK = "realty.ping"
# Not a Celery task: the name under which the micro-batcher's model calls appear in Flower
# (worker/flower_events.py).
PREDICT_SINGLES_TASK = "realty.predict_singles"


def queue_name(version: str) -> str:
    """The version's own Celery queue, consumed only by workers that loaded it (the pings a
    rollout sends; single predictions go to `requests_list`, batch chunks to their queue)."""
    return f"realty.model.{version}"


def batch_queue_name(version: str) -> str:
    """Batch chunks wait in a queue of their own: workers take from both queues in turn, so a
    100,000-row job delays a waiting single prediction by at most one chunk, not the whole job."""
    return f"{queue_name(version)}.batch"


def requests_list(version: str) -> str:
    """Single predictions waiting for the version's micro-batcher (plain JSON, not Celery
    messages); like kombu's queues, pushed on the left and taken from the right."""
    return f"realty:requests:{version}"


def processing_owners(version: str) -> str:
    """Set of the micro-batchers (owners) taking the version's requests: what the reaper walks."""
    return f"realty:processing:{version}"


def processing_list(version: str, owner: str) -> str:
    """The requests one micro-batcher has taken and not yet answered: put back in
    `requests_list` by the reaper if the owner's lease lapses (it was killed)."""
    return f"realty:processing:{version}:{owner}"


def processing_lease(version: str, owner: str) -> str:
    """Held (with an expiry) while its micro-batcher lives; its value is the batcher's measured
    rate, in requests per second, from which the version's queue depth limit is derived."""
    return f"realty:lease:{version}:{owner}"


def queue_capacity(version: str) -> str:
    """Requests per second the version's live micro-batchers answer together (the reaper's
    sum of their leases), read by the API's routing script to bound the queue's depth."""
    return f"realty:capacity:{version}"


def version_queues(version: str) -> tuple[str, str]:
    """The version's Celery queues (pings and batch chunks)."""
    return queue_name(version), batch_queue_name(version)


def version_lists(version: str) -> tuple[str, str, str]:
    """Every Redis list holding work for the version: what a rollout drains."""
    return (*version_queues(version), requests_list(version))


def workers_key(version: str) -> str:
    """Sorted set of live worker nodes of a version, scored by last heartbeat (unix s)."""
    return f"realty:workers:{version}"


def manifest_key(version: str) -> str:
    return f"realty:manifest:{version}"


def reply_key(request_id: str) -> str:
    """A one-off reply list (rollout pings)."""
    return f"realty:reply:{request_id}"


def reply_inbox(owner: str) -> str:
    """The list every reply to one API process's single predictions is pushed to."""
    return f"realty:replies:{owner}"


def job_key(job_id: str) -> str:
    return f"realty:job:{job_id}"


def job_results_key(job_id: str) -> str:
    return f"realty:job:{job_id}:results"


def job_chunks_key(job_id: str) -> str:
    """Rows of the chunks not yet predicted (deleted as each is done): what a re-sent chunk
    task reads, so a lost message can be replaced without the client sending the rows again."""
    return f"realty:job:{job_id}:chunks"


def job_errors_key(job_id: str) -> str:
    return f"realty:job:{job_id}:errors"


# The record's buffer (shared/records): a list of JSON arrays of EstimateRecord, pushed on the
# right by the workers and written to PostgreSQL from the left by the recorder; RECORDS_ROWS
# counts the rows it holds (its bound is `records_buffer_rows`), RECORDS_DROPPED the rows refused
# while it was full (never expected: an alert).
RECORDS = "realty:records"
RECORDS_ROWS = "realty:records:rows"
RECORDS_DROPPED = "realty:records:dropped"
RECORDER_LOCK = "realty:records:lock"  # one recorder writes at a time
# The recorder holding the lock: its last write, error and backlog (RecorderState JSON, expiring).
RECORDER_STATE = "realty:records:state"

API_KEYS = "realty:api_keys"  # hash: key id -> KeyRecord JSON (a digest, never the key)
AUDIT = "realty:audit"  # list of AuditEntry JSON, newest first


def rate_bucket(key_id: str) -> str:
    """A key's token bucket for its requests per second (hash: tokens, at)."""
    return f"realty:quota:rate:{key_id}"


def key_jobs(key_name: str) -> str:
    """Batch jobs of a key not yet known to be finished (sorted set scored by submit time)."""
    return f"realty:quota:jobs:{key_name}"
