"""The record's buffer in `/metrics`, read from Redis at scrape time: how many estimates wait
to be written to PostgreSQL, how old the oldest is, whether the recorder's last write failed.
The alerts "recording backlog" and "recorder failing" read these (ops/prometheus/rules.yml);
the rows the workers could not buffer at all are their own counter, realty_records_dropped_total
(worker/metrics.py)."""

from prometheus_client.core import GaugeMetricFamily
from pydantic import ValidationError

from shared.records.status import RecordingStatus
from shared.settings import Settings
from shared.wire import names
from shared.wire.messages import RecorderState


async def recording_families(
    recording: RecordingStatus | None, settings: Settings
) -> list[GaugeMetricFamily]:
    """Nothing where the app was built without the record."""
    if recording is None:
        return []
    rows, raw = await recording.redis.mget(names.RECORDS_ROWS, names.RECORDER_STATE)
    try:
        state = None if raw is None else RecorderState.model_validate_json(raw)
    except ValidationError:
        state = None  # a state of another release's shape: an upgrade in progress
    return families_of(int(rows or 0), state, settings.records_buffer_rows)


def families_of(rows: int, state: RecorderState | None, limit_rows: int) -> list[GaugeMetricFamily]:
    """The buffer's rows and bound; the recorder's view, once it has published one."""
    families = [
        GaugeMetricFamily(
            "realty_records_buffered_rows",
            "Estimates waiting in Redis to be written to PostgreSQL.",
            value=rows,
        ),
        GaugeMetricFamily(
            "realty_records_buffer_limit_rows",
            "records_buffer_rows: past it, new estimates are dropped, not recorded.",
            value=limit_rows,
        ),
    ]
    if state is not None:
        families += [
            GaugeMetricFamily(
                "realty_records_backlog_age_seconds",
                "Age of the oldest estimate waiting, as the recorder last saw it.",
                value=state.backlog_age_s,
            ),
            GaugeMetricFamily(
                "realty_recorder_failing",
                "1 when the recorder's last attempt to write to PostgreSQL failed.",
                value=1 if state.error is not None else 0,
            ),
        ]
    return families
