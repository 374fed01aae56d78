"""A run's progress told to code in the same process (the command line draws its bar)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from prefect_grok_video.report import ItemResult

__all__ = ["RunListener", "run_listener"]


class RunListener(Protocol):
    """Told about a run's progress in this process (the command line draws its progress bar)."""

    def started(self, total: int) -> None: ...

    def finished(self, item: ItemResult) -> None: ...


#: The listener of runs started in this context, if any.
run_listener: ContextVar[RunListener | None] = ContextVar("grok_video_listener", default=None)
