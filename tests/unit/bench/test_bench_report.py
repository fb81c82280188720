"""The benchmark's pure helpers: wrk's output to figures, figures to ratios and the report."""

import pytest

# bench/ is not an installed package (it never ships): pytest's `pythonpath` puts the checkout
# on the path.
from bench import report, wrk
from bench.run import per_request_commands

RAW = {
    "requests": 2000,
    "duration_us": 10_000_000,
    "bytes": 1,
    "non2xx": 20,
    "errors": {"connect": 1, "read": 2, "write": 0, "status": 20, "timeout": 3},
    "latency_us": {
        "min": 1000,
        "mean": 5000.0,
        "max": 90000,
        "stdev": 10.0,
        "p50": 4000,
        "p90": 8000,
        "p95": 9000,
        "p99": 20000,
        "p999": 80000,
    },
}


def case(concurrency: int, ok_rps: float, p50: float, p99: float = 1.0) -> dict:
    return {"concurrency": concurrency, "ok_rps": ok_rps, "p50_ms": p50, "p99_ms": p99}


def test_parse_output_finds_the_json_line_among_wrk_text() -> None:
    text = 'Running 10s test @ http://127.0.0.1\n  2 threads\nBENCH_JSON {"requests": 5}\n'
    assert wrk.parse_output(text) == {"requests": 5}
    with pytest.raises(ValueError, match="BENCH_JSON"):
        wrk.parse_output("Running 10s test\n")


def test_wrk_argv_caps_threads_at_the_clients() -> None:
    argv = wrk.wrk_argv(
        "wrk", "http://127.0.0.1:1/x", wrk.LUA_SCRIPT, concurrency=1, threads=2,
        duration_s=10, timeout_s=15,
    )  # fmt: skip
    assert argv[argv.index("-t") + 1] == "1"
    assert argv[argv.index("-c") + 1] == "1"
    assert argv[argv.index("-d") + 1] == "10s"
    assert argv[-2:] == ["--", str(wrk.LUA_SCRIPT)]


def test_summarise_wrk_units_and_error_counts() -> None:
    s = report.summarise_wrk(RAW)
    assert s["rps"] == pytest.approx(200.0)
    assert s["ok_rps"] == pytest.approx(198.0)  # non-2xx are not throughput
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"]) == (4.0, 9.0, 20.0)
    assert s["socket_errors"] == 6  # connect + read + write + timeout, not status
    assert s["non2xx"] == 20


def test_ratios_and_targets() -> None:
    results = {
        "A": {"estimate_10k_rows": {"rows_per_s": 10_000.0}},
        "B": [case(1, 200, 4.0), case(16, 100, 80), case(64, 100, 500)],
        "C": [case(1, 150, 8.0), case(16, 300, 40), case(64, 600, 100, p99=300)],
        "D": {"rows_per_s": 6_000.0},
        "E": [case(64, 1_200, 20)],
    }
    got = {r["name"]: r for r in report.compute_ratios(results)}
    assert got["C/B p50 latency at 1 client"]["value"] == pytest.approx(2.0)
    assert got["C/B p50 latency at 1 client"]["met"] is False
    assert got["C/B throughput at 16 clients"]["value"] == pytest.approx(3.0)
    assert got["C/B throughput at 16 clients"]["met"] is True
    assert got["C/B throughput at 64 clients"]["value"] == pytest.approx(6.0)
    assert got["C/B throughput at 64 clients"]["met"] is False  # issue 15 wants 8
    assert got["C/B throughput at 64 clients"]["issue"] == 15
    assert got["C p99 at 64 clients (ms)"]["met"] is False
    assert got["D/A rows/s (batch job vs in-process 10k rows)"]["value"] == pytest.approx(0.6)
    ceiling = got["C/E throughput at 64 clients (share of the ceiling)"]
    assert ceiling["value"] == pytest.approx(0.5) and ceiling["met"] is None


def test_missing_cases_give_no_ratio_rather_than_an_error() -> None:
    ratios = report.compute_ratios({"B": [case(1, 200, 4.0)]})
    assert all(r["value"] is None and r["met"] is None for r in ratios)
    assert report.fmt(None) == "—"
    assert report.fmt(12345.678, 1) == "12,345.7"


def test_per_request_commands_uses_the_difference_and_drops_rare_ones() -> None:
    before = {"cmdstat_get": {"calls": 10, "usec": 100}}
    after = {
        "cmdstat_get": {"calls": 210, "usec": 500},
        "cmdstat_info": {"calls": 2, "usec": 50},
    }
    got = per_request_commands(before, after, 100)
    assert got == {"get": {"per_request": 2.0, "usec_per_call": 2.0}}


META = {
    "command": "make bench", "date": "2026-01-01 00:00:00", "runtime_s": 100.0,
    "cores": 2, "platform": "Linux", "load_before": "1 1 1", "load_after": "2 2 2",
    "version": "v2", "kind": "gbm", "rows": 100, "rows_file": "data/x.csv",
    "wrk_version": "wrk 4", "wrk_example": "wrk ...", "warmup_s": 2, "duration_s": 10,
    "timeout_s": 15, "settings": "",
}  # fmt: skip


def test_render_writes_every_section_from_the_figures() -> None:
    loaded = report.summarise_wrk(RAW)
    results = {
        "meta": META,
        "B": [loaded | {"concurrency": 1, "cpu_cores": {"uvicorn": 0.5}}],
        "C": [loaded | {"concurrency": 1, "cpu_cores": {"api": 0.2}}],
    }  # fmt: skip
    text = report.render(results)
    assert "| B direct in-process FastAPI | 1 | 198.0 | 4.00 |" in text
    assert "uvicorn 0.50" in text
    assert "| C/B p50 latency at 1 client | 1.00 | <= 1.3 | 15 | yes |" in text
    assert "v2 (kind `gbm`)" in text


def test_other_load_summarises_the_cpu_taken_by_other_work() -> None:
    results = {
        "B": [{"cpu_cores": {"uvicorn": 1.0, "anything else": 0.5}}],
        "C": [{"cpu_cores": {"api": 0.3, "anything else": 1.5}}],
    }
    assert report.other_load(results, {"cores": 2}).startswith("1.00 of 2 cores on average, 1.50")
    assert report.other_load({}, {"cores": 2}) == "not measured"


def test_flame_runs_are_shown_with_their_cpu_per_request_and_graphs() -> None:
    flames = [
        {
            "tag": "fastpath-off",
            "date": "2026-11-29T13:30:00+00:00",
            "commit": "abc1234",
            "settings": "REALTY_API_FAST_PATH=false",
            "clients": 64,
            "requests": 10_000,
            "rps": 1_000.0,
            "p99_ms": 160.0,
            "samples": {"api": 2_500, "worker": 1_200},
        }
    ]
    text = report.render({"meta": META, "flames": flames})
    assert "## Where a request's CPU goes (flame graphs)" in text
    row = next(line for line in text.splitlines() if "`fastpath-off`" in line)
    assert "| 0.250 | 0.120 |" in row and "REALTY_API_FAST_PATH=false" in row
    assert "(img/flame-api-fastpath-off.svg)" in row
    assert "flame graphs" not in report.render({"meta": META})
