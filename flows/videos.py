"""The manifest flow, `make_videos`: generations, edits and extensions of a manifest's rows,
run by `prefect_grok_video.flows.engine` (see its `run.py` for one run, top to bottom).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from prefect import flow
from pydantic import Field

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.flows.engine.chunks import (
    ROWS_PATTERN,
    parse_rows,
    plan_chunks,
    run_in_chunks,
)
from prefect_grok_video.flows.engine.dispatch import sync_callable
from prefect_grok_video.flows.engine.options import DEFAULT_OUTPUT, RunOptions
from prefect_grok_video.flows.engine.results import RESULT_SERIALIZER
from prefect_grok_video.flows.engine.run import final, run_manifest
from prefect_grok_video.manifest import ManifestRow
from prefect_grok_video.report import RunReport
from prefect_grok_video.settings import DEFAULT_MAX_CONCURRENCY

__all__ = ["Rate", "Resubmits", "WaitTimeout", "make_videos"]


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
        report = await run_manifest(manifest, options, credentials)
    return final(report, fail_on_item_error, report)
