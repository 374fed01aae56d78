"""benchmarks/RESULTS.md from what run.py measured: the machine, the targets met and missed,
a table per section, then NOTES.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import HERE, LATENCY, POLL_ENV, RATE, SCALE, TRIVIAL_FLOW, Run

ROOT = HERE.parent
#: The scale the issue asks for; a run with a smaller largest size says so.
ISSUE_ROWS = 10_000

#: (target, met, what was measured)
Target = tuple[str, bool, str]
#: A section's lines and its targets.
Section = tuple[list[str], list[Target]]

RUN_HEADER = [
    "| run | rows | wall s | ideal s | ÷ ideal | to 1st submit s | submitting s (rate) | "
    "after last job s | 429s | peak/1 s | polls/job | CPU s | peak RSS MB | server CPU s | "
    "server busy after s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def _ok(passed: bool) -> str:
    return "✅" if passed else "❌"


def _machine(loads: tuple[tuple[float, ...], tuple[float, ...]]) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True
        ).stdout.strip()
        or "unknown"
    )
    before, after = (" / ".join(f"{x:.2f}" for x in load) for load in loads)
    return [
        f"- Machine: {os.cpu_count()} × {cpu}, {memory / 1024 / 1024:.0f} GiB, "
        f"{platform.system()} {platform.release()}",
        f"- Load average (1 / 5 / 15 min): {before} at the start, {after} at the end "
        "(above 0.5 at the start, another process shared the cores: the figures are noisier)",
        f"- Python {platform.python_version()}, prefect {metadata.version('prefect')}, "
        f"httpx {metadata.version('httpx')}, "
        f"prefect-grok-video {metadata.version('prefect-grok-video')} (commit {commit})",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Command: `{' '.join(['python benchmarks/run.py', *sys.argv[1:]])}`",
        f"- Scale: time ÷ {SCALE:g}: the service's 1 submission/s is {RATE:g}/s, a 1-minute job "
        f"takes {LATENCY:g} s; poll policy (defaults 5 s first, 1–30 s gaps) scaled alike: "
        + ", ".join(f"`{k}={v}`" for k, v in POLL_ENV.items()),
    ]


def _run_row(run: Run) -> str:
    start, span, tail = run.phases()
    m = run.measured
    rate = (len(run.submits) - 1) / span if span else 0.0
    server = (
        f"{run.server_cpu:.1f} | {run.server_lag:.1f}"
        if run.server_cpu is not None and run.server_lag is not None
        else "(in run) | –"
    )
    return (
        f"| {run.label} | {run.rows} | {m.wall:.1f} | {run.ideal:.1f} | {m.wall / run.ideal:.2f} | "
        f"{start:.1f} | {span:.1f} ({rate:.1f}/s) | {tail:.1f} | {run.stats['rate_limited']} | "
        f"{run.stats['peak_accepted_per_second']} | {run.polls_per_job():.1f} | {m.cpu:.1f} | "
        f"{m.peak_rss_mb:.0f} | {server} |"
    )


def _cold(results: dict[str, Any]) -> Section:
    lines = [
        "## Cold start",
        "",
        "One row whose job ends at once, from process start to exit (wall s, CPU s, peak RSS MB). "
        "The run includes its first poll, which the scaled policy sends "
        f"{POLL_ENV['GROK_VIDEO_POLL_FIRST']} s after the submission; the last line is "
        "Prefect's own floor (benchmarks/trivial_flow.py).",
        "",
        "| command | wall s | CPU s | RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for label, m in results.items():
        lines.append(f"| {label} | {m.wall:.1f} | {m.cpu:.1f} | {m.peak_rss_mb:.0f} |")
    one = results["run, running server"]
    floor = results.get(TRIVIAL_FLOW)
    against = f" (a one-task Prefect flow: {floor.wall:.1f} s)" if floor is not None else ""
    target = ("start-up: a one-row run on a running server ≤ 2 s", one.wall <= 2.0,
              f"{one.wall:.1f} s{against}")  # fmt: skip
    return [*lines, ""], [target]


def _throughput(runs: list[Run]) -> Section:
    by_label = {run.label: run for run in runs}
    ours, reference = by_label["running-server"], by_label["asyncio-reference"]
    naive, rows = by_label.get("naive-prefect-map"), ours.rows
    lines = [
        f"## Throughput: {rows} rows",
        "",
        f"Ideal = rows ÷ rate + one job = {rows} ÷ {RATE:g} + {LATENCY:g} s. The emulator's "
        "bucket allows a burst of 2 here (see *Rate fidelity* for the strict one). "
        "`to 1st submit` is process start to the first accepted submission; "
        f"`after last job` is what follows the last job's end (its submit + {LATENCY:g} "
        "s): downloads, reports, exit.",
        "",
        *RUN_HEADER,
        *(_run_row(run) for run in runs),
        "",
    ]
    if naive is not None:
        lines += [
            f"The naive flow {'completed' if naive.extra['completed'] else 'FAILED'}; "
            f"it sent {naive.stats['accepted']} paid submissions for {naive.rows} rows.",
            "",
        ]
    ratio = ours.measured.wall / ours.ideal
    vs_reference = ours.measured.wall / reference.measured.wall
    from_first = (ours.measured.wall - ours.phases()[0]) / ours.ideal
    targets = [
        (f"{rows} rows, running server: wall ≤ 1.15 × ideal", ratio <= 1.15,
         f"{ours.measured.wall:.1f} s = {ratio:.2f} × {ours.ideal:.1f} s; "
         f"from the first submission on, {from_first:.2f} ×"),
        (f"{rows} rows: no slower than the asyncio reference by more than 15 %",
         vs_reference <= 1.15,
         f"{ours.measured.wall:.1f} s vs {reference.measured.wall:.1f} s = {vs_reference:.2f} ×"),
    ]  # fmt: skip
    return lines, targets


def _rate(runs: list[Run]) -> Section:
    lines = [
        "## Rate fidelity",
        "",
        "A strict token bucket (burst 1): any two submissions "
        "closer than 1/rate get a 429. At the real rate, and scaled 20 ×.",
        "",
        *RUN_HEADER,
        *(_run_row(run) for run in runs),
        "",
    ]
    real = runs[0]
    target = ("zero 429s when --submit-rate matches the service's rate (real 1/s)",
              real.stats["rate_limited"] == 0,
              f"{real.stats['rate_limited']} × 429 in {real.rows} submissions")  # fmt: skip
    return lines, [target]


def _polling(rows: list[dict[str, Any]]) -> Section:
    lines = [
        "## Polling",
        "",
        "Jobs of 30 s to 5 min (scaled; latencies spread ±20 %) at the default policy, each "
        "kind with its own client as a run of similar rows has: a first wave of 10 jobs "
        "(no peer has finished yet), then 20 more. Delay = from the job's end to the client "
        "seeing it, as a share of the job's latency.",
        "",
        "| progress in answers | job (real) | wave | jobs | polls median | polls max | "
        "delay median | delay p90 |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {'yes' if r['progress'] else 'no'} | {r['latency']} s | {r['wave']} | "
            f"{r['jobs']} | {r['polls_median']:g} | {r['polls_max']} | "
            f"{r['delay_median']:.1%} | {r['delay_p90']:.1%} |"
        )
    targets: list[Target] = []
    for label, kind in (
        ("the service reports progress", [r for r in rows if r["progress"]]),
        ("no progress, once peers have finished",
         [r for r in rows if not r["progress"] and r["wave"] == "later"]),
    ):  # fmt: skip
        worst_polls = max(r["polls_max"] for r in kind)
        worst_delay = max(r["delay_median"] for r in kind)
        targets += [
            (f"≤ 10 polls per job ({label})", worst_polls <= 10, f"at most {worst_polls}"),
            (f"median detection delay ≤ 10 % of the job's latency ({label})",
             worst_delay <= 0.10, f"worst median {worst_delay:.1%}"),
        ]  # fmt: skip
    return [*lines, ""], targets


def _kb_per_row(run: Run) -> str:
    return f"{run.stored.size / run.rows / 1024:.1f}" if run.stored else "–"


def _scale(by_database: dict[str, list[Run]]) -> Section:
    names = list(by_database)
    sizes = [run.rows for run in by_database[names[0]]]
    base, top = sizes[0], sizes[-1]
    columns = {
        "wall s / row": lambda r: f"{r.measured.wall / r.rows:.3f}",
        "CPU s / row": lambda r: f"{r.measured.cpu / r.rows:.3f}",
        "server CPU s / row": lambda r: f"{(r.server_cpu or 0) / r.rows:.3f}",
        "peak RSS MB": lambda r: f"{r.measured.peak_rss_mb:.0f}",
        "database KB / row": _kb_per_row,
    }
    lines = [
        "## Scale: SQLite and PostgreSQL",
        "",
        f"{' / '.join(f'{n:,}' for n in sizes)} rows on a `prefect server start` on SQLite (the "
        "running server of the other sections) and on one backed by a private PostgreSQL "
        "cluster (`initdb` in a temporary folder, PostgreSQL's default settings). Per row: wall "
        "and CPU of the run process, the server's CPU (with PostgreSQL's processes) until it is "
        "idle again, and what its database grew by (SQLite: pages in use; PostgreSQL: "
        "`pg_database_size`).",
        "",
        "| rows | " + " | ".join(f"{c} {n}" for c in columns for n in names) + " |",
        "|---:|" + "---:|" * (len(columns) * len(names)),
    ]
    for i, rows in enumerate(sizes):
        cells = [show(by_database[n][i]) for show in columns.values() for n in names]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    lines += ["", *RUN_HEADER]
    lines += [_run_row(run) for n in names for run in by_database[n]]
    targets: list[Target] = []
    for name in names:
        small, large = by_database[name][0], by_database[name][-1]
        wall = (large.measured.wall / large.rows) / (small.measured.wall / small.rows)
        cpu = (large.measured.cpu / large.rows) / (small.measured.cpu / small.rows)
        growth = (large.measured.peak_rss_mb - small.measured.peak_rss_mb) * 1024 / (top - base)
        targets += [
            (f"{name}: wall and CPU per row at {top:,} rows ≤ 1.3 × that at {base:,}",
             wall <= 1.3 and cpu <= 1.3, f"wall/row {wall:.2f} ×, CPU/row {cpu:.2f} ×"),
            (f"{name}: peak RSS < 400 MB at {top:,} rows", large.measured.peak_rss_mb < 400,
             f"{large.measured.peak_rss_mb:.0f} MB"),
            (f"{name}: peak RSS grows ≤ 5 KB a row from {base:,} to {top:,} rows",
             growth <= 5, f"{growth:.1f} KB a row"),
        ]  # fmt: skip
    if top < ISSUE_ROWS:
        lines += [
            "",
            f"The issue's size is {ISSUE_ROWS:,} rows; this run's largest is {top:,} (see the "
            "notes, *Scale sizes*): `python benchmarks/run.py --only scale --scale-rows 100 1000 "
            f"{ISSUE_ROWS}` measures it.",
        ]
    return [*lines, ""], targets


def _posters(measured: dict[str, float]) -> Section:
    share = measured["cpu"] / measured["run_wall"]
    real = measured["cpu"] / (measured["run_wall"] * SCALE)
    lines = [
        "## Poster frames",
        "",
        f"The {measured['videos']:,} videos of the largest SQLite scale run ({measured['rows']:,} "
        "rows) made into posters again, one after another in the benchmark's process "
        "(`prefect_grok_video.posters.make_poster`: open, decode the first, middle and last "
        "frames, scale them to 160 px, one JPEG strip): "
        f"{measured['cpu']:.1f} s of CPU ({measured['cpu'] / measured['videos'] * 1000:.1f} ms "
        f"a video), {share:.1%} of that run's wall time ({measured['run_wall']:.1f} s) at the "
        f"benchmark's scaled pace, {real:.2%} of it at the service's real pace (time ÷ "
        f"{SCALE}). A run makes them in two threads beside its own work.",
        "",
    ]
    target = (f"posters of {measured['rows']:,} rows ≤ 5 % of the run's wall time (real pace)",
              real <= 0.05, f"{real:.2%} (scaled pace: {share:.1%})")  # fmt: skip
    return lines, [target]


def _per_row(count: float, rows: int) -> str:
    return f"{count / rows:.2f}"


def _counts(title: str, counts: Counter[str], rows: int) -> list[str]:
    """A table of `counts`, most first, with each per row."""
    head = ["", f"| {title} | count | per row |", "|---|---:|---:|"]
    return head + [f"| `{k}` | {n} | {_per_row(n, rows)} |" for k, n in counts.most_common()]


def _profile(run: Run, scale: dict[str, list[Run]] | None) -> Section:
    assert run.requests is not None and run.stored is not None
    rows, stored = run.rows, run.stored
    prefect = Counter({k: v for k, v in run.requests.items() if k.startswith("prefect: ")})
    service = run.requests - prefect
    events, logs = stored.events.total(), stored.rows["log"]
    lines = [
        "## Per-row cost: what a row asks of the Prefect server",
        "",
        f"{rows} rows on the running server (SQLite), each HTTP request of the run's process "
        "counted by route (`benchmarks/counting.py`), and what the server's database gained "
        "until the server was idle again. Per row = total ÷ rows: the run's own calls (its flow "
        "run, its concurrency limit, its artifacts) are spread over its rows.",
        "",
        f"**Each row: {prefect.total() / rows:.1f} Prefect API requests, {events / rows:.1f} "
        f"events, {logs / rows:.1f} log lines, {stored.rows['task_run'] / rows:.1f} task runs "
        f"with {stored.rows['task_run_state'] / rows:.1f} states; the server spent "
        f"{(run.server_cpu or 0) / rows * 1000:.0f} ms of CPU and stored "
        f"{stored.size / rows / 1024:.1f} KB.** The service saw {service.total() / rows:.1f} "
        "requests per row.",
    ]
    lines += _counts("request (HTTP, by route)", prefect + service, rows)
    lines += _counts("event (stored)", stored.events, rows)
    lines += _counts("log line (stored, by logger and level)", stored.logs, rows)
    largest = {name: runs[-1] for name, runs in (scale or {}).items()}
    header = "".join(f" {name}, {r.rows:,} rows: per row |" for name, r in largest.items())
    lines += [
        "",
        f"| database table | rows | per row |{header}",
        "|---|---:|---:|" + "---:|" * len(largest),
    ]
    for table, n in stored.rows.most_common():
        others = "".join(
            f" {_per_row(r.stored.rows[table], r.rows) if r.stored else '–'} |"
            for r in largest.values()
        )
        lines.append(f"| {table} | {n} | {_per_row(n, rows)} |{others}")
    return [*lines, ""], []


def _big(run: Run) -> Section:
    lines = [
        "## Big inputs",
        "",
        "8 local files of 100 MiB each (a real clip padded with a "
        "sparse `free` box), sent as base64 data URLs, all in flight together.",
        "",
        *RUN_HEADER,
        _run_row(run),
        "",
    ]
    target = ("peak RSS < 300 MB with 8 × 100 MB inputs in flight",
              run.measured.peak_rss_mb < 300, f"{run.measured.peak_rss_mb:.0f} MB")  # fmt: skip
    return lines, [target]


def report(
    results: dict[str, Any], elapsed: float, loads: tuple[tuple[float, ...], tuple[float, ...]]
) -> str:
    """RESULTS.md's text: the machine, the targets, each measured section, then NOTES.md."""
    sections: list[Section] = []
    if "cold" in results:
        sections.append(_cold(results["cold"]))
    if "throughput" in results:
        sections.append(_throughput(results["throughput"]))
    if "rate" in results:
        sections.append(_rate(results["rate"]))
    if "polling" in results:
        sections.append(_polling(results["polling"]))
    if "scale" in results:
        sections.append(_scale(results["scale"]))
    if "posters" in results:
        sections.append(_posters(results["posters"]))
    if "profile" in results:
        sections.append(_profile(results["profile"], results.get("scale")))
    if "big" in results:
        sections.append(_big(results["big"]))
    intro = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py` "
        f"in {elapsed / 60:.1f} min. Regenerate it with the same command.",
        "",
        *_machine(loads),
        "",
        "## Targets",
        "",
        "| target | met | measured |",
        "|---|:-:|---|",
        *(f"| {name} | {_ok(ok)} | {figure} |" for _, ts in sections for name, ok, figure in ts),
        "",
    ]
    notes = HERE / "NOTES.md"
    tail = ["", notes.read_text(encoding="utf-8")] if notes.exists() else []
    body = [line for lines, _ in sections for line in lines]
    return "\n".join(intro + body + tail) + "\n"
