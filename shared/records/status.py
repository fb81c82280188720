"""What readiness says about the record: "degraded: recording delayed" while estimates wait in
Redis because PostgreSQL is unreachable or behind, from the state the recorder publishes
(`names.RECORDER_STATE`). Predictions still work meanwhile, so it is a 200, not a 503."""

from pydantic import ValidationError
from redis import asyncio as aioredis

from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import RecorderState


def delay_reason(state: RecorderState | None, delay_alert_s: float) -> str | None:
    """Why recording is delayed, or None when it is not (or no recorder has said anything)."""
    if state is None:
        return None
    waiting = f"{state.backlog_rows} estimates wait in Redis"
    if state.error is not None:
        return f"recording delayed: {state.error}; {waiting}"
    if state.backlog_age_s > delay_alert_s:
        return f"recording delayed: the oldest of {waiting} is {state.backlog_age_s:.0f} s old"
    return None


class RecordingStatus:
    """The API's view of the recorder: one GET per readiness probe."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.delay_alert_s = settings.records_delay_alert_s

    async def delayed(self) -> str | None:
        raw = await self.redis.get(names.RECORDER_STATE)
        try:
            state = None if raw is None else RecorderState.model_validate_json(raw)
        except ValidationError:
            state = None  # a state of another release's shape: an upgrade in progress
        return delay_reason(state, self.delay_alert_s)
