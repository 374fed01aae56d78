"""Typed views of what the service returns (API.md, section 2) and of what a download produced.

The models tolerate fields they do not know (the service may add some) and statuses they do
not know (treated like `pending` by the waiting code, never a crash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from prefect_grok_video.errors import JOB_ERROR_ADVICE, JobFailedError

__all__ = ["TERMINAL_STATUSES", "DownloadResult", "JobError", "Usage", "VideoJob", "VideoResult"]

#: Statuses after which a job never changes again.
TERMINAL_STATUSES = frozenset({"done", "failed", "expired"})

#: One usage tick is 1e-10 USD (API.md).
USD_PER_TICK = 1e-10

JobOutcome = Literal["succeeded", "moderated", "failed", "expired", "pending"]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class VideoResult(_Tolerant):
    """The generated video of a `done` job."""

    url: str = ""
    duration: float | None = None
    respect_moderation: bool = True


class JobError(_Tolerant):
    """Why a job `failed`: one of the service's asynchronous error codes and its message."""

    code: str = "unknown"
    message: str = ""


class Usage(_Tolerant):
    """What the job cost, in ticks of 1e-10 USD."""

    cost_in_usd_ticks: int | None = None

    @property
    def cost_usd(self) -> float | None:
        if self.cost_in_usd_ticks is None:
            return None
        return self.cost_in_usd_ticks * USD_PER_TICK


class VideoJob(_Tolerant):
    """One poll's answer for a job: its status and, once finished, its video or error."""

    request_id: str | None = Field(default=None, description="Filled in by the client.")
    status: str
    model: str | None = None
    video: VideoResult | None = None
    error: JobError | None = None
    progress: float | None = None
    usage: Usage | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change any more (`done`, `failed` or `expired`)."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_moderated(self) -> bool:
        """A `done` job whose content did not pass moderation: it has no video URL."""
        return self.status == "done" and (
            self.video is None or not self.video.respect_moderation or not self.video.url
        )

    @property
    def outcome(self) -> JobOutcome:
        """`succeeded`, `moderated`, `failed`, `expired`, or `pending` (unknown statuses too)."""
        if self.status == "done":
            return "moderated" if self.is_moderated else "succeeded"
        if self.status in ("failed", "expired"):
            return self.status  # type: ignore[return-value]
        return "pending"

    @property
    def cost_usd(self) -> float | None:
        """What the service reports this job cost, in USD, when it reports usage."""
        return self.usage.cost_usd if self.usage else None

    def raise_for_status(self) -> VideoJob:
        """Return the job if it produced a video; otherwise raise `JobFailedError` saying why.

        Like `httpx.Response.raise_for_status`: waiting returns failures as data, and this turns
        them into an exception for callers that want one.
        """
        outcome = self.outcome
        if outcome == "succeeded":
            return self
        if outcome == "pending":
            raise ValueError(f"job {self.request_id} is still {self.status!r}")
        if outcome == "failed":
            code = self.error.code if self.error else "unknown"
            detail = self.error.message if self.error and self.error.message else "no message"
            message = f"job failed: {detail} ({JOB_ERROR_ADVICE.get(code, 'see the message')})"
        else:
            code = outcome
            message = f"job {outcome}: {JOB_ERROR_ADVICE[outcome]}"
        raise JobFailedError(message, code=code, request_id=self.request_id)


class DownloadResult(BaseModel):
    """A downloaded video: where it is, its size in bytes and its SHA-256 (hex)."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Local path or fsspec URL of the stored file.")
    size: int
    sha256: str

    @property
    def local_path(self) -> Path | None:
        """The path as a `Path` when the file is local, else None."""
        return None if "://" in self.path else Path(self.path)
