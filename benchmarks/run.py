"""Benchmark prefect-grok-video against the local emulator and write benchmarks/RESULTS.md.

    python benchmarks/run.py                       # every section, about 15 minutes on 2 cores
    python benchmarks/run.py --quick               # smaller, fewer sections: RESULTS-quick.md
    python benchmarks/run.py --only polling scale  # some sections (RESULTS.md then has only them)
    python benchmarks/run.py --only scale --scale-rows 100 1000 10000   # the issue's sizes

Time is scaled down SCALE times: the service's 1 submission per second becomes 20 per second,
a 1-minute job takes 3 s, and the poll policy's defaults (first poll 5 s, gaps 1-30 s) shrink
alike. Every process is real: the emulator is its own HTTP server process, Prefect servers are
`prefect server start` (the "running server", on SQLite, and for the scale section one on a
private PostgreSQL cluster) or the temporary one Prefect starts by itself, and each run is the
`grok-video run` command a user types, measured from the outside (wall time, CPU and peak RSS
from wait4). Nothing here reaches the network. Modules: servers.py (the processes), bench.py
(one measured run), counting.py (requests by route, for the profile), report.py (RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import HERE, LATENCY, RATE, SCALE, TRIVIAL_FLOW, Bench, Run, big_clip, write_manifest
from report import report
from servers import BIN, Emulator, PrefectServer, measure

SECTIONS = ("cold", "throughput", "rate", "polling", "profile", "big", "scale")


@dataclass(frozen=True)
class Plan:
    """What one invocation measures, and at which sizes."""

    sections: tuple[str, ...]
    throughput_rows: int
    scale_rows: tuple[int, ...]
    profile_rows: int
    #: Whether Prefect's temporary server is measured too (in the cold start), and the naive
    #: flow beside the asyncio reference (in the throughput): the full run's extras.
    temporary: bool


FULL = Plan(SECTIONS, 400, (100, 1000), 200, temporary=True)
QUICK = Plan(("cold", "throughput", "profile", "scale"), 60, (30, 60), 30, temporary=False)


# -- sections -----------------------------------------------------------------------------------


def cold_start(bench: Bench, temporary: bool) -> dict[str, Any]:
    """One row (a job that ends at once), from process start to exit; with `temporary`, on
    Prefect's temporary server too (first ever, then with its database)."""
    env = bench.env(None)
    help_run = measure([str(BIN / "grok-video"), "--help"], env, bench.workdir)
    import_run = measure(
        [sys.executable, "-c", "import prefect_grok_video.flows"], env, bench.workdir
    )
    temp_home = bench.workdir / "temporary-server-home"
    results = {"grok-video --help": help_run, "import prefect_grok_video.flows": import_run}
    kinds: list[tuple[str, bool, Path | None]] = [("run, running server", False, None)]
    if temporary:
        kinds[:0] = [
            ("run, temporary server, first ever (creates its database)", True, temp_home),
            ("run, temporary server, database exists", True, temp_home),
        ]
    for label, temporary_server, home in kinds:
        manifest = bench.workdir / f"one-{len(results)}.csv"
        manifest.write_text(
            "id,video,prompt\none,https://cdn.example/one.mp4,"
            f"cold start {len(results)} {bench.workdir} #latency=0\n"
        )
        results[label] = bench.flow_run(
            "cold", 1, temporary=temporary_server, home=home, manifest=manifest
        ).measured
    results[TRIVIAL_FLOW] = measure(
        [sys.executable, str(HERE / "trivial_flow.py")], bench.env(bench.server), bench.workdir
    )
    return results


def throughput(bench: Bench, rows: int, naive: bool) -> list[Run]:
    """The same rows on the running server, by the asyncio reference and (with `naive`) by the
    naive flow (Prefect's temporary server is measured in *Cold start*: its start-up is what
    differs)."""
    runs = [bench.flow_run("running-server", rows)]
    others = [("asyncio-reference", "reference.py",
               ["--rate", f"{RATE:g}", "--poll", str(5 / SCALE)])]  # fmt: skip
    if naive:
        others.append(("naive-prefect-map", "naive_flow.py", []))
    for label, script, extra in others:
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=bench.workdir))
        manifest = write_manifest(folder / "manifest.csv", rows, f"{label} {folder}")
        command = [
            sys.executable,
            str(HERE / script),
            str(manifest),
            str(folder / "videos"),
            *extra,
        ]
        run = bench.measure_run(label, rows, command, folder)
        run.extra["completed"] = run.measured.returncode == 0
        runs.append(run)
    return runs


def rate_fidelity(bench: Bench) -> list[Run]:
    """429s against a strict bucket (burst 1): at the service's real 1/s, and scaled to 20/s."""
    runs = []
    for label, rate, rows, latency in (
        ("real-rate-1-per-s", 1.0, 30, 1.0),
        ("scaled-20-per-s", RATE, 200, LATENCY),
    ):
        strict = Emulator(
            bench.workdir,
            "--latency",
            str(latency),
            "--submit-rate",
            f"{rate:g}",
            "--submit-burst",
            "1",
        )
        try:
            runs.append(bench.flow_run(label, rows, rate=rate, latency=latency, emulator=strict))
        finally:
            strict.stop()
    return runs


def polling() -> list[dict[str, Any]]:
    """Polls per job and detection delay at the default policy (scaled), for jobs of 30 s to
    5 min, with and without `progress` in the answers.

    Each kind of job has its own client, as a run of similar rows has: a first wave of 10 jobs
    (no peers have finished yet), then 20 more (the client has seen the first wave finish).
    In-process: the emulator's clock says when each job finished, the client's when it saw it.
    """
    from prefect_grok_video import AsyncGrokVideoClient
    from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
    from prefect_grok_video.policies import PollPolicy

    policy = PollPolicy(first_poll=5 / SCALE, min_interval=1 / SCALE, max_interval=30 / SCALE)
    waves = (("first", 10), ("later", 20))

    async def one(server: EmulatorServer, client: AsyncGrokVideoClient, latency: float,
                  name: str) -> tuple[float, int, float]:  # fmt: skip
        prompt = f"{name} #latency={latency:.3f}"
        request_id = await client.submit_extension(video="https://cdn.example/a.mp4", prompt=prompt)
        await client.wait_for_video(request_id, submitted_at=time.monotonic(), poll=policy)
        seen = time.monotonic()
        job = server.state.get_job(request_id)
        assert job is not None
        return latency, server.state.polls[request_id], (seen - job.finished_at) / latency

    async def kind(server: EmulatorServer, real: int, progress: bool) -> list[dict[str, Any]]:
        rows = []
        async with AsyncGrokVideoClient(api_key=server.api_key, base_url=server.base_url) as client:
            for wave, count in waves:
                outcomes = await asyncio.gather(*(
                    one(server, client, real / SCALE * (0.8 + 0.4 * i / (count - 1)),
                        f"{real} {wave} {i}")
                    for i in range(count)
                ))  # fmt: skip
                polls = [o[1] for o in outcomes]
                delays = [o[2] for o in outcomes]
                rows.append({
                    "progress": progress, "latency": real, "wave": wave, "jobs": count,
                    "polls_median": statistics.median(polls), "polls_max": max(polls),
                    "delay_median": statistics.median(delays),
                    "delay_p90": statistics.quantiles(delays, n=10)[-1],
                })  # fmt: skip
        return rows

    async def main() -> list[dict[str, Any]]:
        configs = [EmulatorConfig(submit_rate=None, report_progress=p) for p in (True, False)]
        with EmulatorServer(configs[0]) as with_progress, EmulatorServer(configs[1]) as without:
            kinds = await asyncio.gather(*(
                kind(server, real, server is with_progress)
                for server in (with_progress, without) for real in (30, 60, 120, 300)
            ))  # fmt: skip
        return [row for rows in kinds for row in rows]

    return asyncio.run(main())


def scale(
    bench: Bench, server: PrefectServer, sizes: Sequence[int], known: Sequence[Run] = ()
) -> list[Run]:
    """`sizes` rows on `server` (`known` runs of a size are reused)."""
    reuse = {run.rows: run for run in known}
    label = server.database.name.lower()
    return [reuse.get(n) or bench.flow_run(f"{label}-{n}", n, server=server) for n in sizes]


def posters(run: Run) -> dict[str, float]:
    """The poster frames of `run`'s videos made again, one after another in this process: what
    they cost a run of that many rows (the run makes them in two threads beside its work)."""
    from prefect_grok_video.posters import make_poster

    videos = sorted(Path(run.extra["videos"]).glob("*.mp4"))
    began = time.process_time(), time.perf_counter()
    for video in videos:
        make_poster(video, video.with_suffix(".jpg"))
    cpu, wall = time.process_time() - began[0], time.perf_counter() - began[1]
    return {"videos": len(videos), "cpu": cpu, "wall": wall, "run_wall": run.measured.wall,
            "rows": run.rows}  # fmt: skip


def profile(bench: Bench, rows: int) -> Run:
    """`rows` rows on the running server with every HTTP request counted by route, and what
    the server's database gained: what each row asks of the Prefect server."""
    return bench.flow_run("profile", rows, profile=True)


def big_inputs(bench: Bench, count: int = 8, size: int = 100 * 1024 * 1024) -> Run:
    """`count` local files of `size` bytes, all in flight at once (base64 in the JSON body)."""
    folder = Path(tempfile.mkdtemp(prefix="big-", dir=bench.workdir))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "video", "prompt", "duration"])
        for i in range(count):
            path = big_clip(folder / f"big-{i}.mp4", size + i)  # distinct bytes, distinct jobs
            writer.writerow([f"big{i}", str(path), f"big input {i} {folder}", 6])
    return bench.flow_run("big-inputs", count, manifest=manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer sections")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="these sections only")
    parser.add_argument("--scale-rows", nargs="+", type=int, metavar="N",
                        help="sizes of the scale section (the first is the baseline)")  # fmt: skip
    parser.add_argument("--output", type=Path,
                        help="default: RESULTS.md; with --quick, RESULTS-quick.md")  # fmt: skip
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    if args.only:
        plan = replace(plan, sections=tuple(s for s in SECTIONS if s in args.only))
    if args.scale_rows:
        plan = replace(plan, scale_rows=tuple(args.scale_rows))
    began, load = time.monotonic(), os.getloadavg()
    results = measure_all(plan)
    text = report(results, time.monotonic() - began, (load, os.getloadavg()))
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} in {(time.monotonic() - began) / 60:.1f} min")


def measure_all(plan: Plan) -> dict[str, Any]:
    """Every section of `plan`: polling (no servers), the scale section's PostgreSQL runs (so
    that their server is stopped before the others and never idles beside them), the rest in
    the order of SECTIONS."""
    results: dict[str, Any] = {}
    began = time.monotonic()
    with _workdir() as workdir:
        if "polling" in plan.sections:
            _say("polling", began)
            results["polling"] = polling()
        _say("starting servers", began)
        bench = Bench(workdir, postgres="scale" in plan.sections)
        try:
            on_postgres: list[Run] = []
            if bench.postgres is not None:
                _say("scale on PostgreSQL", began)
                on_postgres = scale(bench, bench.postgres, plan.scale_rows)
                bench.stop_postgres()
            for name in plan.sections:
                if name == "polling":
                    continue
                _say(name, began)
                if name == "cold":
                    results[name] = cold_start(bench, plan.temporary)
                elif name == "throughput":
                    results[name] = throughput(bench, plan.throughput_rows, plan.temporary)
                elif name == "rate":
                    results[name] = rate_fidelity(bench)
                elif name == "profile":
                    results[name] = profile(bench, plan.profile_rows)
                elif name == "big":
                    results[name] = big_inputs(bench)
                elif name == "scale":
                    known = results.get("throughput", [])[:1]
                    on_sqlite = scale(bench, bench.server, plan.scale_rows, known)
                    results[name] = {"SQLite": on_sqlite, "PostgreSQL": on_postgres}
                    results["posters"] = posters(on_sqlite[-1])
        finally:
            bench.stop()
    return results


def _say(step: str, began: float) -> None:
    elapsed, load = time.monotonic() - began, os.getloadavg()[0]
    print(f"{elapsed:5.0f} s  {step} ... (load average {load:.2f})", flush=True)


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="grok-video-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
