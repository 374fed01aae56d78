"""The options of one run, as one typed value instead of a dozen keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass

from prefect_grok_video.settings import DEFAULT_MAX_CONCURRENCY

__all__ = ["DEFAULT_OUTPUT", "RunOptions"]

DEFAULT_OUTPUT = "./grok-video-output"


@dataclass(frozen=True)
class RunOptions:
    """How a run treats its rows: where results go, how fast and how many at once, how long
    it waits, and what it does again. The flows' parameters say what each means."""

    output: str = DEFAULT_OUTPUT
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    submit_rate: float = 1.0
    wait_timeout: float = 1800.0
    max_resubmits: int = 2
    refresh: bool = False
    artifact_prefix: str = "grok-video"
    #: Only these rows (first, last; 1-based, inclusive) of the manifest; None: all of them.
    rows: tuple[int, int] | None = None
