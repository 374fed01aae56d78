"""The processes a benchmark runs and measures from outside: the emulator, Prefect servers on
SQLite or on a private PostgreSQL cluster, and the measured child process itself.

Benchmarks do not import tests/fixtures_server.py (it needs pytest); these are their own.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(home: Path) -> dict[str, str]:
    """The environment of every child: no analytics, no user config, its own PREFECT_HOME.
    Prefect's log level stays its default (INFO), so runs send the server every log line a
    user's run sends (the console shows warnings only: `grok-video` sees to that)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GROK_VIDEO_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def tree_cpu(root: int) -> float:
    """User + system seconds of `root` and its live descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def _stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM a process started in its own session, SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Measured:
    """One child process, measured from outside."""

    started: float
    wall: float
    cpu: float
    peak_rss_mb: float
    returncode: int
    output: str


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run `command` to its end; wall time, CPU (user + system) and peak RSS from wait4."""
    log = cwd / f"output-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        started=started,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        output=log.read_text(errors="replace"),
    )


class Emulator:
    """`grok-video emulator` in its own process (so it never shares a core's GIL with a run)."""

    def __init__(self, workdir: Path, *args: str, api_key: str = "emulator-key") -> None:
        # Flat results: drawing them would take the CPU a run is measured on.
        command = [str(BIN / "grok-video"), "emulator", "--port", "0", "--pictures", "flat", *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=base_env(workdir / "emulator-home"),
            start_new_session=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "listening on" in line:
                self.base_url = line.split("listening on", 1)[1].strip()
                break
        else:
            raise RuntimeError("the emulator did not start")
        self.env = {"GROK_VIDEO_BASE_URL": self.base_url, "GROK_VIDEO_API_KEY": api_key}
        self._auth = {"Authorization": f"Bearer {api_key}"}

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/_emulator/stats", headers=self._auth, timeout=30).json()

    def reset(self) -> None:
        response = httpx.post(f"{self.base_url}/_emulator/reset", headers=self._auth, timeout=30)
        response.raise_for_status()

    def stop(self) -> None:
        _stop_group(self.process)


# -- databases ----------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What a Prefect server's database holds at one moment."""

    #: Bytes in use.
    size: int
    #: Rows by table.
    rows: Counter[str]
    #: Events by name.
    events: Counter[str]
    #: Log lines by logger and level.
    logs: Counter[str]

    def __sub__(self, before: Snapshot) -> Snapshot:
        return Snapshot(self.size - before.size, self.rows - before.rows,
                        self.events - before.events, self.logs - before.logs)  # fmt: skip


class Database(Protocol):
    """A Prefect server's database, as the benchmark measures it."""

    name: str
    url: str

    def snapshot(self) -> Snapshot: ...

    def cpu_seconds(self) -> float: ...

    def stop(self) -> None: ...


_EVENTS_BY_NAME = "SELECT event, COUNT(*) FROM events GROUP BY event"
_LOGS_BY_LOGGER = "SELECT name, level, COUNT(*) FROM log GROUP BY name, level"


def _by_logger(rows: list[tuple[Any, ...]]) -> Counter[str]:
    """`logger LEVEL` → count, from rows of _LOGS_BY_LOGGER."""
    return Counter({f"{name} {logging.getLevelName(level)}": n for name, level, n in rows})


class Sqlite:
    """The SQLite file of a `prefect server start` (Prefect's default database)."""

    name = "SQLite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite+aiosqlite:///{path}"

    def snapshot(self) -> Snapshot:
        """Size = pages in use × page size: the file's size once its WAL is checkpointed."""
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60) as db:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            tables = [name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )]  # fmt: skip
            rows = Counter({t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
                            for t in tables})  # fmt: skip
            events = Counter(dict(db.execute(_EVENTS_BY_NAME).fetchall()))
            logs = _by_logger(db.execute(_LOGS_BY_LOGGER).fetchall())
        return Snapshot((pages - free) * page_size, rows, events, logs)

    def cpu_seconds(self) -> float:
        """SQLite runs inside the server's process: its CPU is the server's."""
        return 0.0

    def stop(self) -> None:
        """Nothing runs apart from the server."""


class Postgres:
    """A private PostgreSQL cluster: `initdb` in a temporary folder, `pg_ctl start` on a free
    port of 127.0.0.1 (trust authentication), a `prefect` database; run as the `postgres`
    user when this process is root, since PostgreSQL refuses to run as root."""

    name = "PostgreSQL"

    def __init__(self) -> None:
        bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="grok-video-bench-pg-"))
        self.data = self.root / "data"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_owner:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self._pg_ctl = str(bindir / "pg_ctl")
        self._dsn = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"
        try:
            self._owner(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            self._owner(self._pg_ctl, "start", "-w", "-t", "120", "-D", str(self.data),
                        "-l", str(self.root / "postgres.log"), "-o", options)  # fmt: skip
            self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
            self._query(self._dsn + "/postgres", "CREATE DATABASE prefect")
        except BaseException:
            self.stop()
            raise

    def _owner(self, *command: str) -> None:
        """Run `command` as the cluster's owner; RuntimeError with its output if it fails."""
        done = subprocess.run([*self._as_owner, *command], capture_output=True, text=True,
                              cwd=self.root)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    @staticmethod
    def _query(dsn: str, *statements: str) -> list[list[tuple[Any, ...]]]:
        """The rows of each statement, in one connection."""
        import asyncpg

        async def run() -> list[list[tuple[Any, ...]]]:
            connection = await asyncpg.connect(dsn)
            try:
                return [[tuple(r) for r in await connection.fetch(s)] for s in statements]
            finally:
                await connection.close()

        return asyncio.run(run())

    def snapshot(self) -> Snapshot:
        """Size = `pg_database_size` (the database's files, not the cluster's WAL)."""
        dsn = self._dsn + "/prefect"
        (size,), tables = self._query(
            dsn,
            "SELECT pg_database_size(current_database())",
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        )
        *counts, events, logs = self._query(
            dsn,
            *(f'SELECT COUNT(*) FROM "{name}"' for (name,) in tables),
            _EVENTS_BY_NAME,
            _LOGS_BY_LOGGER,
        )
        rows = Counter({name: n[0][0] for (name,), n in zip(tables, counts, strict=True)})
        return Snapshot(size[0], rows, Counter(dict(events)), _by_logger(logs))

    def cpu_seconds(self) -> float:
        """CPU of the postmaster and its backends."""
        return tree_cpu(self.pid)

    def restart(self) -> None:
        """Restart the cluster (fast shutdown: open connections are cut), as an operator's
        restart or a failover does."""
        self._owner(self._pg_ctl, "restart", "-w", "-t", "120", "-m", "fast", "-D",
                    str(self.data), "-l", str(self.root / "postgres.log"))  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def dump(self) -> str:
        """The `prefect` database as SQL text (pg_dump), to look for what must not be in it."""
        done = subprocess.run(
            [str(postgres_bindir() / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "prefect"], capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._owner(self._pg_ctl, "stop", "-m", "fast", "-D", str(self.data))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_bindir() -> Path:
    """The folder of Debian's `initdb` and `pg_ctl` (newest major version), installing
    Debian's `postgresql` package first if it is missing and this process is root."""
    for attempt in range(2):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                       key=lambda p: int(Path(p).parts[-3]))  # fmt: skip
        on_path = shutil.which("pg_ctl")
        if found or on_path:
            return Path(found[-1] if found else str(on_path)).parent
        if attempt or os.geteuid() != 0 or not shutil.which("apt-get"):
            break
        print("installing PostgreSQL: apt-get install -y postgresql", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "postgresql"], env=env).returncode:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "postgresql"], env=env, check=True)
    raise SystemExit("PostgreSQL is not installed: as root, apt-get install -y postgresql")


# -- Prefect servers ----------------------------------------------------------------------------


class PrefectServer:
    """`prefect server start` on a free port, on its own SQLite file or on `database` (which
    it then owns: stopping the server stops it). `stop_process()` and `start()` stop and start
    the server alone, on the same port and database, as a restart would."""

    def __init__(self, home: Path, database: Database | None = None, **env: str) -> None:
        self.database = database or Sqlite(home / "prefect.db")
        home.mkdir(parents=True)
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = base_env(home)
        self.env.update(PREFECT_SERVER_DATABASE_CONNECTION_URL=self.database.url,
                        PREFECT_LOGGING_LEVEL="WARNING", **env)  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        """Start the server and wait until its API answers (RuntimeError if it does not)."""
        self.starts += 1
        log = (self.home / f"server-{self.starts}.log").open("w")
        self.log_path = Path(log.name)
        self.process = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        log_text = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"prefect server start ({self.database.name}) did not answer\n{log_text}"
        )

    def stop_process(self) -> None:
        """Stop the server (not its database), as an operator's restart does."""
        if self.process is not None and self.process.poll() is None:
            _stop_group(self.process)

    def forget_limit(self) -> None:
        """Delete the shared submit limit, so that the next run creates it at its own rate
        (an existing limit rules over every run, whatever its --submit-rate), and whose slots
        the last run used need not decay first. A busy SQLite server answers 503 for a while
        after a big run: asked again until it is gone."""
        deadline = time.monotonic() + 120
        while True:
            answer = httpx.delete(f"{self.url}/v2/concurrency_limits/grok-video-submit", timeout=30)
            if answer.status_code in (204, 404):
                return
            if time.monotonic() > deadline:
                answer.raise_for_status()
            time.sleep(0.5)

    def cpu_seconds(self) -> float:
        """CPU time of the server's whole process tree so far, and of its database's."""
        assert self.process is not None
        return tree_cpu(self.process.pid) + self.database.cpu_seconds()

    def wait_idle(self, limit: float = 300.0) -> float:
        """Wait until the server has worked off what earlier runs sent it (its events arrive
        faster than it stores them when a run is busy), so no run pays for another's backlog;
        return the server CPU seconds that took."""
        started, deadline = self.cpu_seconds(), time.monotonic() + limit
        last = started
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - last < 0.05:  # an idle server uses about 0.03 s a second
                return now - started
            last = now
        return last - started

    def settle(self, quiet: float = 6.0) -> Snapshot:
        """The database once no table has changed for `quiet` seconds: the event persister
        stores its last partial batch up to 5 s (its flush interval) after the server is idle."""
        snapshot, since = self.database.snapshot(), time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(1.0)
            now = self.database.snapshot()
            if now.rows != snapshot.rows:
                snapshot, since = now, time.monotonic()
        return snapshot

    def stop(self) -> None:
        try:
            self.stop_process()
        finally:
            self.database.stop()
