"""Every row of a run, top to bottom: its chain's upstream video (if any), its job (shared by
rows that are the same job), its download and poster, and its outcome told to the report, the
UI and the rows chained to it.

At most `max_concurrency` jobs are in flight, and at most twice that many rows are under way (a
row waiting for its upstream counts), so a run's memory follows the rows in flight rather than
the manifest's length. A row never raises: whatever happens to it ends as its `ItemResult`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import anyio
from prefect import get_run_logger
from prefect.runtime import flow_run
from pydantic import TypeAdapter

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.errors import GrokVideoError
from prefect_grok_video.flows.engine.artifacts import (
    MAX_VIDEO_ARTIFACTS,
    Background,
    ContactSheet,
    ProgressArtifact,
    publish_video,
)
from prefect_grok_video.flows.engine.budget import Budget
from prefect_grok_video.flows.engine.chains import Chains
from prefect_grok_video.flows.engine.events import emit_row_event
from prefect_grok_video.flows.engine.gate import SubmitGate
from prefect_grok_video.flows.engine.jobs import JobRunner
from prefect_grok_video.flows.engine.listener import run_listener
from prefect_grok_video.flows.engine.options import RunOptions
from prefect_grok_video.flows.engine.outcomes import JobOutcome, error_of, item_result
from prefect_grok_video.inputs import VideoInput
from prefect_grok_video.manifest import Manifest, ValidRow
from prefect_grok_video.models import DownloadResult
from prefect_grok_video.outputs import OutputFolder
from prefect_grok_video.posters import Poster, make_poster
from prefect_grok_video.report import ItemResult

__all__ = ["RowScheduler"]

#: A finished row's result to and from JSON (`run_rows`).
_ITEM_JSON = TypeAdapter(ItemResult)


class RowScheduler:
    """Takes one run's valid rows to their outcomes; its collaborators are the rows' chains
    (`Chains`) and their jobs (`JobRunner`)."""

    def __init__(
        self,
        options: RunOptions,
        *,
        credentials: GrokVideoCredentials,
        gate: SubmitGate,
        manifest: Manifest,
        progress: ProgressArtifact,
        budget: Budget | None = None,
    ) -> None:
        self.options = options
        self.output = OutputFolder.parse(options.output)
        self.slots = asyncio.Semaphore(options.max_concurrency)
        self.progress = progress
        self.flow_run_id = str(flow_run.get_id()) if flow_run.get_id() else None
        self.logger = get_run_logger()
        self.background = Background(self.logger)
        self.chains = Chains(manifest, self.logger)
        self.jobs = JobRunner(
            options, credentials=credentials, gate=gate, manifest=manifest, chains=self.chains,
            output=self.output, background=self.background, logger=self.logger,
            flow_run_id=self.flow_run_id, budget=budget,
        )  # fmt: skip
        #: Video artifacts published (one per succeeded row, up to MAX_VIDEO_ARTIFACTS).
        self._links = 0
        #: The contact sheet's entries: the first CONTACT_SHEET_ROWS succeeded rows' middle
        #: frames (a few KB each); past that, a count.
        self.contact_sheet = ContactSheet()
        #: Posters are decoded in threads, two at a time: a run's loop never waits on them.
        self._poster_threads = anyio.CapacityLimiter(2)
        #: Posters of rows whose video artifact is still to be published.
        self._posters: dict[int, Poster] = {}

    async def run_rows(self, rows: Sequence[ValidRow]) -> list[ItemResult]:
        """Take every row to its outcome, each upstream row before the rows chained to it.

        At most `2 x max_concurrency` rows are under way at once (a row waiting for its
        upstream counts): a run's memory follows the rows in flight, not the manifest's length.
        A finished row's result is kept as its JSON (one block of memory, half the size) until
        all are done: thousands of small objects made among each row's passing ones would
        keep the memory those used from being given back.
        """
        window = asyncio.Semaphore(2 * self.options.max_concurrency)
        results: list[bytes] = []
        going: set[asyncio.Task[None]] = set()

        async def one(row: ValidRow) -> None:
            try:
                results.append(_ITEM_JSON.dump_json(await self.item(row)))
            finally:
                window.release()

        try:
            for row in self.chains.upstreams_first(rows):
                await window.acquire()
                task = asyncio.ensure_future(one(row))
                going.add(task)
                task.add_done_callback(going.discard)
            while going:
                await asyncio.wait(set(going))
        except BaseException:  # a crash or a cancel (Ctrl-C, a worker told to stop)
            for task in going:
                task.cancel()
            await asyncio.gather(*going, return_exceptions=True)
            raise
        # Each result's JSON is let go as it is read back: the two never all coexist.
        return [ItemResult.model_validate_json(results.pop()) for _ in range(len(results))]

    async def stop(self) -> None:
        """Wind down a run that failed or was cancelled without paying twice later (see
        `JobRunner.stop`)."""
        await self.jobs.stop()

    async def item(self, row: ValidRow) -> ItemResult:
        """Take one valid row to its outcome; never raises, so one row cannot stop the others."""
        try:
            item = await self._item(row)
        except Exception as exc:  # an unexpected failure still ends as this row's outcome
            self.logger.exception("Row %s failed unexpectedly", row.id)
            item = self._result(row, JobOutcome("failed", 0, error=error_of(exc, "error")))
        finally:
            self.chains.tell_ended(row, JobOutcome("failed", 0))  # if told nothing: none waits
            self.jobs.row_done(row)
        self.chains.tell_result(row, item)
        if not self.jobs.known(row):
            emit_row_event(item, self.flow_run_id)
        self.progress.advance()
        if item.status == "succeeded":
            # Debug: the results table, the row's event and its asset say it already, and
            # every line shipped to the Prefect server costs it a row per manifest row.
            self.logger.debug(
                "Row %s: succeeded (request %s, %s bytes, %s)",
                item.id, item.request_id, item.size, item.output,
            )  # fmt: skip
            self._links += 1
            if self._links <= MAX_VIDEO_ARTIFACTS:
                self.background.submit(publish_video(
                    item, self.options.artifact_prefix, poster=self._posters.get(row.row),
                    remote_output=self.output.remote,
                ))  # fmt: skip
        self._posters.pop(row.row, None)
        listener = run_listener.get()
        if listener is not None:
            listener.finished(item)
        return item

    async def _item(self, row: ValidRow) -> ItemResult:
        video: VideoInput | None = None
        fingerprint = row.fingerprint
        if row.upstream is not None:
            chained = await self.chains.video(row)
            if isinstance(chained, JobOutcome):  # it cannot run: nothing is paid for it
                self.jobs.settle(row.identity)
                return self._result(row, chained)
            video, fingerprint = chained
        download = await self._outcome(row, video, fingerprint)
        if isinstance(download, ItemResult):
            return download
        outcome, saved = download
        poster = await self._poster(row, saved)
        return self._result(row, outcome, saved, thumbnail=poster.path if poster else None)

    async def _outcome(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None
    ) -> ItemResult | tuple[JobOutcome, DownloadResult]:
        """The row's job run (or shared) and its video downloaded; an `ItemResult` when the
        row ends without a video."""
        async with self.slots:
            outcome = await self.jobs.outcome(row, video, fingerprint)
            self.chains.tell_ended(row, outcome)
            if outcome.status != "succeeded":
                return self._result(row, outcome)
            try:
                download = await self.jobs.downloaded(row, outcome)
            except GrokVideoError as exc:
                self.logger.error("Row %s: %s", row.id, exc)
                failed = replace(outcome, status="failed", error=error_of(exc, "download"))
                return self._result(row, failed)
        return outcome, download

    async def _poster(self, row: ValidRow, download: DownloadResult) -> Poster | None:
        """The row's poster frames, beside its video; None (and a warning) when the video does
        not decode: a row never fails for its preview."""
        target = self.output.destination(f"{row.id}.jpg")
        try:
            poster = await anyio.to_thread.run_sync(
                make_poster, download.path, target, limiter=self._poster_threads
            )
        except Exception as exc:  # PosterError, or the storage refusing the file
            self.logger.warning("Row %s: no preview: %s (the row succeeded)", row.id, exc)
            return None
        if self._links < MAX_VIDEO_ARTIFACTS:
            self._posters[row.row] = poster
        self.contact_sheet.add(row.id, row.prompt, poster)
        return poster

    def _result(
        self,
        row: ValidRow,
        outcome: JobOutcome,
        download: DownloadResult | None = None,
        *,
        thumbnail: str | None = None,
    ) -> ItemResult:
        return item_result(
            row, outcome, download, thumbnail=thumbnail, flow_run_id=self.flow_run_id
        )
