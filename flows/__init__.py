"""Prefect tasks and flows of prefect-grok-video (installed as `prefect_grok_video.flows`).

The flows of one video (`generate_video`, `edit_video`, `extend_video`) are imported when first
asked for (PEP 562): a command that runs a manifest does not build their parameter schemas.
"""

from typing import TYPE_CHECKING

from prefect_grok_video._lazy import lazy_exports
from prefect_grok_video.flows.engine.listener import RunListener, run_listener
from prefect_grok_video.flows.engine.options import DEFAULT_OUTPUT
from prefect_grok_video.flows.tasks import (
    Finished,
    Submission,
    download_video,
    finish_video,
    submit_edit,
    submit_extension,
    submit_generation,
    wait_for_video,
)
from prefect_grok_video.flows.videos import make_videos

if TYPE_CHECKING:
    from prefect_grok_video.flows.single import edit_video, extend_video, generate_video

__all__ = [
    "DEFAULT_OUTPUT",
    "Finished",
    "RunListener",
    "Submission",
    "download_video",
    "edit_video",
    "extend_video",
    "finish_video",
    "generate_video",
    "make_videos",
    "run_listener",
    "submit_edit",
    "submit_extension",
    "submit_generation",
    "wait_for_video",
]

__getattr__, __dir__ = lazy_exports(
    globals(),
    {**dict.fromkeys(("edit_video", "extend_video", "generate_video"),
                     "prefect_grok_video.flows.single"),
     "extend_videos": "prefect_grok_video.flows.extend"},  # the old name of make_videos
)  # fmt: skip
