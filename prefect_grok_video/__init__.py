"""Prefect 3 integration for the Grok (xAI) video extension API.

`GrokVideoCredentials` (the Prefect block) is exported lazily: importing this package does not
import Prefect; asking for the block does.
"""

from typing import TYPE_CHECKING

from prefect_grok_video._lazy import lazy_exports
from prefect_grok_video._version import __version__
from prefect_grok_video.client import AsyncGrokVideoClient
from prefect_grok_video.inputs import VideoInput, resolve_video
from prefect_grok_video.models import DownloadResult, JobError, Usage, VideoJob, VideoResult
from prefect_grok_video.policies import PollPolicy, RetryPolicy
from prefect_grok_video.settings import GrokVideoSettings
from prefect_grok_video.sync_client import GrokVideoClient

if TYPE_CHECKING:
    from prefect_grok_video.blocks import GrokVideoCredentials as GrokVideoCredentials

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

#: Exports that need Prefect, imported on first access (PEP 562), by name -> module.
__getattr__, __dir__ = lazy_exports(
    globals(), {"GrokVideoCredentials": "prefect_grok_video.blocks"}
)
