"""Forgetting what Prefect keeps in memory of task runs a run is done with.

For the whole of a flow run, Prefect's `FlowRunContext` keeps a copy of every task run's final
state for each object its result holds (`run_results`: how it draws the data dependencies
between task runs) and the assets of every materializing task run (`task_run_assets`). A row of
a manifest is two task runs, and measured at 1,000 to 3,000 rows this was most of the run's
growth in memory per row (about 15 KB of 19 KB), kept until the run ends although nothing reads
it once the row has its outcome. `TaskRunMemory.forget` drops a finished row's entries, so a
run's memory follows the rows in flight, not the rows done.

Prefect documents neither field: this module is the one place that touches them, and
tests/test_task_run_memory.py fails when Prefect changes their shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from prefect.context import FlowRunContext

__all__ = ["TaskRunMemory"]

#: Task runs forgotten between two sweeps of `run_results` (a sweep reads every entry, so it
#: is done for a batch at a time; entries stay bounded by the rows in flight plus a batch).
SWEEP_BATCH = 256


class TaskRunMemory:
    """What the current flow run's context remembers of task runs, and a way to forget it."""

    def __init__(self, context: FlowRunContext | None = None, *, batch: int = SWEEP_BATCH) -> None:
        self._context = context if context is not None else FlowRunContext.get()
        self._batch = batch
        self._pending: set[UUID] = set()

    def forget(self, task_run_ids: Iterable[UUID]) -> None:
        """Drop what the flow run keeps of these (finished) task runs: their assets at once,
        their results with the next sweep."""
        context = self._context
        if context is None:  # not in a flow run: nothing is kept
            return
        for task_run_id in task_run_ids:
            context.task_run_assets.pop(task_run_id, None)
            self._pending.add(task_run_id)
        if len(self._pending) >= self._batch:
            self.sweep()

    def sweep(self) -> None:
        """Drop the kept results of every task run forgotten since the last sweep."""
        context = self._context
        if context is None or not self._pending:
            return
        results = context.run_results
        stale = [key for key, entry in results.items()
                 if entry[0].state_details.task_run_id in self._pending]  # fmt: skip
        for key in stale:
            del results[key]
        self._pending.clear()
