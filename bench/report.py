"""Pure functions from measured figures to the numbers and text of docs/performance.md.

Everything here takes the plain dict that bench.run collects (also saved as results.json), so
the report can be re-rendered from a saved run and the arithmetic is unit-tested.
"""

from typing import Any

# Each ratio's target and the issue that set it, as (comparison, bound, issue); None: reported
# without a target. Issue 15 raised issue 5's: C/B at 64 clients >= 8 (5 is the floor every
# change must keep), p99 <= 150 ms, the 1-client ratio <= 1.3, D/A >= 0.8.
TARGETS: dict[str, tuple[str, float, int] | None] = {
    "C/B p50 latency at 1 client": ("<=", 1.3, 15),
    "C/B throughput at 16 clients": (">=", 1.0, 5),
    "C/B throughput at 64 clients": (">=", 8.0, 15),
    "C p99 at 64 clients (ms)": ("<=", 150.0, 15),
    "D/A rows/s (batch job vs in-process 10k rows)": (">=", 0.8, 15),
    "C/E throughput at 64 clients (share of the ceiling)": None,
}


def summarise_wrk(raw: dict[str, Any]) -> dict[str, Any]:
    """wrk's raw counters (microseconds) to report units: req/s, ms, error counts."""
    duration_s = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    socket_errors = sum(errors[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "requests": int(raw["requests"]),
        "duration_s": duration_s,
        "rps": raw["requests"] / duration_s if duration_s else 0.0,
        "ok_rps": (raw["requests"] - raw["non2xx"]) / duration_s if duration_s else 0.0,
        "p50_ms": lat["p50"] / 1000,
        "p95_ms": lat["p95"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "non2xx": int(raw["non2xx"]),
        "socket_errors": int(socket_errors),
        "timeouts": int(errors["timeout"]),
        # Mean `batch_size` of the answers (0 for case B, whose answers carry none).
        "mean_batch_size": float(raw.get("mean_batch_size", 0)),
    }


def by_concurrency(cases: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(c["concurrency"]): c for c in cases}


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def compute_ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """C/B at 1, 16 and 64 clients, C's p99 at 64, D/A and C/E, each with its target."""
    b = by_concurrency(results.get("B", []))
    c = by_concurrency(results.get("C", []))
    e = by_concurrency(results.get("E", []))
    a_rate = results.get("A", {}).get("estimate_10k_rows", {}).get("rows_per_s")
    d_rate = results.get("D", {}).get("rows_per_s")

    def get(cases: dict[int, dict[str, Any]], n: int, key: str) -> float | None:
        return cases[n][key] if n in cases else None

    values = {
        "C/B p50 latency at 1 client": _ratio(get(c, 1, "p50_ms"), get(b, 1, "p50_ms")),
        "C/B throughput at 16 clients": _ratio(get(c, 16, "ok_rps"), get(b, 16, "ok_rps")),
        "C/B throughput at 64 clients": _ratio(get(c, 64, "ok_rps"), get(b, 64, "ok_rps")),
        "C p99 at 64 clients (ms)": get(c, 64, "p99_ms"),
        "D/A rows/s (batch job vs in-process 10k rows)": _ratio(d_rate, a_rate),
        "C/E throughput at 64 clients (share of the ceiling)": _ratio(
            get(c, 64, "ok_rps"), get(e, 64, "ok_rps")
        ),
    }
    out = []
    for name, value in values.items():
        target = TARGETS[name]
        if target is None:
            out.append({"name": name, "value": value, "target": "—", "issue": "—", "met": None})
            continue
        op, bound, issue = target
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        text = f"{op} {bound:g}"
        out.append({"name": name, "value": value, "target": text, "issue": issue, "met": met})
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    """Thousands separators, fixed decimals; an em dash for a missing figure."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _cpu_cell(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in cpu.items()) or "—"


def load_table(results: dict[str, Any]) -> list[str]:
    names = {
        "B": "B direct in-process FastAPI",
        "C": "C service /v1/predict",
        "E": "E ceiling: parse the JSON, answer a constant",
    }
    rows = []
    for case in ("B", "C", "E"):
        for r in sorted(results.get(case, []), key=lambda r: r["concurrency"]):
            rows.append(
                [
                    names[case],
                    str(r["concurrency"]),
                    fmt(r["ok_rps"]),
                    fmt(r["p50_ms"], 2),
                    fmt(r["p95_ms"], 2),
                    fmt(r["p99_ms"], 2),
                    fmt(r["max_ms"], 1),
                    f"{r['requests']:,}",
                    str(r["non2xx"]),
                    str(r["socket_errors"]),
                    fmt(r.get("mean_batch_size") or None, 1),
                    _cpu_cell(r.get("cpu_cores", {})),
                ]
            )
    header = ["case", "clients", "2xx req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    header += ["requests", "non-2xx", "socket errors", "mean micro-batch"]
    header += ["CPU cores used, by process"]
    return _table(header, rows)


def other_load(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """How much CPU processes outside the benchmark took: how noisy the figures are."""
    others = [
        r["cpu_cores"]["anything else"]
        for case in ("B", "C", "E")
        for r in results.get(case, [])
        if "anything else" in r.get("cpu_cores", {})
    ]
    if not others:
        return "not measured"
    mean = sum(others) / len(others)
    return (
        f"{mean:.2f} of {meta['cores']} cores on average, {max(others):.2f} at most "
        "(machine busy time from /proc/stat minus the benchmark's processes)"
    )


def cpu_per_request_table(results: dict[str, Any]) -> list[str]:
    """Where each answered request's CPU goes, per process: the cost a faster design cuts."""
    rows = []
    for case in ("B", "C", "E"):
        for r in sorted(results.get(case, []), key=lambda r: r["concurrency"]):
            per = {
                name: 1000 * cores / r["ok_rps"] if r["ok_rps"] else None
                for name, cores in r.get("cpu_cores", {}).items()
                if name not in ("wrk", "anything else")
            }
            cells = ", ".join(f"{name} {fmt(ms, 2)}" for name, ms in per.items())
            total = sum(ms for ms in per.values() if ms is not None)
            rows.append([case, str(r["concurrency"]), cells or "—", fmt(total, 2)])
    return _table(["case", "clients", "ms per request, by process", "total ms"], rows)


def _timed_row(label: str, timing: dict[str, float]) -> list[str]:
    """A row of case A's table for repeated calls: rows/s, p50 and p99 per call."""
    return [
        label,
        fmt(timing["rows_per_s"]),
        fmt(timing["p50_ms"], 2),
        fmt(timing["p99_ms"], 2),
    ]


def _whole_call_row(label: str, timing: dict[str, float]) -> list[str]:
    """A row of case A's table for one big call: rows/s and the call's median time."""
    return [
        label,
        fmt(timing["rows_per_s"]),
        fmt(1000 * timing["median_s"], 0) + " (whole call)",
        "—",
    ]


# Each section of the report is a list of markdown lines ending with a blank one; a case the
# run did not measure has no section.
def _the_run(results: dict[str, Any]) -> list[str]:
    """What was measured, where and how loaded the machine was: the context every figure
    needs, since runs on a shared machine differ."""
    meta = results["meta"]
    return [
        "# Performance",
        "",
        "Written by `make bench` (`bench/run.py`); every figure below comes from the run described",
        "here. Do not edit by hand: rerun the command, which rewrites this file.",
        "",
        "## The run",
        "",
        f"- command: `{meta['command']}`",
        f"- date (UTC): {meta['date']}; total run time {fmt(meta.get('runtime_s'), 0)} s",
        f"- machine: {meta['cores']} cores (`os.cpu_count()`), {meta['platform']}",
        f"- load average (1/5/15 min) before: {meta['load_before']}; after: "
        f"{meta.get('load_after', '—')}",
        f"- other work on this machine during the load cases: {other_load(results, meta)}",
        f"- model: {meta['version']} (kind `{meta['kind']}`), the same bundle in every case",
        f"- code measured: {meta.get('code', '—')}",
        f"- rows: the {meta['rows']} rows of `{meta['rows_file']}`, cycled",
        f"- load generator: {meta['wrk_version']}, `{meta['wrk_example']}`",
        f"- per load case: {meta['warmup_s']:g} s warm-up (not counted), then "
        f"{meta['duration_s']:g} s measured",
        f"- service settings changed from the defaults: {meta.get('settings') or 'none'}",
        f"- processes: {meta.get('processes', '—')}",
        "",
    ]


def _ratios(results: dict[str, Any]) -> list[str]:
    rows = []
    for r in compute_ratios(results):
        met = {None: "—", True: "yes", False: "no"}[r["met"]]
        rows.append([r["name"], fmt(r["value"], 2), r["target"], str(r["issue"]), met])
    header = ["ratio", "measured", "target", "issue", "met"]
    return ["## Ratios", "", *_table(header, rows), ""]


def _single_predictions(results: dict[str, Any]) -> list[str]:
    """Cases B, C and E: the load table, how to read it, and the CPU cost per request."""
    timeout_s = results["meta"]["timeout_s"]
    return [
        "## B, C and E: single predictions over HTTP, side by side",
        "",
        *load_table(results),
        "",
        "Latency is wrk's, per request, from sending to the last byte of the answer. Throughput",
        "counts 2xx answers only. Socket errors are wrk's connect, read, write and timeout errors",
        f"(timeout {timeout_s:g} s). CPU cores used is CPU time of each process tree",
        "during the measured seconds divided by the seconds; `wrk` is the load generator,",
        "`anything else` is the rest of the machine's busy time (/proc/stat): other work that",
        "shared these cores during the run.",
        "",
        "CPU time per answered request, in ms (CPU cores used / 2xx req/s):",
        "",
        *cpu_per_request_table(results),
        "",
    ]


def _case_a_rows(a: dict[str, Any]) -> list[list[str]]:
    big = a["estimate_10k_rows"]
    rows = [
        _timed_row(
            "`Predictor.estimate(explain=False)`, 1 row: one `/v1/predict` request",
            a["estimate_1_row"],
        ),
        _timed_row(
            "`Predictor.estimate(explain=True)`, 1 row: with `?explain=true`",
            a["estimate_explain_1_row"],
        ),
        _timed_row(
            "`Predictor.estimate(explain=False)`, 64-row DataFrame: a full micro-batch "
            "(rows/s; ms per call)",
            a["estimate_64_rows"],
        ),
        _timed_row("`Predictor.predict`, 1 row", a["predict_1_row"]),
        _whole_call_row(
            f"`Predictor.estimate(explain=False)`, {big['rows']:,}-row DataFrame: what batch "
            f"chunks compute, a few thousand rows a call (median of {big['repeats']})",
            big,
        ),
    ]
    if lightgbm := a.get("estimate_10k_rows_lightgbm"):
        rows.append(
            _whole_call_row(
                "the same 10,000 rows with LightGBM instead of the bundle's compiled trees "
                "(`REALTY_COMPILED_TREES=false`)",
                lightgbm,
            )
        )
    return rows


def _case_a(a: dict[str, Any]) -> list[str]:
    if not a:
        return []
    return [
        "## A: in-process, no HTTP, one process, one thread",
        "",
        *_table(["call", "rows/s", "p50 ms", "p99 ms"], _case_a_rows(a)),
        "",
        f"Resident memory of that process with the model loaded: "
        f"{fmt(a['rss_kib'] / 1024, 0)} MiB.",
        "",
    ]


def _case_d(d: dict[str, Any]) -> list[str]:
    if not d:
        return []
    row = [
        f"{d['rows']:,}",
        fmt(d["body_mib"], 1),
        fmt(d["submit_s"], 2),
        fmt(d["processing_s"], 2),
        fmt(d["results_s"], 2),
        fmt(d["total_s"], 2),
        fmt(d["rows_per_s"], 0),
        str(d["errors"]),
    ]
    header = ["rows", "CSV body MiB", "submit s (upload, validate, enqueue)"]
    header += ["processing s (until succeeded)", "results s (last poll, JSON)", "total s"]
    header += ["rows/s", "errors"]
    return [
        "## D: one batch job end to end through the service",
        "",
        *_table(header, [row]),
        "",
        f"Submitted as `text/csv` to `POST /v1/batch`, polled every {d['poll_s']:g} s, the",
        "results read from the final poll; total is from the first byte sent to the last",
        "result received. `errors` counts rows without a prediction plus job errors.",
        f"CPU cores used over the whole job: {_cpu_cell(d.get('cpu_cores', {}))}.",
        "",
    ]


def _recorded(recorded: dict[str, int] | None) -> list[str]:
    """That C and D ran with recording on: what reached PostgreSQL."""
    if not recorded:
        return []
    return [
        "## The record during the run",
        "",
        f"Estimates on record in PostgreSQL once the buffer was written: "
        f"{recorded['on_record']:,} of {recorded['sent']:,} requests and rows sent in C "
        f"(warm-ups included) and D; {recorded['dropped']:,} refused by a full buffer.",
        "",
    ]


def _memory(memory: list[dict[str, Any]] | None) -> list[str]:
    if not memory:
        return []
    rows = [
        [
            m["case"],
            m["role"],
            str(m["pid"]),
            fmt(m["rss_kib"] / 1024, 0),
            fmt(m["pss_kib"] / 1024, 0) if m.get("pss_kib") is not None else "—",
        ]
        for m in memory
    ]
    return [
        "## Memory: resident size with the model loaded",
        "",
        *_table(["case", "process", "pid", "RSS MiB", "PSS MiB"], rows),
        "",
        "RSS from `/proc/<pid>/status` (VmRSS); PSS from `/proc/<pid>/smaps_rollup` shares",
        "pages that forked processes have in common among them, so PSS adds up, RSS does not.",
        "",
    ]


def _redis_commands(per_request: dict[str, dict[str, float]] | None) -> list[str]:
    if not per_request:
        return []
    rows = [
        [name, fmt(v["per_request"], 2), fmt(v["usec_per_call"], 1)]
        for name, v in per_request.items()
    ]
    return [
        "## Redis commands per single prediction (C, all concurrencies)",
        "",
        "From `INFO commandstats` around each C case, divided by the requests sent",
        "(warm-ups included); commands fewer than 0.05 per request are left out.",
        "",
        *_table(["command", "per request", "µs per call (Redis CPU)"], rows),
        "",
    ]


def _flames(flames: list[dict[str, Any]] | None) -> list[str]:
    """Where a single prediction's CPU goes: the flame graphs `python -m bench.flame` left in
    docs/img (one JSON of figures beside each pair of SVGs), each its own run."""
    if not flames:
        return []
    rows = [
        [
            f"`{f['tag']}`",
            f["commit"],
            f["settings"] or "defaults",
            fmt(f["rps"], 0),
            fmt(f["p99_ms"], 1),
            f"{f['samples']['api'] / f['requests']:.3f}",
            f"{f['samples']['worker'] / f['requests']:.3f}",
            f"[API](img/flame-api-{f['tag']}.svg), [worker](img/flame-worker-{f['tag']}.svg)",
        ]
        for f in flames
    ]
    header = ["run", "commit", "settings", "req/s", "p99 ms", "API samples/request"]
    header += ["worker samples/request", "flame graphs"]
    return [
        "## Where a request's CPU goes (flame graphs)",
        "",
        "Written from the runs of `python -m bench.flame --tag <run>` (case C's service at 64",
        "clients for 10 s under wrk while py-spy samples every API and worker process at 200 Hz;",
        "idle waits left out), not from the run above: each row is its own run, on the commit",
        "and settings it names. Samples per answered request compare CPU between rows (py-spy",
        "slows what it samples, so its req/s are below the run above). Open the SVGs in a",
        "browser: a bar's width is its share of the samples.",
        "",
        *_table(header, rows),
        "",
    ]


HOW_IT_IS_MEASURED = [
    "## How it is measured",
    "",
    "- Everything runs on 127.0.0.1, started and stopped by the benchmark (each process by",
    "  its own process group, also on failure or Ctrl-C); a hard time limit ends a stuck run.",
    "- A runs in a process of its own before any server starts.",
    "- B, C and E run side by side and take turns: B, C, E at 1 client, then at 16, then 64,",
    "  so that other load on the machine affects them alike; D runs after B and E stopped.",
    "- B is `bench/direct_app.py` under `uvicorn --workers <cores>`: each process loads the",
    "  bundle and answers in the request (same validation, same `Predictor.estimate` call,",
    "  explanations off as in `/v1/predict`'s default), in FastAPI's thread pool.",
    "- A, B, C and D load the bundle the same way, so a gbm bundle predicts with its",
    "  compiled trees in every case (A also times LightGBM itself for comparison).",
    "- E is the ceiling: `bench/ceiling_app.py`, a bare ASGI app under the API's own server",
    "  (`python -m api`, the same process count) that parses the same JSON body and answers",
    "  a constant estimate: no framework, no validation, no queue, no model. C/E is the share",
    "  of the speed reachable on this machine that the service delivers.",
    "- C is the real stack as `make run` starts it: redis-server (AOF on, no RDB snapshots),",
    "  PostgreSQL (scripts/postgres_server.py, migrated), `python -m worker.pool",
    "  --concurrency <cores>` (a Celery worker of the active version, and the recorder that",
    "  writes every estimate to PostgreSQL), Flower (taking every task event), the API under",
    "  uvicorn with `--api-workers` processes (see processes above), `realty:active_version`",
    "  set to the measured version.",
    "- wrk runs `bench/post.lua`, which cycles over the rows (zipcode as a JSON string),",
    "  counts non-2xx answers and prints the latency percentiles from its `done()` hook.",
    "- The machine is shared with other work; compare the ratios of one run rather than",
    "  absolute figures across runs.",
    "- D's rows are the same rows repeated; A's 10k-row rate is one process on one core,",
    "  D uses the service's worker processes (one per core).",
    "- To rerun: `make bench`, or `VERSION=vN make bench` for another bundle. Raw figures of",
    "  the last run: `.run/bench/results.json`; its process logs: `.run/bench/logs/`.",
    "",
]


def render(results: dict[str, Any]) -> str:
    """The whole docs/performance.md."""
    return "\n".join(
        [
            *_the_run(results),
            *_ratios(results),
            *_single_predictions(results),
            *_case_a(results.get("A", {})),
            *_case_d(results.get("D", {})),
            *_recorded(results.get("recorded")),
            *_memory(results.get("memory")),
            *_redis_commands(results.get("redis_per_request")),
            *_flames(results.get("flames")),
            *HOW_IT_IS_MEASURED,
        ]
    )
