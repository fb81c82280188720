"""Reading a batch body as it arrives (api/batch_body.py): rows come one at a time whatever the
chunking, the caps refuse before the rest is pulled, nesting beyond the schema is a 422, and at
most `slots` bodies are read at once."""

import asyncio
import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from fake_manifest import manifest

from api import batch_body
from api.batch_body import (
    BatchLimits,
    ParseGate,
    body_pieces,
    body_text,
    collect_rows,
    csv_rows,
    json_rows,
    parse_body,
)
from api.errors import InvalidInputError, PayloadTooLargeError, ServiceUnavailableError

MIB = 2**20
LIMITS = BatchLimits(max_bytes=10_000_000, max_rows=5_000, chunk_rows=30)
DEEP = 1_000_000  # brackets: a C-stack overflow for a recursive parser that does not count


class Body:
    """A body delivered in chunks of `size` bytes, remembering how much of it was pulled."""

    def __init__(self, data: bytes | str, size: int = 65_536) -> None:
        data = data.encode() if isinstance(data, str) else data
        self.chunks = [data[i : i + size] for i in range(0, len(data), size)]
        self.total = len(data)
        self.pulled = 0

    def pull(self) -> bytes:
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        self.pulled += len(chunk)
        return chunk


def as_json(rows: list[Any], indent: int | None = None) -> str:
    return json.dumps({"rows": rows}, indent=indent)


def as_csv(rows: list[dict[str, Any]], line_end: str = "\n") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator=line_end)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_json(text: str, size: int = 65_536) -> list[Any]:
    return list(json_rows(body_pieces(Body(text, size).pull, LIMITS)))


def read_csv(text: str, size: int = 65_536) -> list[dict[str, Any]]:
    return list(csv_rows(body_text(Body(text, size).pull, LIMITS)))


def problem(exc: pytest.ExceptionInfo[InvalidInputError]) -> dict[str, Any]:
    (error,) = exc.value.detail
    return error


# --- JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 4096, 1_000_000])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_rows_are_the_rows_whatever_the_chunks(future_rows, size, indent):
    text = as_json(future_rows[:40], indent)
    assert read_json(text, size) == json.loads(text)["rows"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_a_value_cut_by_a_chunk_is_read_whole(future_rows, size):
    """Numbers, strings and literals cut anywhere by a chunk's end wait for the rest."""
    rows = [*future_rows[:5], 12345678, "text", None, True, 1.5e10, -0.5e-7, 1e5, 0]
    text = as_json(rows, indent=1).replace("-5e-08", "-0.5E-7").replace("100000.0", "1e+5")
    assert read_json(text, size) == rows
    assert read_json(text.replace("\n", "").replace(" ", ""), size) == rows


def test_a_row_arriving_a_byte_at_a_time_is_not_decoded_once_per_byte(monkeypatch):
    attempts = []

    def counted(text: str, pos: int) -> tuple[Any, int]:
        attempts.append(pos)
        return json.JSONDecoder().raw_decode(text, pos)

    monkeypatch.setattr(batch_body, "_DECODE", counted)
    row = {"bedrooms": 3, "note": "x" * 50_000}
    assert read_json(as_json([row]), size=1) == [row]
    assert len(attempts) < 40  # the window doubles between attempts: log2(50,000) is 16


def test_json_rows_are_yielded_before_the_body_has_arrived(future_rows):
    body = Body(as_json(future_rows * 30), size=1024)  # 3,000 rows, about 1 MB
    first = next(json_rows(body_pieces(body.pull, LIMITS)))
    assert first == future_rows[0]
    assert body.pulled == 1024


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('["a"]', '{"rows"'),
        ("{}", '{"rows"'),
        ('{"rows": 5}', '{"rows"'),
        ("", '{"rows"'),
        ('{"houses": []}', "unknown top-level field(s) ['houses']"),
        ('{"rows": [], "model": "v2"}', "unknown top-level field(s) ['model']"),
        ('{"rows": [], "rows": []}', "twice"),
        ('{"rows": []} {}', "extra data at character 13"),
        ('{"rows": [{"bedrooms": 3}', "expected ',' or ']' at character 25"),
        ('{"rows": [{"bedrooms": }]}', "Expecting value at character 23"),
        ("{rows: []}", "a field name in double quotes"),
        ('{"rows": [1' + "0" * 5000 + "]}", "could not be read as JSON"),
    ],
)
def test_a_body_that_is_not_the_rows_object_is_named(text, words):
    with pytest.raises(InvalidInputError) as exc:
        read_json(text)
    assert words in problem(exc)["msg"]


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ('{"rows": ' + "[" * DEEP, ["body", "rows", 0]),
        ('{"rows": [{}, ' + "[" * DEEP, ["body", "rows", 1]),
        ('{"rows": [{"zipcode": "98118", "view": [' + "[" * DEEP, ["body", "rows", 0]),
        ('{"rows": [[1, 2]]}', ["body", "rows", 0]),
        ('{"rows": [{"bedrooms": {"n": 3}}]}', ["body", "rows", 0, "bedrooms"]),
    ],
)
def test_nesting_beyond_the_schema_is_a_422_at_once(text, loc):
    body = Body(text + "]" * DEEP + "}")
    with pytest.raises(InvalidInputError) as exc:
        list(json_rows(body_pieces(body.pull, LIMITS)))
    error = problem(exc)
    assert error["type"] == "json_too_deep" and list(error["loc"]) == loc
    assert "nested beyond the schema" in error["msg"]
    assert body.pulled <= 64 * 1024  # of 2 MB when deep: refused at the first chunk


def test_a_row_larger_than_a_whole_house_body_is_a_413():
    row = {"bedrooms": 3, "note": "x" * batch_body.MAX_ROW_CHARS}
    with pytest.raises(PayloadTooLargeError, match="a row of over 65,536 characters"):
        read_json(as_json([row, row]))


def test_a_body_over_the_byte_cap_is_refused_as_it_arrives(future_rows):
    limits = BatchLimits(max_bytes=100_000, max_rows=5_000, chunk_rows=30)
    # Few rows and much whitespace: only the byte cap can refuse it.
    body = Body('{"rows": [' + json.dumps(future_rows[0]) + " " * 1_000_000 + "]}", 10_000)
    with pytest.raises(PayloadTooLargeError, match="100,000-byte limit"):
        list(json_rows(body_pieces(body.pull, limits)))
    assert body.pulled == 110_000


# --- CSV -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 5, 4096])
@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_csv_rows_are_the_rows_whatever_the_chunks_and_line_ends(future_rows, size, line_end):
    rows = future_rows[:20]
    assert read_csv(as_csv(rows, line_end), size) == rows


def test_csv_cells_become_what_a_json_client_sends(house):
    row = house | {"zipcode": "01234", "bathrooms": "2", "date": "20141013T000000", "id": ""}
    (read,) = read_csv("\ufeff" + as_csv([row]), size=3)  # a BOM, cut by the chunks
    assert read["zipcode"] == "01234" and read["bathrooms"] == 2.0
    assert read["bedrooms"] == house["bedrooms"] and isinstance(read["bedrooms"], int)
    assert read["date"] == "20141013T000000" and read["id"] is None


def test_a_quoted_cell_may_span_lines_and_chunks(house):
    rows = [house | {"date": "plain"}, house | {"date": 'a,\nb "quoted"'}]
    assert read_csv(as_csv(rows), size=2) == rows


def test_blank_lines_are_skipped_and_a_short_line_is_named(house):
    text = as_csv([house]) + "\n\n" + as_csv([house]).split("\n", 1)[1]
    assert len(read_csv(text)) == 2
    with pytest.raises(InvalidInputError) as exc:
        read_csv(as_csv([house]) + "1,2\n")
    assert "CSV line 3 has 2 cells" in problem(exc)["msg"]


def test_an_endless_csv_line_is_a_413_once_a_house_body_of_it_arrived():
    body = Body("bedrooms," * 1_000_000, size=4096)
    with pytest.raises(PayloadTooLargeError, match="a CSV line of over 65,536 characters"):
        list(csv_rows(body_text(body.pull, LIMITS)))
    assert body.pulled < 200_000


@pytest.mark.parametrize(
    ("media", "words"),
    [("text/csv", "the CSV body could not be read"), ("application/json", "not UTF-8 text")],
)
def test_a_body_that_is_not_utf8_is_a_422(house, media, words):
    body = Body(as_csv([house]).encode("utf-16"))
    with pytest.raises(InvalidInputError) as exc:
        parse_body(body.pull, media, LIMITS, manifest(zipcodes=[]))
    assert words in problem(exc)["msg"]


# --- counting and validating ------------------------------------------------------------------


def counted(rows: list[Any], seen: list[int]) -> Iterator[Any]:
    for row in rows:
        seen[0] += 1
        yield row


def test_rows_past_the_cap_are_refused_at_the_first_one_over(house):
    seen = [0]
    limits = BatchLimits(max_bytes=10**9, max_rows=100, chunk_rows=30)
    with pytest.raises(PayloadTooLargeError, match="more than 100 rows"):
        collect_rows(counted([house] * 10_000, seen), limits, manifest(zipcodes=[house["zipcode"]]))
    assert seen[0] == 101


def test_a_csv_over_the_row_cap_is_refused_before_the_rest_is_pulled(house):
    limits = BatchLimits(max_bytes=10**9, max_rows=1_000, chunk_rows=30)
    body = Body(as_csv([house] * 20_000), size=16_384)
    with pytest.raises(PayloadTooLargeError, match="more than 1,000 rows"):
        parse_body(body.pull, "text/csv", limits, manifest(zipcodes=[house["zipcode"]]))
    assert body.pulled < body.total / 4


def test_valid_rows_are_kept_validated_and_encoded_by_chunk(future_rows):
    served = manifest(zipcodes=sorted({r["zipcode"] for r in future_rows}))
    kept = collect_rows(future_rows, LIMITS, served)
    assert len(kept) == 100 and len(kept.payloads()) == 4  # chunks of 30
    assert list(kept)[42] == kept[42] and kept[42]["zipcode"] == future_rows[42]["zipcode"]


@pytest.mark.parametrize("media", ["application/json", "text/csv"])
def test_reading_holds_little_more_than_the_rows_encoded(future_rows, media):
    """Parsed whole, a body took many times its size; read row by row, the peak is the rows
    kept as chunk payloads, plus a chunk's rows waiting to be encoded (1,000 here, under 1 MiB
    as dicts), a block of raw rows and a chunk of text."""
    rows = [future_rows[i % 100] for i in range(20_000)]
    text = as_csv(rows) if media == "text/csv" else as_json(rows)
    body = Body(text)
    served = manifest(zipcodes=sorted({r["zipcode"] for r in future_rows}))
    limits = BatchLimits(max_bytes=10**9, max_rows=100_000, chunk_rows=1_000)
    tracemalloc.start()
    try:
        kept = parse_body(body.pull, media, limits, served)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    encoded = sum(map(len, kept.payloads()))
    print(
        f"{media}: {body.total / MIB:.1f} MiB body, {encoded / MIB:.2f} MiB rows encoded, "
        f"peak {peak / MIB:.2f} MiB"
    )
    assert len(kept) == 20_000
    assert peak < encoded + 2 * MIB


def test_bad_rows_are_located_across_blocks_and_capped_at_20(house):
    rows = [dict(house) for _ in range(2_500)]
    for i in range(1_490, 1_520):  # across a block boundary
        rows[i]["bedrooms"] = -1
    with pytest.raises(InvalidInputError) as exc:
        collect_rows(rows, LIMITS, manifest(zipcodes=[house["zipcode"]]))
    detail = exc.value.detail
    assert detail[0]["loc"] == ("body", "rows", 1_490, "bedrooms")
    assert len(detail) == 21 and "30 errors in 2500 rows" in detail[-1]["msg"]


def test_unserved_zipcodes_are_named_with_their_row_once_rows_are_valid(house):
    rows = [house, house | {"zipcode": "98039"}, house | {"zipcode": "98039"}]
    with pytest.raises(InvalidInputError) as exc:
        collect_rows(rows, LIMITS, manifest(zipcodes=[house["zipcode"]]))
    assert [e["loc"] for e in exc.value.detail] == [
        ("body", "rows", 1, "zipcode"),
        ("body", "rows", 2, "zipcode"),
    ]


def test_no_rows_is_a_422():
    with pytest.raises(InvalidInputError) as exc:
        collect_rows([], LIMITS, manifest(zipcodes=[]))
    assert problem(exc)["msg"] == "the batch has no rows"


# --- turns -------------------------------------------------------------------------------------


def test_a_body_past_the_slots_waits_for_a_turn_then_gets_a_503():
    async def scenario() -> list[str]:
        gate = ParseGate(slots=1, wait_s=0.2)
        events: list[str] = []

        async def upload(name: str, hold_s: float) -> None:
            try:
                async with gate.turn():
                    events.append(f"{name} in")
                    await asyncio.sleep(hold_s)
            except ServiceUnavailableError:
                events.append(f"{name} 503")

        first = asyncio.create_task(upload("a", 0.1))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(upload("b", 0.5))  # waits 0.09 s: admitted
        await asyncio.sleep(0.2)
        third = asyncio.create_task(upload("c", 0))  # b holds it for 0.5 s: refused
        await asyncio.gather(first, second, third)
        return events

    assert asyncio.run(scenario()) == ["a in", "b in", "c 503"]
