"""Prefect tasks and flows of prefect-grok-video (installed as `prefect_grok_video.flows`)."""

from prefect_grok_video.flows.extend import (
    DEFAULT_OUTPUT,
    RunListener,
    extend_video,
    extend_videos,
    run_listener,
)
from prefect_grok_video.flows.tasks import (
    Submission,
    download_video,
    submit_extension,
    wait_for_video,
)

__all__ = [
    "DEFAULT_OUTPUT",
    "RunListener",
    "Submission",
    "download_video",
    "extend_video",
    "extend_videos",
    "run_listener",
    "submit_extension",
    "wait_for_video",
]
