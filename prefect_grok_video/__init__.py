"""Prefect 3 integration for the Grok (xAI) video extension API."""

from prefect_grok_video._version import __version__
from prefect_grok_video.client import AsyncGrokVideoClient, GrokVideoClient
from prefect_grok_video.inputs import VideoInput, resolve_video
from prefect_grok_video.models import DownloadResult, JobError, Usage, VideoJob, VideoResult
from prefect_grok_video.policies import PollPolicy, RetryPolicy
from prefect_grok_video.settings import GrokVideoSettings

__all__ = [
    "AsyncGrokVideoClient",
    "DownloadResult",
    "GrokVideoClient",
    "GrokVideoSettings",
    "JobError",
    "PollPolicy",
    "RetryPolicy",
    "Usage",
    "VideoInput",
    "VideoJob",
    "VideoResult",
    "__version__",
    "resolve_video",
]
