"""The terminal side of `grok-video run` and `demo`: Prefect's console logging made readable,
a progress bar (or a line per row) while a run goes, and where to see the run afterwards.

Prefect is imported inside the functions, so that importing this module stays light.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

__all__ = ["prepare_prefect", "progress_listener", "progress_mode", "ui_hint"]


#: Console level of Prefect's log handler during `run` and `demo` (see `prepare_prefect`).
_CONSOLE_LEVEL_VARIABLE = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"


def prepare_prefect() -> None:
    """Settings that must be in place before Prefect is imported: no analytics, a quiet console."""
    # Prefect logs every task run at INFO ("Finished in state Completed()"), three task runs
    # per row, plus the client's lines: a console nobody can read. Prefect 3 lets the
    # environment override any key of its logging config (PREFECT_LOGGING_[PATH]_[TO]_[KEY],
    # see prefect/logging/logging.yml), so PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=WARNING
    # raises the level of the *console* handler only: the loggers keep their levels and the
    # API handler still sends every record to the Prefect server, so the UI has all the logs.
    # (A filter on the console handler dropping task-run INFO was the alternative; it would
    # leave the client's per-row INFO lines, which are logged on the flow run.) Warnings and
    # errors (an invalid row, a moderated video, a resubmission) still reach the console;
    # progress comes from our bar or lines instead. A value the user set wins (INFO shows
    # everything again). It is set in this process's environment only, never the user's shell.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its temporary server 20 s to start. The first one on a machine creates
    # its database, which took 16-20 s on an idle 2-core machine (benchmarks/RESULTS.md) and
    # longer under load: the first `grok-video demo` must not fail for want of patience.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    user_level = os.environ.get(_CONSOLE_LEVEL_VARIABLE)
    os.environ.setdefault(_CONSOLE_LEVEL_VARIABLE, "WARNING")
    if user_level is None and "prefect" in sys.modules:  # logging is already set up (main()
        for handler in _prefect_console_handlers():  # called in-process): apply it directly
            handler.setLevel(logging.WARNING)


def _prefect_console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers, wherever the logging config attached them."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]  # fmt: skip
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                found[id(handler)] = handler
    return list(found.values())


class _PrintAbove:
    """Stands in for a Prefect console handler's rich Console while a progress bar is live."""

    # Prefect's handler writes to the real stderr, which would draw through the bar (rich
    # unwraps its own stderr proxy): render each record with the handler's console (keeping its
    # colours), then print that through the bar's console, which puts it above the bar.

    def __init__(self, original: Any, live_console: Any) -> None:
        self._original = original
        self._live_console = live_console

    def print(self, *objects: Any, **options: Any) -> None:
        from rich.text import Text

        with self._original.capture() as captured:
            self._original.print(*objects, **options)
        text = Text.from_ansi(captured.get().rstrip("\n"))
        self._live_console.print(text, soft_wrap=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


@contextlib.contextmanager
def _logs_above(progress: Any) -> Iterator[None]:
    """While a progress bar is live, print Prefect's console logs above it, not through it."""
    handlers = [h for h in _prefect_console_handlers() if hasattr(h, "console")]
    saved = [(handler, handler.console) for handler in handlers]
    for handler, console in saved:
        handler.console = _PrintAbove(console, progress.console)
    try:
        yield
    finally:
        for handler, console in saved:
            handler.console = console


class _LineProgress:
    """Progress as one line per finished row (no terminal, or the bar is not wanted)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def started(self, total: int) -> None:
        self.total = total
        print(f"Run started: {total} row{'s' * (total != 1)}", flush=True)

    def finished(self, item: Any) -> None:
        self.done += 1
        error = item.error.code if item.error else None
        code = f" ({error})" if error and error not in (item.status, "invalid_input") else ""
        print(f"[{self.done}/{self.total}] {item.id}: {item.status}{code}", flush=True)


class _BarProgress:
    """Progress as a rich bar with counts by outcome, drawn on the terminal."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.counts: Counter[str] = Counter()
        self.task = progress.add_task("starting Prefect", total=None, outcomes="")

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total, description="running")

    def finished(self, item: Any) -> None:
        from prefect_grok_video.report import ITEM_STATUSES

        self.counts[item.status] += 1
        counts = [(status, self.counts[status]) for status in ITEM_STATUSES]
        outcomes = ", ".join(f"{n} {status}" for status, n in counts if n)
        self.progress.update(self.task, advance=1, outcomes=outcomes)


@contextlib.contextmanager
def progress_listener(mode: str) -> Iterator[Any]:
    """A `RunListener` for `mode` ("bar", "lines" or "none"), live for the duration."""
    if mode == "none":
        yield None
        return
    if mode == "lines":
        yield _LineProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[outcomes]}"),
    )
    with progress, _logs_above(progress):
        yield _BarProgress(progress)


def progress_mode(no_progress: bool) -> str:
    if no_progress:
        return "none"
    return "bar" if sys.stdout.isatty() else "lines"


def ui_hint(flow_run_id: str | None) -> list[str]:
    """Where to see the run in the Prefect UI, accurately for this process's settings."""
    # With no PREFECT_API_URL, Prefect 3.9 runs flows against a temporary server it starts as
    # a subprocess with this process's settings (SubprocessASGIServer); that server uses
    # PREFECT_API_DATABASE_CONNECTION_URL, by default sqlite $PREFECT_HOME/prefect.db
    # (settings/models/_defaults.py), the same database `prefect server start` serves with
    # the same settings, so the run stays browsable there after this command exits.
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    page = f"runs/flow-run/{flow_run_id}" if flow_run_id else "runs"
    if settings.api.url:
        if not settings.ui_url:
            return [f"The run is recorded on the Prefect API at {settings.api.url}."]
        return [f"See the run in the Prefect UI: {settings.ui_url.rstrip('/')}/{page}"]
    database = settings.server.database.connection_url
    url = database.get_secret_value() if database is not None else ""
    where = "the database PREFECT_API_DATABASE_CONNECTION_URL names"
    if url.startswith("sqlite") and ":///" in url:
        where = f"Prefect's local database ({url.split(':///', 1)[1]})"
    home = " with the same PREFECT_HOME" if "PREFECT_HOME" in os.environ else ""
    host, port = settings.server.api.host, settings.server.api.port
    return [
        f"The run was recorded by a temporary Prefect server in {where}.",
        f"To see it in the Prefect UI: run `prefect server start`{home}, then open "
        f"http://{host}:{port}/{page}",
    ]
