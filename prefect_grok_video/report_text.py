"""The account printed after a run: a table of rows, the counts, where the videos are, and what
to do about each kind of failure."""

from __future__ import annotations

import os
from typing import Any

from prefect_grok_video import display
from prefect_grok_video.report import ITEM_STATUSES, NEXT_STEPS, PAID_BY

__all__ = ["format_report"]


#: Above this many rows the table lists only the rows that did not succeed.
_FULL_TABLE_ROWS = 50
_TABLE_COLUMNS = ("id", "status", "paid", "request_id", "output", "error")


def _shown_output(path: str | None, root: str) -> str:
    if not path:
        return "-"
    prefix = root.rstrip("/\\") + ("/" if "://" in root else os.sep)
    return path[len(prefix) :] if path.startswith(prefix) else path


def _error_cell(item: Any) -> str:
    """The error of a row, its code left out where the status already says it."""
    if item.error is None:
        return ""
    code, message = item.error.code, item.error.message
    shown = message if code in (item.status, "invalid_input") else f"{code}: {message}"
    return display.shown(shown, 120)


def format_report(report: Any, *, full_table_rows: int = _FULL_TABLE_ROWS) -> list[str]:
    """The lines printed after a run: rows, summary, where the videos are, what to do next."""
    items = report.items
    shown = items if len(items) <= full_table_rows else [
        item for item in items if item.status != "succeeded"
    ]  # fmt: skip
    rows = [
        (
            display.shown(item.id, 32),
            item.status,
            PAID_BY[item.paid_by_this_run] or "-",
            item.request_id or "-",
            _shown_output(item.output, report.output),
            _error_cell(item),
        )
        for item in shown
    ]
    lines: list[str] = []
    if rows:
        widths = [max(len(row[i]) for row in [_TABLE_COLUMNS, *rows]) for i in range(5)]
        for row in [_TABLE_COLUMNS, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
            cells.append(row[5])
            lines.append("  ".join(cells).rstrip())
    hidden = len(items) - len(shown)
    if hidden:
        lines.append(f"({hidden} succeeded rows not listed; --report FILE lists every row)")
    if lines:
        lines.append("")
    summary = f"{report.summary_line()} in {report.elapsed_seconds:.1f} s"
    lines.append(summary)
    cost = report.cost_line()
    if cost is not None:
        if len(report.cost_by_action) > 1:
            parts = ", ".join(f"{a} ${usd:.2f}" for a, usd in report.cost_by_action.items())
            cost += f"; by action: {parts}"
        lines.append(f"Cost: {cost}")
    if report.stopped_by:
        lines.append(f"Stopped submitting: {report.stopped_by}")
    if report.totals["succeeded"]:
        lines.append(f"Videos: {report.output}")
    for status in ITEM_STATUSES:
        count = report.totals[status]
        if status != "succeeded" and count:
            lines.append(f"  {status} ({count}): {NEXT_STEPS[status]}")
    return lines
