"""Prefect tasks and flows of prefect-grok-video (installed as `prefect_grok_video.flows`)."""

from prefect_grok_video.flows.extend import (
    DEFAULT_OUTPUT,
    RunListener,
    edit_video,
    extend_video,
    extend_videos,
    generate_video,
    run_listener,
)
from prefect_grok_video.flows.tasks import (
    Submission,
    download_video,
    submit_edit,
    submit_extension,
    submit_generation,
    wait_for_video,
)

__all__ = [
    "DEFAULT_OUTPUT",
    "RunListener",
    "Submission",
    "download_video",
    "edit_video",
    "extend_video",
    "extend_videos",
    "generate_video",
    "run_listener",
    "submit_edit",
    "submit_extension",
    "submit_generation",
    "wait_for_video",
]
