"""One job of a run: submitted once (at the shared rate, within the spend cap), waited for,
resubmitted after a transient failure, and its video downloaded.

Rows that describe the very same job (same video content, prompt, duration and model) share one
paid submission: `JobRunner.outcome` starts a job for the first of them and hands the others
the same one. Each Prefect task run a row starts is remembered until the row ends, then
forgotten by Prefect's run context (`TaskRunMemory`), so a long run's memory follows the rows in
flight.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, cast
from uuid import UUID

import anyio
from prefect import State, Task

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.errors import (
    RETRYABLE_JOB_ERROR_CODES,
    DownloadError,
    GrokVideoError,
    JobFailedError,
    PollTimeoutError,
)
from prefect_grok_video.flows.engine.artifacts import Background
from prefect_grok_video.flows.engine.assets import input_asset_keys, row_metadata, video_asset
from prefect_grok_video.flows.engine.budget import Budget, BudgetExceededError
from prefect_grok_video.flows.engine.chains import Chains
from prefect_grok_video.flows.engine.gate import SubmitGate
from prefect_grok_video.flows.engine.options import RunOptions
from prefect_grok_video.flows.engine.outcomes import JobOutcome, error_of
from prefect_grok_video.flows.engine.task_run_memory import TaskRunMemory
from prefect_grok_video.flows.tasks import (
    SUBMIT_TASKS,
    Finished,
    Submission,
    finish_video,
    job_key,
    materializing_finish,
)
from prefect_grok_video.inputs import VideoInput
from prefect_grok_video.logs import Logger
from prefect_grok_video.manifest import Manifest, ValidRow
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.outputs import OutputFolder, intact
from prefect_grok_video.pricing import PriceList
from prefect_grok_video.report import ItemError

__all__ = ["SUBMIT_LOOKAHEAD", "JobRunner"]

#: Seconds of submissions, at the run's rate, whose submit task runs may be under way at once.
SUBMIT_LOOKAHEAD = 2.0


class JobRunner:
    """The jobs of one run's rows, each run once however many rows share it."""

    def __init__(
        self,
        options: RunOptions,
        *,
        credentials: GrokVideoCredentials,
        gate: SubmitGate,
        manifest: Manifest,
        chains: Chains,
        output: OutputFolder,
        background: Background,
        logger: Logger,
        flow_run_id: str | None,
        budget: Budget | None = None,
    ) -> None:
        self.options = options
        self.credentials = credentials
        self.gate = gate
        self.chains = chains
        self.output = output
        self.background = background
        self.logger = logger
        self.flow_run_id = flow_run_id
        self.budget = budget
        self.prices = PriceList.with_overrides(options.prices)
        self.submit_tasks = {
            action: submit.with_options(refresh_cache=True) if options.refresh else submit
            for action, submit in SUBMIT_TASKS.items()
        }
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
        self._jobs: dict[tuple[object, ...], asyncio.Task[JobOutcome]] = {}
        self._submitting: set[asyncio.Task[Any] | None] = set()
        #: The rows that are each job (rows that are the very same job share it), while any
        #: of them is still going; then the job and its rows are let go.
        self._same_job: dict[tuple[object, ...], list[ValidRow]] = {}
        self._rows_left: dict[tuple[object, ...], int] = {}
        for row in manifest.valid:
            self._same_job.setdefault(row.identity, []).append(row)
            self._rows_left[row.identity] = self._rows_left.get(row.identity, 0) + 1
        #: Rows whose outcome an earlier run already saw (and announced).
        self._known: set[int] = set()
        #: The task runs of each row still going; forgotten by Prefect's context when it ends.
        self._task_runs: dict[int, list[UUID]] = {}
        self._memory = TaskRunMemory()

    async def outcome(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None
    ) -> JobOutcome:
        """How the row's job ended: run for the first row of it, shared by the others."""
        identity = row.identity
        if identity not in self._jobs:
            self._jobs[identity] = asyncio.ensure_future(self._job(row, video, fingerprint))
        # Shielded: stopping a row must not cancel a job mid-submit (see `stop`).
        return await asyncio.shield(self._jobs[identity])

    def known(self, row: ValidRow) -> bool:
        """Whether an earlier run already saw how the row's job ended (and announced it)."""
        return row.row in self._known

    def settle(self, identity: tuple[object, ...]) -> None:
        """Count a job as submitted (or never to be): the last lets the gate give back slots."""
        if identity in self._unsubmitted:
            self._unsubmitted.discard(identity)
            if not self._unsubmitted:
                self.background.submit(self.gate.release())

    def row_done(self, row: ValidRow) -> None:
        """Forget the row's task runs, and let go of its job once every row of that job has
        its outcome."""
        self._memory.forget(self._task_runs.pop(row.row, ()))
        left = self._rows_left[row.identity] = self._rows_left[row.identity] - 1
        if left == 0:
            del self._rows_left[row.identity]
            self._jobs.pop(row.identity, None)
            self._same_job.pop(row.identity, None)

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

    async def downloaded(self, row: ValidRow, outcome: JobOutcome) -> DownloadResult:
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

    async def _job(
        self, row: ValidRow, video: VideoInput | None, fingerprint: str | None
    ) -> JobOutcome:
        """Submit, wait, and resubmit after `service_unavailable` / `internal_error`."""
        attempt = 0
        while True:
            me = asyncio.current_task()
            async with self.submit_slots:
                if self.budget is not None and self.budget.reached:
                    self.settle(row.identity)
                    return self._skipped(attempt)
                self._submitting.add(me)
                try:
                    submission = await self._submit(row, video, fingerprint, attempt)
                except BudgetExceededError:
                    return self._skipped(attempt)
                except GrokVideoError as exc:
                    self.logger.error("Row %s: submit refused: %s", row.id, exc)
                    return JobOutcome("failed", attempt, error=error_of(exc))
                finally:
                    self._submitting.discard(me)
                    self.settle(row.identity)
                    self._open_submit_slots(2)
            if submission.request_id is None:
                return JobOutcome(
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
                return JobOutcome("timed_out", attempt + 1, submission, error=error_of(exc))
            except GrokVideoError as exc:
                if not (seen and seen[-1].outcome == "succeeded"):
                    return JobOutcome("failed", attempt + 1, submission, error=error_of(exc))
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
                error = error_of(exc)
                self.logger.warning("Row %s: %s", row.id, exc)
            return JobOutcome(job.outcome, attempt + 1, submission, job, error,  # type: ignore[arg-type]
                              finished.download, row.row)  # fmt: skip

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
            outcome = JobOutcome(job.outcome, tries, submission, job)  # type: ignore[arg-type]
            for same in self._same_job.get(row.identity, ()):
                self.chains.tell_ended(same, outcome)

    def _skipped(self, attempt: int) -> JobOutcome:
        """The outcome of a job the spend cap kept from being submitted."""
        assert self.budget is not None
        message = (
            f"not submitted: the run's spend cap of ${self.budget.cap:.2f} was reached; run "
            "again with a higher max_cost to go on (what was done is not paid for again)"
        )
        return JobOutcome("skipped", attempt, error=ItemError(code="spend_cap", message=message))

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
        already saw is not announced again (`known`): an automation fires once per video."""
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

    def _materializing(
        self, row: ValidRow, destination: str
    ) -> Task[..., Coroutine[Any, Any, Finished]]:
        """The finish task of a row, materializing its video as an asset whose upstream is
        its input (or its upstream row's video)."""
        asset = video_asset(row, destination)
        if asset is None:
            return finish_video
        upstream = self.chains.upstream_of(row)  # (a row whose upstream is invalid is not run)
        upstream_output = self.output.destination(upstream.output_name) if upstream else None
        return materializing_finish(asset, input_asset_keys(row, upstream_output))

    def _open_submit_slots(self, count: int) -> None:
        """Let `count` more submit task runs be under way at once, up to the lookahead."""
        opened = min(count, self._closed_submit_slots)
        self._closed_submit_slots -= opened
        for _ in range(opened):
            self.submit_slots.release()
