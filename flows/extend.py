"""The manifest flow, `make_videos` (generations, edits and extensions), and the run of rows
under it that the one-video flows (`flows/single.py`) share.

A run validates every row first (nothing is paid for an invalid row), then takes the valid rows
concurrently on one event loop: each row is submitted (at most `submit_rate` per second, across
runs too), waited for, resubmitted after a transient failure, and downloaded. At most
`max_concurrency` jobs are in flight. Rows that describe the very same job (same video content,
prompt, duration and model) share one paid submission. The run ends only when every row has its
outcome and the report and artifacts are published.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar, cast
from uuid import UUID

import anyio
from prefect import State, Task, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed
from pydantic import Field, TypeAdapter

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.errors import (
    RETRYABLE_JOB_ERROR_CODES,
    DownloadError,
    GrokVideoError,
    JobFailedError,
    PollTimeoutError,
    RunFailedError,
)
from prefect_grok_video.flows.artifacts import (
    MAX_VIDEO_ARTIFACTS,
    Background,
    ContactSheet,
    ProgressArtifact,
    publish_report,
    publish_video,
)
from prefect_grok_video.flows.assets import input_asset_keys, row_metadata, video_asset
from prefect_grok_video.flows.budget import (
    Budget,
    BudgetExceededError,
    LocalBudget,
    SharedBudget,
    run_budget,
)
from prefect_grok_video.flows.chunks import ROWS_PATTERN, parse_rows, plan_chunks, run_in_chunks
from prefect_grok_video.flows.dispatch import sync_callable
from prefect_grok_video.flows.events import emit_row_event, emit_run_event
from prefect_grok_video.flows.gallery import publish_gallery
from prefect_grok_video.flows.gate import DEFAULT_LIMIT_NAME, SubmitGate
from prefect_grok_video.flows.options import DEFAULT_OUTPUT, RunOptions
from prefect_grok_video.flows.quiet import routine_task_ends_dropped
from prefect_grok_video.flows.results import RESULT_SERIALIZER
from prefect_grok_video.flows.supervision import SupervisionSettings
from prefect_grok_video.flows.task_run_memory import TaskRunMemory
from prefect_grok_video.flows.tasks import (
    SUBMIT_TASKS,
    Finished,
    Submission,
    finish_video,
    job_key,
    materializing_finish,
    shared_client,
)
from prefect_grok_video.inputs import VideoInput, resolve_video
from prefect_grok_video.logs import Logger
from prefect_grok_video.manifest import InvalidRow, Manifest, ManifestRow, ValidRow, load_manifest
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.outputs import OutputFolder, intact
from prefect_grok_video.posters import Poster, make_poster
from prefect_grok_video.pricing import PriceList
from prefect_grok_video.report import ItemError, ItemResult, ItemStatus, RunReport
from prefect_grok_video.settings import DEFAULT_MAX_CONCURRENCY

__all__ = ["DEFAULT_OUTPUT", "RunListener", "make_videos", "run_listener"]

#: How long a result URL stays valid after the job was submitted (API.md: 24 hours).
URL_LIFETIME = timedelta(hours=24)
#: A chained row sends its upstream's result URL while this much of its life is left, so that
#: the service can still fetch it when the job starts; later, the downloaded file.
URL_MARGIN = timedelta(hours=1)
#: Seconds of submissions, at the run's rate, whose submit task runs may be under way at once.
SUBMIT_LOOKAHEAD = 2.0


class RunListener(Protocol):
    """Told about a run's progress in this process (the command line draws its progress bar)."""

    def started(self, total: int) -> None: ...

    def finished(self, item: ItemResult) -> None: ...


#: The listener of runs started in this context, if any.
run_listener: ContextVar[RunListener | None] = ContextVar("grok_video_listener", default=None)


@dataclass(frozen=True)
class _JobOutcome:
    """How a job (with its resubmissions) ended, and the video it was downloaded as."""

    status: ItemStatus
    attempts: int
    submission: Submission | None = None
    job: VideoJob | None = None
    error: ItemError | None = None
    #: The download of the row the job was run for (rows that are the same job download
    #: their own copies).
    download: DownloadResult | None = None
    row: int | None = None


@task(name="validate-manifest", cache_policy=NO_CACHE)
async def validate_manifest(
    manifest: str | Sequence[ManifestRow | Mapping[str, Any]],
    default_model: str,
    max_upload_bytes: int,
    rows: Collection[int] | None = None,
) -> Manifest:
    """Read and check every row (files are read in threads), before anything is paid for."""
    check = partial(
        load_manifest,
        manifest,
        default_model=default_model,
        rows=rows,
        max_upload_bytes=max_upload_bytes,
    )
    return await anyio.to_thread.run_sync(check)


def _error(exc: BaseException, code: str | None = None) -> ItemError:
    return ItemError(code=code or getattr(exc, "code", None) or type(exc).__name__,
                     message=str(exc))  # fmt: skip


class _Run:
    """One run's shared state: its options, the output folder, and the jobs shared by rows.

    Each row's job, once it has ended, is told to the rows whose video is its result
    (`video: @<id>`), which wait for it without holding a place among `max_concurrency`.
    """

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
        self.budget = budget
        self.prices = PriceList.with_overrides(options.prices)
        self.credentials = credentials
        self.output = OutputFolder.parse(options.output)
        self.submit_tasks = {
            action: submit.with_options(refresh_cache=True) if options.refresh else submit
            for action, submit in SUBMIT_TASKS.items()
        }
        self.gate = gate
        self.slots = asyncio.Semaphore(options.max_concurrency)
        # Jobs not submitted yet: when none is left, the gate gives back the global slots it
        # holds, so other runs need not wait for them to decay while this one waits for jobs.
        self._unsubmitted = {row.identity for row in manifest.valid}
        # Submit task runs under way at once: a few seconds' worth of submissions. Starting a
        # Prefect task run costs milliseconds of this loop; starting every row's at the outset
        # would hold the first submission back until all had started (measured: 6 s for 400).
        # The first starts alone and each submission opens two more places, up to the lookahead,
        # so the first submission does not wait for the next ones' starts either.
        self.submit_slots = asyncio.Semaphore(1)
        self._closed_submit_slots = max(8, math.ceil(options.submit_rate * SUBMIT_LOOKAHEAD)) - 1
        self.progress = progress
        self.flow_run_id = str(flow_run.get_id()) if flow_run.get_id() else None
        self.logger = get_run_logger()
        self.background = Background(self.logger)
        self._jobs: dict[tuple[object, ...], asyncio.Task[_JobOutcome]] = {}
        self._submitting: set[asyncio.Task[Any] | None] = set()
        loop = asyncio.get_running_loop()
        #: The row an `@<id>` names: the first with that id (a later one is a duplicate).
        self._by_id: dict[str, ValidRow | InvalidRow] = {}
        #: By row number, for rows whose result is another row's video (the only ones
        #: awaited): how the row's job ended (before its download), and its outcome.
        self._ended: dict[int, asyncio.Future[_JobOutcome]] = {}
        self._items: dict[int, asyncio.Future[ItemResult]] = {}
        #: Video artifacts published (one per succeeded row, up to MAX_VIDEO_ARTIFACTS).
        self._links = 0
        #: The contact sheet's entries: the first CONTACT_SHEET_ROWS succeeded rows' middle
        #: frames (a few KB each); past that, a count.
        self.contact_sheet = ContactSheet()
        #: Posters are decoded in threads, two at a time: a run's loop never waits on them.
        self._poster_threads = anyio.CapacityLimiter(2)
        #: Posters of rows whose video artifact is still to be published.
        self._posters: dict[int, Poster] = {}
        #: Rows whose outcome an earlier run already saw (and announced).
        self._known: set[int] = set()
        #: The task runs of each row still going; forgotten by Prefect's context when it ends.
        self._task_runs: dict[int, list[UUID]] = {}
        self._memory = TaskRunMemory()
        #: The rows that are each job (rows that are the very same job share it), while any
        #: of them is still going; then the job and its rows are let go.
        self._same_job: dict[tuple[object, ...], list[ValidRow]] = {}
        self._rows_left: dict[tuple[object, ...], int] = {}
        for row in manifest.valid:
            self._same_job.setdefault(row.identity, []).append(row)
            self._rows_left[row.identity] = self._rows_left.get(row.identity, 0) + 1
        for any_row in manifest.rows:
            self._by_id.setdefault(any_row.id, any_row)
        for row in manifest.valid:
            above = self._by_id.get(row.upstream or "")
            if above is None or above.row in self._ended:
                continue
            self._ended[above.row] = loop.create_future()
            self._items[above.row] = loop.create_future()
            if isinstance(above, InvalidRow):
                self._ended[above.row].set_result(_JobOutcome("invalid", 0))
                self._items[above.row].set_result(_invalid_result(above))

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
            for row in _upstreams_first(rows, self._by_id):
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
        """Wind down a run that failed or was cancelled without paying twice later.

        Submissions already on their way finish, so their request_ids are persisted and a
        rerun (or a flow retry) reuses them; the gate admits no new one; every other job is
        cancelled.
        """
        self.gate.close()
        for job in self._jobs.values():
            if job not in self._submitting:
                job.cancel()
        await asyncio.gather(*self._jobs.values(), return_exceptions=True)

    async def item(self, row: ValidRow) -> ItemResult:
        """Take one valid row to its outcome; never raises, so one row cannot stop the others."""
        try:
            item = await self._item(row)
        except Exception as exc:  # an unexpected failure still ends as this row's outcome
            self.logger.exception("Row %s failed unexpectedly", row.id)
            item = self._result(row, _JobOutcome("failed", 0, error=_error(exc, "error")))
        finally:
            self._tell_ended(row, _JobOutcome("failed", 0))  # if told nothing: none may wait
            self._memory.forget(self._task_runs.pop(row.row, ()))
            self._row_done(row)
        if row.row in self._items:
            self._items[row.row].set_result(item)
        if row.row not in self._known:
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
            chained = await self._upstream_video(row)
            if isinstance(chained, ItemResult):
                self._settle(row.identity)
                return chained
            video, fingerprint = chained
        download = await self._outcome(row, video, fingerprint)
        if isinstance(download, ItemResult):
            return download
        outcome, saved = download
        poster = await self._poster(row, saved)
        return self._result(row, outcome, saved, thumbnail=poster.path if poster else None)

    async def _outcome(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None
    ) -> ItemResult | tuple[_JobOutcome, DownloadResult]:
        """The row's job run (or shared) and its video downloaded; an `ItemResult` when the
        row ends without a video."""
        async with self.slots:
            identity = row.identity
            if identity not in self._jobs:
                self._jobs[identity] = asyncio.ensure_future(self._job(row, video, fingerprint))
            # Shielded: stopping a row must not cancel a job mid-submit (see `stop`).
            outcome = await asyncio.shield(self._jobs[identity])
            self._tell_ended(row, outcome)
            if outcome.status != "succeeded":
                return self._result(row, outcome)
            try:
                download = await self._downloaded(row, outcome)
            except GrokVideoError as exc:
                self.logger.error("Row %s: %s", row.id, exc)
                failed = replace(outcome, status="failed", error=_error(exc, "download"))
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

    def _tell_ended(self, row: ValidRow, outcome: _JobOutcome) -> None:
        """Tell the rows chained to `row` how its job ended (once; before its download)."""
        ended = self._ended.get(row.row)
        if ended is not None and not ended.done():
            ended.set_result(outcome)

    def _row_done(self, row: ValidRow) -> None:
        """Let go of the row's job once every row of that job has its outcome."""
        left = self._rows_left[row.identity] = self._rows_left[row.identity] - 1
        if left == 0:
            del self._rows_left[row.identity]
            self._jobs.pop(row.identity, None)
            self._same_job.pop(row.identity, None)

    async def _upstream_video(self, row: ValidRow) -> tuple[VideoInput, str] | ItemResult:
        """The video of a chained row, once its upstream's job has ended: the result's URL
        while it has `URL_MARGIN` left, else the downloaded file; with the fingerprint that
        names it in the cache key (the upstream's job). An `ItemResult` when the row cannot
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
            return self._result(row, _JobOutcome("invalid", 0, error=ItemError(
                code="invalid_input", message=message, field="video")))  # fmt: skip
        return video, f"job:{submission.request_id}"

    def _not_run(self, row: ValidRow, upstream_row: int, status: str) -> ItemResult:
        """The outcome of a row whose upstream did not succeed: nothing is paid for it."""
        message = (
            f"its video is the result of row {upstream_row} (id {row.upstream!r}), which ended "
            f"{status}: not submitted, nothing paid"
        )
        self.logger.warning("Row %s: %s", row.id, message)
        outcome = _JobOutcome(
            "upstream_failed", 0, error=ItemError(code="upstream_failed", message=message)
        )
        self._tell_ended(row, outcome)
        return self._result(row, outcome)

    def _settle(self, identity: tuple[object, ...]) -> None:
        """Count a job as submitted (or never to be): the last lets the gate give back slots."""
        if identity in self._unsubmitted:
            self._unsubmitted.discard(identity)
            if not self._unsubmitted:
                self.background.submit(self.gate.release())

    def _open_submit_slots(self, count: int) -> None:
        """Let `count` more submit task runs be under way at once, up to the lookahead."""
        opened = min(count, self._closed_submit_slots)
        self._closed_submit_slots -= opened
        for _ in range(opened):
            self.submit_slots.release()

    async def _submit(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None, attempt: int
    ) -> Submission:
        """Run the row's submit task (the one of its action); raises what the task raised."""
        submit = self.submit_tasks[row.action]
        common = {
            "credentials": self.credentials, "row_id": row.id, "attempt": attempt,
            "cost_estimate": self.prices.row(row) if self.budget is not None else None,
        }  # fmt: skip
        state: State[Submission]
        if row.action == "generate":
            state = await submit(
                row.prompt, row.image, row.duration, row.aspect_ratio, row.resolution, row.model,
                image_fingerprint=row.image_fingerprint, return_state=True, **common,
            )  # fmt: skip
        elif row.action == "edit":
            state = await submit(video or row.video, row.prompt, row.model,
                                 fingerprint=fingerprint, return_state=True, **common)  # fmt: skip
        else:
            state = await submit(video or row.video, row.prompt, row.duration, row.model,
                                 fingerprint=fingerprint, return_state=True, **common)  # fmt: skip
        self._ran(row, state)
        submission: Submission = await state.aresult()
        return submission

    def _ran(self, row: ValidRow, state: State) -> None:
        """Note a task run of `row`, for Prefect's context to forget once the row ends."""
        task_run_id = state.state_details.task_run_id
        if task_run_id is not None:
            self._task_runs.setdefault(row.row, []).append(task_run_id)

    async def _job(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None
    ) -> _JobOutcome:
        """Submit, wait, and resubmit after `service_unavailable` / `internal_error`."""
        attempt = 0
        while True:
            me = asyncio.current_task()
            async with self.submit_slots:
                if self.budget is not None and self.budget.reached:
                    self._settle(row.identity)
                    return self._skipped(attempt)
                self._submitting.add(me)
                try:
                    submission = await self._submit(row, video, fingerprint, attempt)
                except BudgetExceededError:
                    return self._skipped(attempt)
                except GrokVideoError as exc:
                    self.logger.error("Row %s: submit refused: %s", row.id, exc)
                    return _JobOutcome("failed", attempt, error=_error(exc))
                finally:
                    self._submitting.discard(me)
                    self._settle(row.identity)
                    self._open_submit_slots(2)
            if submission.request_id is None:
                return _JobOutcome(
                    "unknown", attempt + 1, submission,
                    error=ItemError(code="submit_outcome_unknown",
                                    message=submission.unknown_reason or "no answer"),
                )  # fmt: skip
            final = attempt >= self.options.max_resubmits
            seen: list[VideoJob] = []
            ended = partial(self._job_ended, row, submission, attempt + 1, final, seen)
            try:
                finished = await self._finish(row, submission, on_ended=ended)
            except PollTimeoutError as exc:
                return _JobOutcome("timed_out", attempt + 1, submission, error=_error(exc))
            except GrokVideoError as exc:
                if not (seen and seen[-1].outcome == "succeeded"):
                    return _JobOutcome("failed", attempt + 1, submission, error=_error(exc))
                # The video was made, its download failed: each row tries its own again.
                self.logger.warning("Row %s: %s", row.id, exc)
                finished = Finished(job=seen[-1])
            job = finished.job
            if self.budget is not None:  # what it cost instead of what it was expected to
                await self.budget.settle(job_key(row.id, attempt), job.cost_usd)
            code = job.error.code if job.error else None
            if code in RETRYABLE_JOB_ERROR_CODES and not final:
                attempt += 1
                self.logger.warning(
                    "Row %s: request %s failed with %s; submitting again (%d of %d)",
                    row.id, submission.request_id, code, attempt, self.options.max_resubmits,
                )  # fmt: skip
                continue
            try:
                job.raise_for_status()
                error = None
            except JobFailedError as exc:
                error = _error(exc)
                self.logger.warning("Row %s: %s", row.id, exc)
            return _JobOutcome(job.outcome, attempt + 1, submission, job, error,  # type: ignore[arg-type]
                               finished.download, row.row)  # fmt: skip

    def _job_ended(
        self,
        row: ValidRow,
        submission: Submission,
        tries: int,
        final: bool,
        seen: list[VideoJob],
        job: VideoJob,
    ) -> None:
        """A job ended (`seen` keeps it): rows chained to its rows go on before its download,
        unless it is to be submitted again."""
        seen.append(job)
        code = job.error.code if job.error else None
        if final or code not in RETRYABLE_JOB_ERROR_CODES:
            outcome = _JobOutcome(job.outcome, tries, submission, job)  # type: ignore[arg-type]
            for same in self._same_job.get(row.identity, ()):
                self._tell_ended(same, outcome)

    def _skipped(self, attempt: int) -> _JobOutcome:
        """The outcome of a job the spend cap kept from being submitted."""
        assert self.budget is not None
        message = (
            f"not submitted: the run's spend cap of ${self.budget.cap:.2f} was reached; run "
            "again with a higher max_cost to go on (what was done is not paid for again)"
        )
        return _JobOutcome("skipped", attempt, error=ItemError(code="spend_cap", message=message))

    async def _finish(
        self,
        row: ValidRow,
        submission: Submission,
        *,
        refresh: bool = False,
        on_ended: Callable[[VideoJob], None] | None = None,
    ) -> Finished:
        """Wait for the row's job and download its video (one task run, cached per job and
        destination; `refresh`: not from the cache). A row whose job's end an earlier run
        already saw is not announced again (`_known`): an automation fires once per video."""
        assert submission.request_id is not None
        destination = self.output.destination(row.output_name)
        finish = self._materializing(row, destination)
        if refresh:
            finish = finish.with_options(refresh_cache=True)
        # Prefect types an async task called with return_state=True as returning its State: it
        # returns a coroutine of it.
        state: State[Finished] = await cast(Any, finish)(
            submission.request_id, destination, self.credentials,
            timeout=self.options.wait_timeout, submitted_at=submission.submitted_at,
            row_id=row.id, asset_metadata=row_metadata(row), on_ended=on_ended,
            return_state=True,
        )  # fmt: skip
        self._ran(row, state)
        finished: Finished = await state.aresult()  # raises what the task raised
        if state.name == "Cached":
            self._known.add(row.row)
        return finished

    async def _downloaded(self, row: ValidRow, outcome: _JobOutcome) -> DownloadResult:
        """The row's video: downloaded with its job (or, for another row of the same job, on
        its own), and trusted from an earlier run only if the file is still whole."""
        assert outcome.submission is not None
        download = outcome.download if outcome.row == row.row else None
        if download is None:
            download = (await self._finish(row, outcome.submission)).download
        if download is None or not await anyio.to_thread.run_sync(intact, download):
            if download is not None:
                self.logger.warning("Row %s: %s is missing or changed; downloading again",
                                    row.id, download.path)  # fmt: skip
            download = (await self._finish(row, outcome.submission, refresh=True)).download
        if download is None:  # the job answers differently now: it is no longer done
            raise DownloadError("the job no longer offers its video: run again with refresh")
        return download

    def _materializing(
        self, row: ValidRow, destination: str
    ) -> Task[..., Coroutine[Any, Any, Finished]]:
        """The finish task of a row, materializing its video as an asset whose upstream is
        its input (or its upstream row's video)."""
        asset = video_asset(row, destination)
        if asset is None:
            return finish_video
        upstream = self._by_id.get(row.upstream or "")
        upstream_output = (  # (a row whose upstream is invalid is not run)
            self.output.destination(upstream.output_name)
            if isinstance(upstream, ValidRow)
            else None
        )
        return materializing_finish(asset, input_asset_keys(row, upstream_output))

    def _result(
        self,
        row: ValidRow,
        outcome: _JobOutcome,
        download: DownloadResult | None = None,
        *,
        thumbnail: str | None = None,
    ) -> ItemResult:
        """The row's outcome, with where its video was saved (`download`) when it succeeded."""
        job, submission = outcome.job, outcome.submission
        video = job.video if job else None
        return ItemResult(
            id=row.id,
            row=row.row,
            status=outcome.status,
            action=row.action,
            source=row.source,
            upstream=row.upstream,
            image=row.image_source or None,
            prompt=row.prompt,
            duration=row.duration,
            aspect_ratio=row.aspect_ratio,
            resolution=row.resolution,
            model=row.model,
            request_id=submission.request_id if submission else None,
            attempts=outcome.attempts,
            video_seconds=video.duration if video else None,
            video_url=(video.url or None) if video else None,
            url_expires_at=submission.submitted_at + URL_LIFETIME
            if submission and video and video.url
            else None,
            cost_usd=job.cost_usd if job else None,
            cost_ticks=job.usage.cost_in_usd_ticks if job and job.usage else None,
            error=outcome.error,
            output=download.path if download else None,
            size=download.size if download else None,
            sha256=download.sha256 if download else None,
            thumbnail=thumbnail,
            finished_at=datetime.now(timezone.utc),
            paid_in_flow_run=submission.flow_run_id if submission else None,
            paid_by_this_run=None if submission is None
            else submission.flow_run_id == self.flow_run_id,
        )  # fmt: skip


#: A finished row's result to and from JSON (`run_rows`).
_ITEM_JSON = TypeAdapter(ItemResult)


def _upstreams_first(
    rows: Sequence[ValidRow], by_id: dict[str, ValidRow | InvalidRow]
) -> Iterator[ValidRow]:
    """`rows` in manifest order, except that a row's upstream comes before it (a manifest may
    name a later row with `@<id>`): a row only ever waits for a row already under way."""
    taken: set[int] = set()
    valid = {row.row for row in rows}
    for row in rows:
        chain: list[ValidRow] = []
        above: ValidRow | InvalidRow | None = row
        while isinstance(above, ValidRow) and above.row in valid and above.row not in taken:
            chain.append(above)
            taken.add(above.row)
            above = by_id.get(above.upstream or "")
        yield from reversed(chain)


def _invalid_result(row: InvalidRow) -> ItemResult:
    first = row.problems[0] if row.problems else None
    return ItemResult(
        id=row.id,
        row=row.row,
        status="invalid",
        action=row.action,
        source=row.source,
        upstream=row.upstream,
        prompt=row.prompt,
        error=ItemError(
            code="invalid_input", message=row.message, field=first.field if first else None
        ),
        finished_at=datetime.now(timezone.utc),
    )


async def _extend(
    manifest: str | Sequence[ManifestRow | Mapping[str, Any]],
    options: RunOptions,
    credentials: GrokVideoCredentials | None,
) -> RunReport:
    """Everything both flows do: validate, run every valid row, publish the account."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc)
    # The one place a run reads GROK_VIDEO_* variables, when no block is given.
    credentials = credentials or GrokVideoCredentials.from_settings()
    checked = await validate_manifest(
        manifest, credentials.model, credentials.max_upload_bytes, options.rows
    )
    for row in checked.invalid:
        logger.warning("Invalid, not submitted: %s", row.message)
    logger.info(
        "Manifest %s: %d rows, %d valid, %d invalid; output to %s",
        checked.source, len(checked.rows), len(checked.valid), len(checked.invalid),
        options.output,
    )  # fmt: skip
    listener = run_listener.get()
    if listener is not None:
        listener.started(len(checked.rows))
    items = {row.row: _invalid_result(row) for row in checked.invalid}
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    for item in items.values():
        emit_row_event(item, run_id)
        if listener is not None:
            listener.finished(item)
    progress = ProgressArtifact(options.artifact_prefix, len(checked.rows))
    await progress.start(f"Rows of {checked.source} that reached their outcome")
    progress.advance(len(items))

    budget = _budget(options, logger)
    if budget is not None:
        estimate = PriceList.with_overrides(options.prices).rows(checked.valid)
        logger.info("Spend cap $%.2f; the valid rows are estimated at %s", options.max_cost,
                    estimate.describe())  # fmt: skip
    quiet = routine_task_ends_dropped([*(t.name for t in SUBMIT_TASKS.values()), finish_video.name])
    # The gate gets ready (the global limit looked up, a first batch of its slots taken unless
    # one row is all there is) while the rows' first task runs start, and gives back the slots
    # left unused once every job is submitted (`_Run._settle`) or when the run ends.
    # A Prefect API out of reach pauses submissions (the shared rate is kept there) this long.
    outage_seconds = SupervisionSettings.from_env().server_outage_timeout
    async with (
        SubmitGate(
            options.submit_rate,
            limit_name=DEFAULT_LIMIT_NAME,
            logger=logger,
            outage_seconds=outage_seconds,
            expected=len(checked.valid),
        ) as gate,  # fmt: skip
        credentials.get_client(pace=gate.admit) as client,
    ):
        run = _Run(
            options, credentials=credentials, gate=gate, manifest=checked, progress=progress,
            budget=budget,
        )  # fmt: skip
        client_token = shared_client.set(client)
        budget_token = run_budget.set(budget)
        try:
            with quiet:
                for item in await run.run_rows(checked.valid):
                    items[item.row] = item
        except BaseException:  # a crash or a cancel (Ctrl-C, a worker told to stop)
            logger.warning("Run stopping: letting submissions in flight finish, then stopping")
            await run.stop()
            raise
        finally:
            shared_client.reset(client_token)
            run_budget.reset(budget_token)
            await run.background.flush()
            await progress.finish()

    skipped = sum(item.status == "skipped" for item in items.values())
    stopped_by = (
        f"the spend cap of ${options.max_cost:.2f} was reached: {skipped} row(s) not submitted"
        if skipped
        else None
    )
    report = RunReport(
        manifest=checked.source,
        stopped_by=stopped_by,
        output=run.output.root,
        items=[items[number] for number in sorted(items)],
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        flow_run_id=run_id,
    )
    await publish_report(report, options.artifact_prefix, run.contact_sheet)
    await publish_gallery(report, logger)
    emit_run_event(report, stopped_by=stopped_by)
    if stopped_by:
        logger.error("Run stopped submitting: %s", stopped_by)
    logger.info("%s in %.1f s; videos in %s", report.summary_line(), report.elapsed_seconds,
                report.output)  # fmt: skip
    return report


def _budget(options: RunOptions, logger: Logger) -> Budget | None:
    """The run's spend cap: its chunked run's shared one, or its own."""
    if options.max_cost is None:
        return None
    if options.budget is not None:
        return SharedBudget(options.budget, options.max_cost, logger=logger)
    return LocalBudget(options.max_cost)


def _final(report: RunReport, fail_on_item_error: bool, value: Result) -> Result:
    """The flow's return: the value, or a Failed state whose `RunFailedError` carries it.

    Typed as the value: a flow that returns a Failed state raises its error to its caller,
    which never gets the state itself."""
    if report.all_succeeded or not fail_on_item_error:
        return value
    message = report.summary_line()
    failed: State[Any] = Failed(message=message, data=RunFailedError(message, result=value))
    return cast(Result, failed)


# Bounds the UI form and parameter validation enforce; the descriptions are the docstrings'.
Concurrency = Annotated[int, Field(ge=1, le=10000)]
Rate = Annotated[float, Field(gt=0, le=100)]
WaitTimeout = Annotated[float, Field(gt=0, le=172800)]
Resubmits = Annotated[int, Field(ge=0, le=10)]
ChunkSize = Annotated[int | None, Field(ge=1)]
Rows = Annotated[str | None, Field(pattern=ROWS_PATTERN)]
MaxCost = Annotated[float | None, Field(gt=0)]
if TYPE_CHECKING:  # what a caller may pass: dicts too, which the flow validates as rows
    InlineRows = Sequence[ManifestRow | Mapping[str, Any]]
else:  # what the UI form shows: a list of rows
    InlineRows = list[ManifestRow]
Result = TypeVar("Result")


@sync_callable
@flow(
    name="make-videos",
    description="Generate, edit and extend the videos of a manifest with Grok and download them.",
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
async def make_videos(
    manifest: str | InlineRows,
    output: str = DEFAULT_OUTPUT,
    credentials: GrokVideoCredentials | None = None,
    max_concurrency: Concurrency = DEFAULT_MAX_CONCURRENCY,
    submit_rate: Rate = 1.0,
    wait_timeout: WaitTimeout = 1800.0,
    max_resubmits: Resubmits = 2,
    refresh: bool = False,
    fail_on_item_error: bool = True,
    artifact_prefix: str = "grok-video",
    chunk_size: ChunkSize = None,
    rows: Rows = None,
    max_cost: MaxCost = None,
    prices: dict[str, dict[str, float]] | None = None,
    budget: str | None = None,
) -> RunReport:
    """Generate, edit and extend the videos of a manifest with Grok, and download them.

    Returns the `RunReport`. When a row did not succeed the run ends Failed (after everything
    is downloaded and published) with a `RunFailedError` whose `result` is the report, unless
    `fail_on_item_error` is False. The result of every run is persisted, so a parent run can
    read its chunks' reports from the shared result storage.

    Args:
        manifest: A path or storage URL (s3://, gs://, ...) of a CSV, JSON, JSONL or YAML file,
            or a list of rows. Columns: action (generate, edit or extend; extend when empty),
            prompt (required), video (for edit and extend; `@<id>` for another row's result),
            image (a still, for generate), duration, aspect_ratio, resolution, model, id (names
            the output file). Relative paths are read from the manifest's folder.
        output: Folder or storage URL the videos are written to, as `<id>.mp4`.
        credentials: The Grok Video Credentials block to use; empty means the worker's
            GROK_VIDEO_* environment variables.
        max_concurrency: Most rows in flight at once. Keep it above submit_rate x the jobs'
            latency in seconds (300 for 5-minute jobs at 1/s), or it slows the run down.
        submit_rate: Most submissions per second, shared by every run on this Prefect server
            through the global concurrency limit grok-video-submit. The service allows 1.
        wait_timeout: Seconds to wait for one job before reporting it timed_out (a later run
            resumes waiting without paying again).
        max_resubmits: New submissions of a job that failed with service_unavailable or
            internal_error. Other failures are final.
        refresh: Pay for new generations even of rows already submitted by an earlier run.
        fail_on_item_error: End the run Failed when any row did not succeed.
        artifact_prefix: Prefix of the keys of this run's artifacts.
        chunk_size: For runs of a deployment: split a manifest with more rows than this into
            flow runs of this many rows, which any worker of the pool can take.
        rows: Only these rows of the manifest, e.g. 11-20 (set by chunked runs).
        max_cost: Most USD the run may spend: it stops submitting once what the service
            reported for finished jobs plus estimates of jobs in flight would pass it; rows
            not submitted end skipped. Empty: no cap.
        prices: USD per second of video by model and resolution, over the built-in estimates,
            e.g. {"grok-imagine-video": {"480p": 0.05, "720p": 0.07}}.
        budget: The spend cap shared by the chunks of one run (set by chunked runs).
    """
    plan = await plan_chunks(manifest, chunk_size, rows)
    if plan is not None:
        report = await run_in_chunks(
            manifest, plan, artifact_prefix=artifact_prefix, max_cost=max_cost
        )
    else:
        options = RunOptions(
            output=output, max_concurrency=max_concurrency, submit_rate=submit_rate,
            wait_timeout=wait_timeout, max_resubmits=max_resubmits, refresh=refresh,
            artifact_prefix=artifact_prefix, rows=parse_rows(rows) if rows else None,
            max_cost=max_cost, prices=prices, budget=budget,
        )  # fmt: skip
        report = await _extend(manifest, options, credentials)
    return _final(report, fail_on_item_error, report)


def __getattr__(name: str) -> object:
    """`extend_videos`, the name `make_videos` had in 0.1 (it runs every action, not only
    extensions): it still works, deployments whose entrypoint names it too, with a warning."""
    if name == "extend_videos":
        warnings.warn(
            "extend_videos is now make_videos (it generates, edits and extends); the old name "
            "will be removed in 1.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return make_videos
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
