"""Fewer log lines shipped to the Prefect server per row: the task engine's routine
"Finished in state Completed()" of this package's own task runs is dropped while a run goes.

A row is two task runs, and each such line is a row the server stores (benchmarks/NOTES.md);
the state it repeats is in the UI anyway. Failures, retries and every other line stay.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

__all__ = ["routine_task_ends_dropped"]


class _RoutineTaskEnds(logging.Filter):
    """Drops the INFO line a task run of one of `names` ends with."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and getattr(record, "task_name", None) in self.names
            and record.getMessage().startswith("Finished in state ")
        )


@contextlib.contextmanager
def routine_task_ends_dropped(task_names: Iterable[str]) -> Iterator[None]:
    """While in the block, the task runs of `task_names` end without their routine line."""
    logger = logging.getLogger("prefect.task_runs")
    dropped = _RoutineTaskEnds(task_names)
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)
