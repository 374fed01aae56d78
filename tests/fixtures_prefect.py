"""The Prefect test harness: one temporary Prefect server (SQLite in a temp dir) per session.

- `prefect_database` (session): a migrated Prefect database, made once for all xdist workers;
  `copy_database(template, path)` gives a server its own copy (no migrations at its start).
- `prefect_harness` (session): starts it; `PREFECT_HOME` and result storage are isolated.
- `prefect_api` (per test): the harness's API URL, with Prefect's background log and event
  workers drained after the test.
- `prefect_server` (per test): the same, with the shared submit limit removed first; give it
  to subprocesses as `PREFECT_API_URL`.
"""

from __future__ import annotations

import fcntl
import inspect
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fixtures_cli import cli_environment


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect database with every migration applied, made once for the whole test run
    (xdist workers share it): migrating a new database costs a server ~10 s of CPU at start."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    template = shared / "prefect-migrated.db"
    with open(shared / "prefect-migrated.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker migrates; the others wait for it
        if not template.exists():
            building = shared / "prefect-migrating.db"
            env = cli_environment(
                shared / "prefect-migrating-home",
                PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{building}",
            )
            done = subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, f"migrating a Prefect database: {done.stderr}"
            building.rename(template)
    return template


def copy_database(template: Path, path: Path) -> Path:
    """A copy of the SQLite database `template` at `path` (SQLite's backup: consistent)."""
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
    return path


@pytest.fixture(scope="session")
def prefect_harness(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Path
) -> Iterator[str]:
    """A temporary Prefect server (SQLite in a temp dir) for the session; yields its API URL.

    `PREFECT_HOME` and `PREFECT_RESULTS_LOCAL_STORAGE_PATH` point into a temp dir (the harness
    does not isolate result storage) and analytics are off, both in this process's Prefect
    settings and in the environment that subprocesses (the server, the CLI) inherit. The
    server's database starts as a copy of `prefect_database`.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    results = home / "results"

    def seeded_folder(*args: Any, **kwargs: Any) -> str:
        """The harness's temp folder, with the migrated database where it will look for one
        (if a later Prefect names it otherwise, the harness just migrates its own)."""
        folder = tempfile.mkdtemp(*args, **kwargs)
        copy_database(prefect_database, Path(folder) / "prefect-test.db")
        return folder

    with pytest.MonkeyPatch.context() as env:
        env.setattr("prefect.testing.utilities.mkdtemp", seeded_folder)
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setenv("PREFECT_HOME", str(home))
        env.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(results))
        updates = {
            PREFECT_SERVER_ANALYTICS_ENABLED: False,
            PREFECT_HOME: home,
            PREFECT_RESULTS_LOCAL_STORAGE_PATH: results,
        }
        # 180 s: a loaded 2-core machine has been seen to take over 60 s to start it when it
        # created its database (every test of that worker then errored).
        with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=180):
            yield PREFECT_API_URL.value()


@pytest.fixture
def prefect_api(prefect_harness: str) -> Iterator[str]:
    """The harness's API URL for one test, after which Prefect's log and event workers are
    drained, so no background request to the server outlives the test (a later test's respx
    mock would catch it)."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    yield prefect_harness
    run_coro_as_sync(drain_prefect_workers())


async def drain_prefect_workers() -> None:
    """Wait until this process's logs and events have reached the Prefect server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        drained = APILogWorker.instance().drain()
        if inspect.isawaitable(drained):
            await drained
    except RuntimeError:  # the worker never started
        pass
    drained = EventsWorker.drain_all()
    if inspect.isawaitable(drained):
        await drained


async def report_of(state: Any) -> Any:
    """The `RunReport` of a finished `make_videos` run, whether it completed or failed."""
    from prefect_grok_video.errors import RunFailedError
    from prefect_grok_video.report import RunReport

    report = state.result(raise_on_failure=False)
    if inspect.isawaitable(report):
        report = await report
    if isinstance(report, RunFailedError):
        assert state.is_failed()
        report = report.result
    assert isinstance(report, RunReport), report
    return report


@pytest.fixture
async def prefect_server(prefect_api: str) -> str:
    """The harness's API URL, with the shared submit limit removed first, so that the test's
    runs (here or in subprocesses given `PREFECT_API_URL`) create it at their own rate.

    Subprocesses pointed at it skip starting a temporary server of their own (~10 s each)."""
    from prefect_grok_video.flows.engine.gate import DEFAULT_LIMIT_NAME

    await delete_limit(DEFAULT_LIMIT_NAME)
    return prefect_api


async def delete_limit(name: str) -> None:
    """Delete the global concurrency limit `name` from the current Prefect API, if there."""
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        with contextlib.suppress(ObjectNotFound):
            await client.delete_global_concurrency_limit_by_name(name)


def forget_submit_limit(api_url: str) -> None:
    """Delete the shared submit limit at `api_url`, from a test's own thread.

    A SIGKILLed run cannot give back the slots it held (up to 30 s' worth), so its rerun
    would first wait for them to decay; tests about kills call this between the two.
    """
    import time

    import httpx

    from prefect_grok_video.flows.engine.gate import DEFAULT_LIMIT_NAME

    url = f"{api_url}/v2/concurrency_limits/{DEFAULT_LIMIT_NAME}"
    for _ in range(100):  # a busy SQLite server answers 503 for a moment
        response = httpx.delete(url, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(0.1)
    assert response.status_code in (200, 204, 404), response.text
