"""Prefect tasks and flows of prefect-grok-video (installed as `prefect_grok_video.flows`).

The flows of one video (`generate_video`, `edit_video`, `extend_video`) are imported when first
asked for (PEP 562): a command that runs a manifest does not build their parameter schemas.
"""

import importlib
from typing import TYPE_CHECKING, Any

from prefect_grok_video.flows.extend import (
    DEFAULT_OUTPUT,
    RunListener,
    extend_videos,
    run_listener,
)
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
    "extend_videos",
    "finish_video",
    "generate_video",
    "run_listener",
    "submit_edit",
    "submit_extension",
    "submit_generation",
    "wait_for_video",
]

_LAZY = {name: "prefect_grok_video.flows.single" for name in
         ("edit_video", "extend_video", "generate_video")}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Import a flow of one video when it is first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
