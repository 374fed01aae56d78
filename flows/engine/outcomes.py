"""How a row's job ended (`JobOutcome`), and the `ItemResult` a row ends with.

The one place a row's report line is made: from its manifest row, how its job ended, and where
its video was saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from prefect_grok_video.flows.tasks import Submission
from prefect_grok_video.manifest import InvalidRow, ValidRow
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.report import ItemError, ItemResult, ItemStatus

__all__ = ["URL_LIFETIME", "JobOutcome", "error_of", "invalid_result", "item_result"]

#: How long a result URL stays valid after the job was submitted (API.md: 24 hours).
URL_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class JobOutcome:
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


def error_of(exc: BaseException, code: str | None = None) -> ItemError:
    """A row's error from an exception: its code (or `code`, or its type's name), its message."""
    return ItemError(code=code or getattr(exc, "code", None) or type(exc).__name__,
                     message=str(exc))  # fmt: skip


def item_result(
    row: ValidRow,
    outcome: JobOutcome,
    download: DownloadResult | None = None,
    *,
    thumbnail: str | None = None,
    flow_run_id: str | None = None,
) -> ItemResult:
    """The row's outcome, with where its video was saved (`download`) when it succeeded;
    `flow_run_id` is this run's, to tell jobs it paid for from earlier runs' jobs."""
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
        paid_by_this_run=None if submission is None else submission.flow_run_id == flow_run_id,
    )  # fmt: skip


def invalid_result(row: InvalidRow) -> ItemResult:
    """The outcome of a row that failed validation: nothing was sent for it."""
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
