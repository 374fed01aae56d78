"""What a run shows in the Prefect UI: a progress bar, a results table, a summary with a
contact sheet, and a page per video with its poster frames.

Every artifact has a stable key built from one prefix (default `grok-video`), so the UI keeps
their history across runs. None holds a secret or a data URL of an input: rows are described
by `ItemResult.source`, which summarises inline videos. The only `data:` URLs are the posters'
own small JPEGs, which Prefect's UI draws inline (a few KB each, a bounded number per run).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable
from uuid import UUID

from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from prefect_grok_video.logs import Logger
from prefect_grok_video.posters import Poster, PosterError, data_url, read_poster
from prefect_grok_video.report import ITEM_STATUSES, NEXT_STEPS, PAID_BY, ItemResult, RunReport

__all__ = [
    "CONTACT_SHEET_ROWS",
    "MAX_VIDEO_ARTIFACTS",
    "Background",
    "ContactSheet",
    "ProgressArtifact",
    "artifact_key",
    "publish_report",
    "publish_video",
    "summary",
]

#: Rows of failures listed by name in the summary; the table has them all.
_LISTED_FAILURES = 20
#: Succeeded rows that get an artifact of their own: past that, the results table (which has
#: every row's output) and the contact sheet are the place, and an artifact per row would cost
#: the server an artifact and two events per row (benchmarks/NOTES.md).
MAX_VIDEO_ARTIFACTS = 50
#: Videos drawn in the summary's contact sheet (about 3 KB each); past that, a count.
CONTACT_SHEET_ROWS = 48
#: Pictures per line of the contact sheet.
_SHEET_COLUMNS = 3


def artifact_key(prefix: str, *parts: str) -> str:
    """An artifact key (lowercase letters, digits, dashes) from a prefix and free-form parts."""
    raw = "-".join((prefix, *parts))
    key = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    if key != raw.lower() or len(key) > 80:
        # Characters were replaced: a short digest keeps two different ids from colliding.
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        key = f"{key[:70].rstrip('-')}-{digest}"
    return key


class Background:
    """Runs artifact calls beside the run, a few at a time, so that no row waits on the Prefect
    API (a busy server can take seconds to answer); `flush()` waits for all of them. A failed
    call is logged, never raised: an artifact is not worth failing a paid run for."""

    def __init__(self, logger: Logger, limit: int = 4) -> None:
        self._logger = logger
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, call: Awaitable[object]) -> None:
        """Start `call` in the background."""
        task = asyncio.ensure_future(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: Awaitable[object]) -> None:
        async with self._slots:
            try:
                await call
            except Exception as exc:
                self._logger.warning("Could not publish an artifact: %s", exc)

    async def flush(self) -> None:
        """Wait until every started call has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


class ContactSheet:
    """The summary's grid of videos: the middle frame, id and prompt of the first
    `CONTACT_SHEET_ROWS` succeeded rows, and how many more there were."""

    def __init__(self, limit: int = CONTACT_SHEET_ROWS) -> None:
        self.limit = limit
        self.entries: list[tuple[str, str, bytes]] = []
        self.more = 0

    def add(self, row_id: str, prompt: str | None, poster: Poster) -> None:
        """Draw `poster`'s middle frame for row `row_id` (or count it, past the limit)."""
        if len(self.entries) < self.limit:
            self.entries.append((row_id, prompt or "", poster.middle))
        else:
            self.more += 1

    @classmethod
    def of(cls, items: list[ItemResult], limit: int = CONTACT_SHEET_ROWS) -> ContactSheet:
        """The sheet of rows run elsewhere (a chunked run's chunks), from their poster files."""
        sheet = cls(limit)
        for item in items:
            if item.status != "succeeded" or not item.thumbnail:
                continue
            if len(sheet.entries) >= limit:
                sheet.more += 1
                continue
            try:
                sheet.add(item.id, item.prompt, read_poster(item.thumbnail))
            except PosterError:
                continue
        return sheet

    def markdown(self) -> list[str]:
        """The grid as markdown lines (none when no video has a poster)."""
        if not self.entries:
            return []
        cells = [
            f'<img src="{data_url(jpeg)}" width="160" alt="{_cell(row_id)}"><br>'
            f"**{_cell(row_id)}**<br>{_cell(_short(prompt, 40))}"
            for row_id, prompt, jpeg in self.entries
        ]
        lines = ["", "## Contact sheet", "", "|" + " |" * _SHEET_COLUMNS,
                 "|" + "---|" * _SHEET_COLUMNS]  # fmt: skip
        for start in range(0, len(cells), _SHEET_COLUMNS):
            line = cells[start : start + _SHEET_COLUMNS]
            line += [""] * (_SHEET_COLUMNS - len(line))
            lines.append("| " + " | ".join(line) + " |")
        if self.more:
            lines.append(f"\n…and {self.more} more videos: every one is in the results table.")
        return lines


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class ProgressArtifact:
    """A progress artifact updated as rows finish, at most about once a second, in the
    background; `finish()` publishes the final figure."""

    def __init__(self, prefix: str, total: int, *, interval: float = 1.0) -> None:
        self.key = artifact_key(prefix, "progress")
        self.total = max(total, 1)
        self.interval = interval
        self._id: UUID | None = None
        self._done = 0
        self._last = 0.0
        self._sent: float | None = None
        self._pushing: asyncio.Task[None] | None = None

    async def start(self, description: str) -> None:
        """Create the artifact at 0 %."""
        self._id = await acreate_progress_artifact(0.0, key=self.key, description=description)
        self._sent = 0.0
        self._last = time.monotonic()

    @property
    def percent(self) -> float:
        return 100.0 * min(self._done, self.total) / self.total

    def advance(self, rows: int = 1) -> None:
        """Count `rows` more finished rows, and publish when due (one update at a time)."""
        self._done += rows
        now = time.monotonic()
        if self._id is None or self._pushing is not None or now - self._last < self.interval:
            return
        self._last = now
        self._pushing = asyncio.ensure_future(self._push())

    async def _push(self) -> None:
        try:
            value = self.percent
            assert self._id is not None
            await aupdate_progress_artifact(self._id, value)
            self._sent = value
        except Exception:  # the next update, or finish(), tries again
            pass
        finally:
            self._pushing = None

    async def finish(self) -> None:
        """Publish the final figure (after any update under way)."""
        if self._pushing is not None:
            await self._pushing
        if self._id is not None and self._sent != self.percent:
            await aupdate_progress_artifact(self._id, self.percent)
            self._sent = self.percent


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if text is not None else ""


def table_rows(report: RunReport) -> list[dict[str, object]]:
    """One row per item: id, action, status, request_id, upstream, duration, cost, who paid,
    output, error."""
    return [
        {
            "id": item.id,
            "row": item.row,
            "action": item.action or "",
            "status": item.status,
            "request_id": item.request_id or "",
            "upstream": item.upstream or "",
            "duration": item.duration,
            "cost_usd": item.cost_usd,
            "paid": PAID_BY[item.paid_by_this_run],
            "output": item.output or "",
            "error": item.error.message if item.error else "",
        }
        for item in report.items
    ]


def summary(report: RunReport, sheet: ContactSheet | None = None) -> str:
    """The run in markdown: counts, time, cost, where the videos are, what to do next, and
    the contact sheet."""
    totals = report.totals
    lines = [
        f"# Grok videos: {report.summary_line()}",
        "",
        "| status | rows |",
        "|---|---:|",
        *(f"| {status} | {totals[status]} |" for status in ITEM_STATUSES if totals[status]),
        "",
        f"- **Manifest:** `{_cell(report.manifest)}`",
        f"- **Videos:** `{_cell(report.output)}`",
        f"- **Elapsed:** {report.elapsed_seconds:.1f} s",
    ]
    if report.total_cost_usd is not None:
        by_action = ", ".join(f"{a} ${usd:.4f}" for a, usd in report.cost_by_action.items())
        lines.append(
            f"- **Cost reported by the service:** ${report.total_cost_usd:.4f} ({by_action})"
        )
        lines.append(f"- **Paid by this run:** ${report.cost_this_run_usd or 0:.4f}")
        if report.rows_paid_earlier:
            lines.append(
                f"- **Paid by earlier runs:** ${report.cost_earlier_runs_usd or 0:.4f} "
                f"({report.rows_paid_earlier} rows from the cache: not paid again)"
            )
    if report.stopped_by:
        lines.append(f"- **Stopped submitting:** {_cell(report.stopped_by)}")
    problems = [item for item in report.items if item.status != "succeeded"]
    if problems:
        lines += ["", "## What to do", ""]
        lines += [f"- **{status}**: {NEXT_STEPS[status]}." for status in ITEM_STATUSES
                  if status != "succeeded" and totals[status]]  # fmt: skip
        lines += ["", "| row | id | status | request_id | error |", "|---:|---|---|---|---|"]
        lines += [
            f"| {i.row} | {_cell(i.id)} | {i.status} | {i.request_id or ''} | "
            f"{_cell(i.error.message if i.error else '')} |"
            for i in problems[:_LISTED_FAILURES]
        ]
        if len(problems) > _LISTED_FAILURES:
            lines.append(f"\n…and {len(problems) - _LISTED_FAILURES} more in the results table.")
    if sheet is not None:
        lines += sheet.markdown()
    return "\n".join(lines)


async def publish_report(report: RunReport, prefix: str, sheet: ContactSheet | None = None) -> None:
    """Publish the results table and the markdown summary (with `sheet`, its contact sheet)."""
    await acreate_table_artifact(
        table_rows(report),
        key=artifact_key(prefix, "results"),
        description=f"Grok videos: {report.summary_line()}",
    )
    await acreate_markdown_artifact(
        summary(report, sheet),
        key=artifact_key(prefix, "summary"),
        description=report.summary_line(),
    )


def video_page(item: ItemResult, poster: Poster | None, *, remote_output: bool) -> str:
    """A succeeded row in markdown: its poster frames, where it is saved, its temporary URL
    (and when that expires), what it was asked and what it cost."""
    lines = [f"# {_cell(item.id)}: {item.action or 'video'} (row {item.row})", ""]
    if poster is not None:
        lines.append(" ".join(
            f'<img src="{data_url(jpeg)}" width="{poster.width}" alt="{which} frame">'
            for which, jpeg in zip(("first", "middle", "last"), poster.frames, strict=False)
        ))  # fmt: skip
    else:
        lines.append("_No preview: the video could not be decoded (the row still succeeded)._")
    lines += ["", "| | |", "|---|---|"]
    if item.output:
        saved = (
            f"[{_cell(item.output)}]({item.output})"
            if remote_output and item.output.startswith(("http://", "https://"))
            else f"`{_cell(item.output)}`"
        )
        lines.append(f"| saved to | {saved} |")
    if item.video_url:
        expires = (
            f" (expires {item.url_expires_at:%Y-%m-%d %H:%M} UTC)"
            if item.url_expires_at
            else " (expires 24 h after submission)"
        )
        lines.append(f"| temporary URL | [download]({item.video_url}){expires} |")
    if item.prompt:
        lines.append(f"| prompt | {_cell(item.prompt)} |")
    if item.video_seconds is not None:
        lines.append(f"| length | {item.video_seconds:.1f} s |")
    if item.cost_usd is not None:
        lines.append(f"| cost | ${item.cost_usd:.4f} |")
    lines.append(f"| request | `{item.request_id or ''}` |")
    return "\n".join(lines)


async def publish_video(item: ItemResult, prefix: str, *, poster: Poster | None,
                        remote_output: bool) -> None:  # fmt: skip
    """The row's own artifact: `video_page` under the key `<prefix>-video-<id>`."""
    await acreate_markdown_artifact(
        video_page(item, poster, remote_output=remote_output),
        key=artifact_key(prefix, "video", item.id),
        description=f"Row {item.row} ({item.id}), request {item.request_id}, saved to "
        f"{item.output}",
    )
