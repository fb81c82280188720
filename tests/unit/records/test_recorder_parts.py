"""What the recorder takes from the buffer's head in one write: whole items, at most
`records_write_rows` rows but always one item, malformed items taken (to be removed) with the
rows their producer counted, and when the oldest waiting estimate was made."""

import json

from shared.records.recorder import Taken, oldest_at_ms, parse_item, take
from shared.wire.messages import RECORD_BATCH, EstimateRecord


def record(n: int, at_ms: int = 1_700_000_000_000) -> EstimateRecord:
    return EstimateRecord(
        request_id=f"r{n}",
        key="anna",
        at_ms=at_ms + n,
        model_version="v2",
        model_kind="gbm",
        variant="full",
        house={"zipcode": "98118", "sqft_living": 1680},
        prediction=350_000.0 + n,
    )


def item(first: int, count: int) -> str:
    return RECORD_BATCH.dump_json([record(n) for n in range(first, first + count)]).decode()


def test_a_valid_item_gives_its_records_and_their_count():
    records, rows = parse_item(item(0, 3))
    assert [r.request_id for r in records] == ["r0", "r1", "r2"] and rows == 3


def test_a_malformed_item_gives_no_records_but_the_rows_it_was_counted_for():
    assert parse_item(json.dumps([{"request_id": "x"}, {"nope": 1}])) == (None, 2)
    assert parse_item("not json") == (None, 0)
    assert parse_item('{"an": "object"}') == (None, 0)


def test_items_are_taken_whole_up_to_the_row_limit():
    taken = Taken()
    take([item(0, 64), item(64, 64), item(128, 64)], taken, max_rows=150)
    assert (taken.items, taken.rows, len(taken.records), taken.full) == (2, 128, 128, True)


def test_the_first_item_is_taken_even_when_larger_than_the_limit():
    taken = Taken()
    take([item(0, 1000), item(1000, 1)], taken, max_rows=100)
    assert (taken.items, taken.rows, taken.full) == (1, 1000, True)


def test_a_short_buffer_is_taken_entirely_and_is_not_full():
    taken = Taken()
    take([item(0, 5), "garbage", item(5, 5)], taken, max_rows=100)
    assert (taken.items, taken.rows, len(taken.records), taken.full) == (3, 10, 10, False)


def test_the_oldest_waiting_estimate_is_read_from_the_head_item():
    assert oldest_at_ms(item(3, 2)) == 1_700_000_000_003
    assert oldest_at_ms(None) is None
    assert oldest_at_ms("garbage") is None
