"""Readiness says "recording delayed" from the recorder's published state: when its last
attempt failed, or when the oldest waiting estimate is older than the alert; nothing when no
recorder has said anything."""

from shared.records.status import delay_reason
from shared.wire.messages import RecorderState


def state(**values: object) -> RecorderState:
    return RecorderState(recorder="host:1", at_ms=1, **values)  # type: ignore[arg-type]


def test_a_failed_write_delays_recording_and_says_why_and_how_much_waits():
    reason = delay_reason(state(error="PostgreSQL is unreachable", backlog_rows=240), 60)
    assert reason == "recording delayed: PostgreSQL is unreachable; 240 estimates wait in Redis"


def test_an_old_backlog_delays_recording_even_while_writes_succeed():
    reason = delay_reason(state(backlog_rows=90_000, backlog_age_s=75.4), 60)
    assert reason == "recording delayed: the oldest of 90000 estimates wait in Redis is 75 s old"


def test_a_recent_backlog_or_no_recorder_delays_nothing():
    assert delay_reason(state(backlog_rows=300, backlog_age_s=0.4), 60) is None
    assert delay_reason(None, 60) is None
