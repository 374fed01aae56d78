"""A real Prefect server: `prefect server start` in a subprocess, and processes that use it.

- `Cluster(root, server=None, **env)`: processes on 127.0.0.1 sharing one environment
  (`cli_environment` with `PREFECT_HOME` in `root` and `env`): without `server`, its own API URL
  on a free port; with `server`, that cluster's (or that API URL: a server run elsewhere).
  `start(name, *args)` starts a process (its output in `root/<name>.log`), `run(*args)` runs
  one to its end, `logs()` and `stop()`.
- `start_prefect_server(root, database=None, **env)`: a `Cluster` running `prefect server start`
  (on a copy of the migrated `database`, if given), once its API answers (a start takes 10-45 s
  on 2 cores); its UI at `cluster.ui_url`.
- `prefect_server_process` (per test module): such a server for one test file, on a copy of the
  session's migrated database.

Also used by `scripts/screenshots.py`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fixtures_cli import cli_environment
from fixtures_prefect import copy_database

__all__ = ["Cluster", "free_port", "prefect_server_process", "start_prefect_server"]

REPO = Path(__file__).parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, with everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Cluster:
    """Processes on 127.0.0.1 with one environment and one Prefect server.

    With `server`, the processes of one test against that cluster's server (or that API URL).
    """

    def __init__(self, root: Path, server: Cluster | str | None = None, **env: str) -> None:
        self.root = root
        self.server = server if isinstance(server, Cluster) else None
        self.processes: list[subprocess.Popen] = []
        if isinstance(server, str):
            self.api_url = server
        elif server is not None:
            self.api_url = server.api_url
        else:
            self.api_url = f"http://127.0.0.1:{free_port()}/api"
        self.env = cli_environment(root / "prefect-home", api_url=self.api_url, **env)

    @property
    def ui_url(self) -> str:
        """The address of the server's UI."""
        return self.api_url.removesuffix("/api")

    def start(self, name: str, *args: str, cwd: Path | None = None, **env: str) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(
            args, env={**self.env, **env}, cwd=cwd or self.root, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip

    def run(self, *args: str, timeout: float = 120, **env: str) -> str:
        done = subprocess.run(args, env={**self.env, **env}, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def logs(self) -> str:
        own = "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.root.glob("*.log"))
        )
        return f"{self.server.logs()}\n{own}" if self.server else own

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)


def start_prefect_server(
    root: Path, timeout: float = 90, database: Path | None = None, **env: str
) -> Cluster:
    """`prefect server start` (API and UI) on a free port, once its API answers; RuntimeError
    with its log if it does not within `timeout` seconds. With `database` (a migrated SQLite
    database), the server starts on a copy of it instead of creating and migrating its own."""
    server = Cluster(root, **env)
    if database is not None:
        home = Path(server.env["PREFECT_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        copy_database(database, home / "prefect.db")  # where `prefect server start` looks
    port = server.api_url.split(":")[2].split("/")[0]
    server.start("server", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the Prefect server did not start in {timeout:.0f} s\n{server.logs()}")


@pytest.fixture(scope="module")
def prefect_server_process(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Path
) -> Iterator[Cluster]:
    """One `prefect server start` for a test file's tests."""
    try:
        server = start_prefect_server(
            tmp_path_factory.mktemp("prefect-server"), database=prefect_database
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
