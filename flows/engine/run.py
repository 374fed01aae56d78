"""One run, from its manifest to its report: what `make_videos` and the one-video flows share.

A run validates every row first (nothing is paid for an invalid row), then takes the valid rows
concurrently on one event loop (`RowScheduler`): each row is submitted (at most `submit_rate`
per second, across runs too), waited for, resubmitted after a transient failure, and
downloaded. The run ends only when every row has its outcome and the report and artifacts are
published.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar, cast

import anyio
from prefect import State, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.errors import RunFailedError
from prefect_grok_video.flows.engine.artifacts import ProgressArtifact, publish_report
from prefect_grok_video.flows.engine.budget import Budget, LocalBudget, SharedBudget, run_budget
from prefect_grok_video.flows.engine.events import emit_row_event, emit_run_event
from prefect_grok_video.flows.engine.gallery import publish_gallery
from prefect_grok_video.flows.engine.gate import DEFAULT_LIMIT_NAME, SubmitGate
from prefect_grok_video.flows.engine.listener import run_listener
from prefect_grok_video.flows.engine.options import RunOptions
from prefect_grok_video.flows.engine.outcomes import invalid_result
from prefect_grok_video.flows.engine.quiet import routine_task_ends_dropped
from prefect_grok_video.flows.engine.rows import RowScheduler
from prefect_grok_video.flows.engine.supervision import SupervisionSettings
from prefect_grok_video.flows.tasks import SUBMIT_TASKS, finish_video, shared_client
from prefect_grok_video.logs import Logger
from prefect_grok_video.manifest import Manifest, ManifestRow, load_manifest
from prefect_grok_video.pricing import PriceList
from prefect_grok_video.report import RunReport

__all__ = ["final", "run_manifest", "validate_manifest"]

Result = TypeVar("Result")


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


async def run_manifest(
    manifest: str | Sequence[ManifestRow | Mapping[str, Any]],
    options: RunOptions,
    credentials: GrokVideoCredentials | None,
) -> RunReport:
    """Everything the flows do: validate, run every valid row, publish the account."""
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
    items = {row.row: invalid_result(row) for row in checked.invalid}
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
    # left unused once every job is submitted (`JobRunner.settle`) or when the run ends.
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
        run = RowScheduler(
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


def final(report: RunReport, fail_on_item_error: bool, value: Result) -> Result:
    """A flow's return: the value, or a Failed state whose `RunFailedError` carries it.

    Typed as the value: a flow that returns a Failed state raises its error to its caller,
    which never gets the state itself."""
    if report.all_succeeded or not fail_on_item_error:
        return value
    message = report.summary_line()
    failed: State[Any] = Failed(message=message, data=RunFailedError(message, result=value))
    return cast(Result, failed)
