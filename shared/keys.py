"""Names of everything the API and the workers share in Redis, in one place."""

ACTIVE_VERSION = "realty:active_version"
PREVIOUS_VERSION = "realty:previous_version"  # what `realty rollback` returns to
ROLLOUT_TARGET = "realty:rollout_target"  # a version worker pools start before it is activated
MODELS = "realty:models"  # set of versions some worker has registered
PREDICT_ONE_TASK = "realty.predict_one"
PREDICT_CHUNK_TASK = "realty.predict_chunk"
PING_TASK = "realty.ping"


def queue_name(version: str) -> str:
    """Each model version has its own queue, consumed only by workers that loaded it."""
    return f"realty.model.{version}"


def workers_key(version: str) -> str:
    """Sorted set of live worker nodes of a version, scored by last heartbeat (unix s)."""
    return f"realty:workers:{version}"


def manifest_key(version: str) -> str:
    return f"realty:manifest:{version}"


def reply_key(request_id: str) -> str:
    return f"realty:reply:{request_id}"


def job_key(job_id: str) -> str:
    return f"realty:job:{job_id}"


def job_results_key(job_id: str) -> str:
    return f"realty:job:{job_id}:results"


def job_errors_key(job_id: str) -> str:
    return f"realty:job:{job_id}:errors"
