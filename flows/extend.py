"""The module `make_videos` lived in when it was `extend_videos` (0.1): deployments whose
entrypoint is `flows/extend.py:make_videos` or `flows/extend.py:extend_videos` keep working.
The flow is in `flows/videos.py` now."""

from __future__ import annotations

import warnings

from prefect_grok_video.flows.videos import make_videos

__all__ = ["make_videos"]


def __getattr__(name: str) -> object:
    """`extend_videos`, the name `make_videos` had in 0.1 (it runs every action, not only
    extensions): it still works, deployments whose entrypoint names it too, with a warning."""
    if name == "extend_videos":
        warnings.warn(
            "extend_videos is now make_videos (it generates, edits and extends); the old name "
            "will be removed in 1.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return make_videos
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
