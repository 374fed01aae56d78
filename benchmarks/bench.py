"""One measured run: its inputs, the bracket around it (reset emulator, idle server, the
server's CPU and database until it is idle again) and what it measured."""

from __future__ import annotations

import csv
import json
import struct
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from servers import (
    BIN,
    Emulator,
    Measured,
    Postgres,
    PrefectServer,
    Snapshot,
    base_env,
    measure,
)

HERE = Path(__file__).resolve().parent

#: Benchmark seconds are real seconds divided by SCALE.
SCALE = 20.0
#: The service's rate (1/s) and a typical job (1 min), scaled.
RATE = 1.0 * SCALE
#: The *Cold start* line of benchmarks/trivial_flow.py: what any run on Prefect costs at least.
TRIVIAL_FLOW = "a Prefect flow with one task that does nothing, running server"
LATENCY = 60.0 / SCALE
#: The default poll policy (first poll 5 s, gaps 1 s to 30 s), scaled.
POLL_ENV = {
    "GROK_VIDEO_POLL_FIRST": str(5.0 / SCALE),
    "GROK_VIDEO_POLL_MIN_INTERVAL": str(1.0 / SCALE),
    "GROK_VIDEO_POLL_MAX_INTERVAL": str(30.0 / SCALE),
}


def write_manifest(path: Path, rows: int, tag: str, *, video: str | None = None) -> Path:
    """`rows` rows of URL inputs (the emulator does not fetch URLs), prompts unique to `tag`."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "video", "prompt", "duration"])
        for i in range(rows):
            source = video or f"https://cdn.example/clips/{i % 50}.mp4"
            writer.writerow([f"r{i:05d}", source, f"{tag}: the camera pans on, shot {i}", 6])
    return path


def big_clip(path: Path, size: int) -> Path:
    """The bundled 5 s example clip padded to `size` bytes by a sparse trailing `free` box."""
    clips = resources.files("prefect_grok_video.examples.clips")
    clip = next(item for item in clips.iterdir() if item.name.endswith(".mp4")).read_bytes()
    with path.open("wb") as file:
        file.write(clip)
        file.write(struct.pack(">I4s", size - len(clip), b"free"))
        file.truncate(size)
    return path


@dataclass
class Run:
    """One `grok-video run` (or reference, or naive flow) and what the emulator saw of it."""

    label: str
    rows: int
    measured: Measured
    stats: dict[str, Any]
    server_cpu: float | None = None
    #: Seconds from the run's exit until the server was idle (its backlog).
    server_lag: float | None = None
    rate: float = RATE
    latency: float = LATENCY
    #: What the running server's database gained (None with the temporary server).
    stored: Snapshot | None = None
    #: HTTP requests by route, counted in the run's process (the profile's run only).
    requests: Counter[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ideal(self) -> float:
        return self.rows / self.rate + self.latency

    @property
    def submits(self) -> list[float]:
        return sorted(record["monotonic"] for record in self.stats["submissions"])

    @property
    def succeeded(self) -> int:
        return sum(1 for count in self.stats["downloads"].values() if count)

    def phases(self) -> tuple[float, float, float]:
        """Seconds from start to the first accepted submit, of submitting, after the last + L."""
        times = self.submits
        start = times[0] - self.measured.started
        span = times[-1] - times[0]
        tail = self.measured.wall - (times[-1] - self.measured.started) - self.latency
        return start, span, tail

    def polls_per_job(self) -> float:
        polls = self.stats["polls"]
        return sum(polls.values()) / max(1, len(polls))


class Bench:
    """Shared state of one benchmark: the work folder, the emulator, the running server (on
    SQLite) and, with `postgres`, a second one on a private PostgreSQL cluster."""

    def __init__(self, workdir: Path, *, postgres: bool = False) -> None:
        self.workdir = workdir
        self._count = 0
        self.emulator = Emulator(
            workdir, "--latency", str(LATENCY), "--submit-rate", str(RATE), "--submit-burst", "2"
        )
        starts = [lambda: PrefectServer(workdir / "server-home")]
        if postgres:
            starts.append(lambda: PrefectServer(workdir / "postgres-server-home", Postgres()))
        with ThreadPoolExecutor(2) as pool:  # each start is mostly its database's migrations
            futures = [pool.submit(start) for start in starts]
        failed = [f.exception() for f in futures if f.exception()]
        if failed:
            for future in futures:
                if not future.exception():
                    future.result().stop()
            self.emulator.stop()
            raise failed[0]  # type: ignore[misc]
        self.server = futures[0].result()
        self.postgres = futures[1].result() if postgres else None

    def env(self, server: PrefectServer | None, home: Path | None = None) -> dict[str, str]:
        """A child's environment: the emulator, the scaled poll policy, `server`'s API if any."""
        self._count += 1
        env = base_env(home or self.workdir / f"client-home-{self._count}")
        env.update(self.emulator.env, **POLL_ENV)
        if server is not None:
            env["PREFECT_API_URL"] = server.url
        return env

    def flow_run(
        self,
        label: str,
        rows: int,
        *,
        manifest: Path | None = None,
        rate: float = RATE,
        profile: bool = False,
        **where: Any,
    ) -> Run:
        """`grok-video run` of `rows` rows, measured by `measure_run` (`where`: its server,
        temporary, home, emulator, latency); with `profile`, through counting.py."""
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.workdir))
        manifest = manifest or write_manifest(folder / "manifest.csv", rows, f"{label} {folder}")
        counts = folder / "requests.json"
        grok_video = (
            [sys.executable, str(HERE / "counting.py"), str(counts)]
            if profile
            else [str(BIN / "grok-video")]
        )
        command = [
            *grok_video,
            "run",
            str(manifest),
            "--output",
            str(folder / "videos"),
            "--submit-rate",
            f"{rate:g}",
            "--no-progress",
            "--report",
            str(folder / "report.json"),
        ]
        run = self.measure_run(label, rows, command, folder, rate=rate, **where)
        _check(run, folder / "report.json")
        run.extra["videos"] = folder / "videos"
        if profile:
            run.requests = Counter(json.loads(counts.read_text()))
        return run

    def measure_run(
        self,
        label: str,
        rows: int,
        command: list[str],
        folder: Path,
        *,
        server: PrefectServer | None = None,
        temporary: bool = False,
        home: Path | None = None,
        emulator: Emulator | None = None,
        rate: float = RATE,
        latency: float = LATENCY,
    ) -> Run:
        """Run `command` in `folder` against a reset emulator and an idle server, measured;
        the server's CPU and database growth are counted until it is idle again and its
        database has stopped changing (on PostgreSQL, Prefect's task-run recorder goes on
        writing task runs for a while after the server's CPU has gone quiet)."""
        server = server or self.server
        emulator = emulator or self.emulator
        env = self.env(None if temporary else server, home)
        env.update(emulator.env)
        emulator.reset()
        server.wait_idle(limit=120 + rows)
        server.forget_limit()
        before = server.settle(quiet=2.0)  # the last run's after-settle left it still
        cpu_before = server.cpu_seconds()
        measured = measure(command, env, folder)
        exited = time.monotonic()
        server.wait_idle(limit=120 + rows)
        after = server.settle()
        run = Run(label, rows, measured, emulator.stats(), rate=rate, latency=latency)
        if not temporary:
            run.server_cpu = server.cpu_seconds() - cpu_before
            run.server_lag = time.monotonic() - exited
            run.stored = after - before
        return run

    def stop_postgres(self) -> None:
        """Stop the server on PostgreSQL, and the cluster."""
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    def stop(self) -> None:
        try:
            self.emulator.stop()
            self.stop_postgres()
        finally:
            self.server.stop()


def _check(run: Run, report_path: Path | None = None) -> None:
    """Every row must have succeeded: a benchmark of failing runs measures nothing."""
    if run.measured.returncode != 0 or run.succeeded != run.rows:
        raise SystemExit(
            f"{run.label}: exit {run.measured.returncode}, {run.succeeded}/{run.rows} downloaded\n"
            + run.measured.output[-4000:]
        )
    if report_path is not None:
        report = json.loads(report_path.read_text())
        statuses = {item["status"] for item in report["items"]}
        if statuses != {"succeeded"} or len(report["items"]) != run.rows:
            raise SystemExit(f"{run.label}: report says {statuses}")
