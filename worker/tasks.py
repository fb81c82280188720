"""The two tasks: one house for a waiting API request, one chunk of a batch job.

Both are idempotent (a fixed reply key, a fixed result field), which is what makes late acks
and redelivery after a lost worker safe.
"""

import json
import logging
import time
from typing import Any

import pandas as pd

from shared import keys
from shared.demographics import UnknownZipcodeError
from shared.jobs import encode_chunk
from shared.settings import get_settings
from worker import serving
from worker.app import celery_app

log = logging.getLogger(__name__)


@celery_app.task(name=keys.PREDICT_ONE_TASK)
def predict_one(house: dict[str, Any], reply_to: str) -> None:
    state = serving.current()
    predictor = state.predictor
    try:
        price = float(predictor.predict(pd.DataFrame([house]))[0])
        reply: dict[str, Any] = {
            "prediction": round(price, 2),
            "model_version": predictor.version,
            "model_kind": predictor.kind.name,
        }
    except UnknownZipcodeError as exc:
        reply = {"error": "unknown_zipcode", "detail": str(exc), "zipcodes": exc.zipcodes}
    except Exception as exc:  # the waiting caller gets an answer now, not a timeout later
        log.exception("prediction failed")
        reply = {"error": "internal", "detail": f"{type(exc).__name__}: {exc}"}
    with state.redis.pipeline() as pipe:
        pipe.rpush(reply_to, json.dumps(reply))
        pipe.expire(reply_to, get_settings().reply_ttl_s)
        pipe.execute()


@celery_app.task(name=keys.PREDICT_CHUNK_TASK)
def predict_chunk(job_id: str, chunk: int, rows: list[dict[str, Any]]) -> None:
    state = serving.current()
    ttl = get_settings().job_ttl_s
    state.redis.hsetnx(keys.job_key(job_id), "started_at", str(time.time()))
    try:
        encoded = encode_chunk(list(state.predictor.predict(pd.DataFrame(rows))))
    except UnknownZipcodeError as exc:
        with state.redis.pipeline() as pipe:
            pipe.hset(keys.job_errors_key(job_id), str(chunk), str(exc))
            pipe.expire(keys.job_errors_key(job_id), ttl)
            pipe.execute()
        return
    with state.redis.pipeline() as pipe:
        pipe.hset(keys.job_results_key(job_id), str(chunk), encoded)
        pipe.expire(keys.job_results_key(job_id), ttl)
        pipe.execute()


@celery_app.task(name=keys.PING_TASK)
def ping(reply_to: str) -> None:
    """A round trip through a version's queue: proof for a rollout that the version answers."""
    state = serving.current()
    with state.redis.pipeline() as pipe:
        pipe.rpush(reply_to, json.dumps({"model_version": state.predictor.version}))
        pipe.expire(reply_to, get_settings().reply_ttl_s)
        pipe.execute()
