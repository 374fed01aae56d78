"""The options of one run, as one typed value instead of a dozen keyword arguments."""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
    #: Only these rows (1-based numbers) of the manifest, and their upstreams; None: all.
    rows: Collection[int] | None = None
    #: Most USD the run may spend (jobs the service reported, plus estimates of jobs in
    #: flight); None: no cap.
    max_cost: float | None = None
    #: Prices over the default estimates (model → resolution → USD per second of video).
    prices: Mapping[str, Mapping[str, float]] | None = None
    #: The shared spend cap of a chunked run (a global concurrency limit), set by its parent.
    budget: str | None = None
