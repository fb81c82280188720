"""A job's validated rows kept as the chunk payloads its tasks read (api/batches.py)."""

import pytest

from api.batches import EncodedRows
from shared.wire.jobs import encode_rows


@pytest.fixture
def rows(future_rows):
    return [row | {"bedrooms": i} for i, row in enumerate(future_rows * 3)][:250]


def test_rows_are_encoded_as_each_chunk_fills(rows):
    kept = EncodedRows(chunk_rows=100)
    kept.extend(rows[:150])
    kept.extend(rows[150:])
    assert kept.payloads() == [encode_rows(rows[i : i + 100]) for i in (0, 100, 200)]


def test_they_read_back_as_the_rows_they_were(rows):
    kept = EncodedRows(chunk_rows=100)
    kept.extend(rows[:120])
    assert kept[110] == rows[110]  # not yet encoded
    kept.extend(rows[120:])
    kept.seal()
    assert len(kept) == 250 and list(kept) == rows
    assert kept[-1] == rows[-1] and kept[95:105] == rows[95:105]
    with pytest.raises(IndexError):
        kept[250]


def test_a_cleared_job_keeps_nothing(rows):
    kept = EncodedRows(chunk_rows=100)
    kept.extend(rows)
    kept.clear()
    assert len(kept) == 0 and kept.payloads() == []
