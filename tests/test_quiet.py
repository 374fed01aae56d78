"""flows/engine/quiet.py: the routine end line of this package's task runs is not shipped;
every other line of theirs, and every line of other task runs, still is."""

from __future__ import annotations

import logging

import pytest

from prefect_grok_video.flows.engine.quiet import routine_task_ends_dropped


@pytest.fixture
def shipped() -> list[logging.LogRecord]:
    """The records that reach the handlers of `prefect.task_runs` (as Prefect's API handler)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("prefect.task_runs")
    saved = logger.handlers, logger.level, logger.propagate
    logger.handlers, logger.level, logger.propagate = [Keep()], logging.DEBUG, False
    yield records
    logger.handlers, logger.level, logger.propagate = saved


def _log(task_name: str, level: int, message: str) -> None:
    logging.getLogger("prefect.task_runs").log(level, message, extra={"task_name": task_name})


def test_only_the_routine_end_of_our_task_runs_is_dropped(shipped):
    with routine_task_ends_dropped(["finish-video"]):
        _log("finish-video", logging.INFO, "Finished in state Completed()")  # dropped
        _log("finish-video", logging.ERROR, "Finished in state Failed('boom')")
        _log("finish-video", logging.INFO, "Downloading r1")
        _log("someone-elses-task", logging.INFO, "Finished in state Completed()")
    _log("finish-video", logging.INFO, "Finished in state Completed()")  # after the block
    assert [(r.task_name, r.getMessage()) for r in shipped] == [
        ("finish-video", "Finished in state Failed('boom')"),
        ("finish-video", "Downloading r1"),
        ("someone-elses-task", "Finished in state Completed()"),
        ("finish-video", "Finished in state Completed()"),
    ]
