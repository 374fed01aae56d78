"""Prefect 3 integration for the Grok (xAI) video extension API."""

from prefect_grok_video.models import DownloadResult, JobError, Usage, VideoJob, VideoResult
from prefect_grok_video.settings import GrokVideoSettings

__version__ = "0.1.0"

__all__ = [
    "DownloadResult",
    "GrokVideoSettings",
    "JobError",
    "Usage",
    "VideoJob",
    "VideoResult",
    "__version__",
]
