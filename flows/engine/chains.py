"""Rows whose video is another row's result (`video: @<id>`): the order rows start in, and how
a chained row learns its upstream's video.

A row's job, once it has ended (before its download), is told to the rows chained to it
(`tell_ended`), which wait for it without holding a place among `max_concurrency`. Only rows
something is chained to are awaited; the others cost nothing here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone

from prefect_grok_video.flows.engine.outcomes import (
    URL_LIFETIME,
    JobOutcome,
    invalid_result,
)
from prefect_grok_video.inputs import VideoInput, resolve_video
from prefect_grok_video.logs import Logger
from prefect_grok_video.manifest import InvalidRow, Manifest, ValidRow
from prefect_grok_video.report import ItemError, ItemResult

__all__ = ["URL_MARGIN", "Chains"]

#: A chained row sends its upstream's result URL while this much of its life is left, so that
#: the service can still fetch it when the job starts; later, the downloaded file.
URL_MARGIN = timedelta(hours=1)


class Chains:
    """The chains of one manifest: which row each `@<id>` names, and the ends of upstream
    rows' jobs and outcomes, for the rows that wait on them."""

    def __init__(self, manifest: Manifest, logger: Logger) -> None:
        self.logger = logger
        loop = asyncio.get_running_loop()
        #: The row an `@<id>` names: the first with that id (a later one is a duplicate).
        self._by_id: dict[str, ValidRow | InvalidRow] = {}
        #: By row number, for rows whose result is another row's video (the only ones
        #: awaited): how the row's job ended (before its download), and its outcome.
        self._ended: dict[int, asyncio.Future[JobOutcome]] = {}
        self._items: dict[int, asyncio.Future[ItemResult]] = {}
        for any_row in manifest.rows:
            self._by_id.setdefault(any_row.id, any_row)
        for row in manifest.valid:
            above = self._by_id.get(row.upstream or "")
            if above is None or above.row in self._ended:
                continue
            self._ended[above.row] = loop.create_future()
            self._items[above.row] = loop.create_future()
            if isinstance(above, InvalidRow):
                self._ended[above.row].set_result(JobOutcome("invalid", 0))
                self._items[above.row].set_result(invalid_result(above))

    def upstream_of(self, row: ValidRow) -> ValidRow | None:
        """The valid row whose result is `row`'s video, if any."""
        above = self._by_id.get(row.upstream or "")
        return above if isinstance(above, ValidRow) else None

    def upstreams_first(self, rows: Sequence[ValidRow]) -> Iterator[ValidRow]:
        """`rows` in manifest order, except that a row's upstream comes before it (a manifest
        may name a later row with `@<id>`): a row only ever waits for a row already under
        way."""
        taken: set[int] = set()
        valid = {row.row for row in rows}
        for row in rows:
            chain: list[ValidRow] = []
            above: ValidRow | InvalidRow | None = row
            while isinstance(above, ValidRow) and above.row in valid and above.row not in taken:
                chain.append(above)
                taken.add(above.row)
                above = self._by_id.get(above.upstream or "")
            yield from reversed(chain)

    def tell_ended(self, row: ValidRow, outcome: JobOutcome) -> None:
        """Tell the rows chained to `row` how its job ended (once; before its download)."""
        ended = self._ended.get(row.row)
        if ended is not None and not ended.done():
            ended.set_result(outcome)

    def tell_result(self, row: ValidRow, item: ItemResult) -> None:
        """Tell the rows chained to `row` its outcome (they need its file a day later)."""
        if row.row in self._items:
            self._items[row.row].set_result(item)

    async def video(self, row: ValidRow) -> tuple[VideoInput, str] | JobOutcome:
        """The video of a chained row, once its upstream's job has ended: the result's URL
        while it has `URL_MARGIN` left, else the downloaded file; with the fingerprint that
        names it in the cache key (the upstream's job). A `JobOutcome` when the row cannot
        run: its upstream did not succeed, or its result is too long or short for this row."""
        assert row.upstream is not None
        upstream = self._by_id[row.upstream]
        above = await self._ended[upstream.row]
        if above.status != "succeeded" or above.job is None or above.submission is None:
            return self._not_run(row, upstream.row, above.status)
        job, submission = above.job, above.submission
        assert job.video is not None
        if submission.submitted_at + URL_LIFETIME - datetime.now(timezone.utc) >= URL_MARGIN:
            video = VideoInput("url", job.video.url)
        else:  # a rerun a day later: the URL is gone, the downloaded file is not
            item = await self._items[upstream.row]
            if item.status != "succeeded" or item.output is None:
                return self._not_run(row, upstream.row, item.status)
            video = resolve_video(item.output)
        bounds = row.request().limits.input_seconds
        seconds = job.video.duration
        if bounds is not None and seconds is not None and not bounds[0] <= seconds <= bounds[1]:
            message = (
                f"row {row.row} (id {row.id!r}): video: the result of @{row.upstream} is "
                f"{seconds:g} s long; {row.action} accepts {bounds[0]:g} to {bounds[1]:g} s: "
                "shorten the durations along the chain"
            )
            self.logger.warning("Invalid, not submitted: %s", message)
            return JobOutcome("invalid", 0, error=ItemError(
                code="invalid_input", message=message, field="video"))  # fmt: skip
        return video, f"job:{submission.request_id}"

    def _not_run(self, row: ValidRow, upstream_row: int, status: str) -> JobOutcome:
        """The outcome of a row whose upstream did not succeed: nothing is paid for it."""
        message = (
            f"its video is the result of row {upstream_row} (id {row.upstream!r}), which ended "
            f"{status}: not submitted, nothing paid"
        )
        self.logger.warning("Row %s: %s", row.id, message)
        outcome = JobOutcome(
            "upstream_failed", 0, error=ItemError(code="upstream_failed", message=message)
        )
        self.tell_ended(row, outcome)
        return outcome
