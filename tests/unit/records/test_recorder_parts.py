"""What the recorder takes from the buffer's head in one write: whole items, at most
`records_write_rows` rows but always one item, malformed items taken (to be removed) with the
rows their producer counted, and when the oldest waiting estimate was made. An item is only
checked to be a JSON array of objects: its text goes to PostgreSQL as it is, and is validated
only when PostgreSQL refuses it."""

import json

from shared.records.recorder import (
    READ_PAGE,
    Taken,
    joined,
    next_page,
    oldest_at_ms,
    parse_item,
    rows_of,
    take,
)
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


def test_an_item_is_only_checked_to_be_an_array_of_objects_which_counts_its_rows():
    """Its fields are PostgreSQL's to read; validation comes only if PostgreSQL refuses them."""
    assert rows_of(item(0, 3)) == 3
    assert rows_of(json.dumps([{"request_id": "x"}, {"nope": 1}])) == 2
    assert rows_of("not json") is None
    assert rows_of('{"an": "object"}') is None
    assert rows_of("[1, 2]") is None


def test_taken_items_go_to_postgresql_as_one_array_of_their_text_untouched():
    text = joined([item(0, 2), " [ ] ", item(2, 1)])
    assert text == RECORD_BATCH.dump_json([record(n) for n in range(3)]).decode()
    assert joined([]) == "[]"


def test_an_item_that_fails_validation_is_left_out_of_the_records_written_instead():
    taken = Taken()
    take([item(0, 2), json.dumps([{"request_id": "x"}]), item(2, 1)], taken, max_rows=100)
    assert (taken.items, taken.rows, len(taken.raw)) == (3, 4, 3)
    assert [r.request_id for r in taken.records] == ["r0", "r1", "r2"]


def test_pages_are_read_by_the_rows_still_wanted_at_the_rows_per_item_so_far():
    assert next_page(Taken(items=1, rows=1000), max_rows=5000) == 4  # batch chunks
    assert next_page(Taken(items=1, rows=64), max_rows=100) == 1
    assert next_page(Taken(items=16, rows=40), max_rows=5000) == READ_PAGE  # single estimates
    assert next_page(Taken(items=2, rows=0), max_rows=5000) == READ_PAGE  # malformed: 0 rows


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
