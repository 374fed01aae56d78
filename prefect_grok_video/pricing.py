"""What jobs cost, before they run: a price per second of video by model and resolution, and the
estimate of each row and of a manifest.

The default prices are **estimates**: xAI prices video per second of output by model and
resolution, and public pages (checked 2026-12) quote about $0.05 a second at 480p and $0.07 at
720p for the base model; 1080p on the newer model is assumed at $0.10. What the service reports
(`usage.cost_in_usd_ticks`) is what a job cost; these numbers only decide what a run expects to
spend and when a spend cap stops it. Override them with `GROK_VIDEO_PRICES`, a JSON object such
as `{"grok-imagine-video": {"480p": 0.05, "720p": 0.07}}`, or the flows' `prices` parameter.

A row is estimated at the seconds of video it makes (a generation: its duration; an edit: its
input's length; an extension: its input plus the new seconds, as the service returns the whole
clip) times the price of its model and resolution. Where a length is not known before the job
runs (a clip given as a URL) the most the operation accepts is assumed, and where the resolution
is not known (edits and extensions match their input) the model's highest price: an estimate
errs on the side of spending less than the cap, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prefect_grok_video.manifest import ValidRow
from prefect_grok_video.operations import limits_for
from prefect_grok_video.settings import DEFAULT_MODEL

__all__ = ["DEFAULT_PRICES", "Estimate", "PriceList"]

#: USD per second of video, by model and resolution (estimates: see the module docstring).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    DEFAULT_MODEL: {"480p": 0.05, "720p": 0.07},
    "grok-imagine-video-1.5": {"480p": 0.05, "720p": 0.07, "1080p": 0.10},
}


@dataclass(frozen=True)
class Estimate:
    """What some rows are expected to cost: USD, seconds of video, and jobs."""

    usd: float
    seconds: float
    jobs: int

    def describe(self) -> str:
        """E.g. `$1.23 for 3 jobs, 24 s of video (an estimate: see prefect_grok_video.pricing)`."""
        plural = "s" * (self.jobs != 1)
        return f"${self.usd:.2f} for {self.jobs} job{plural}, {round(self.seconds, 1):g} s of video"


@dataclass(frozen=True)
class PriceList:
    """Prices per second of video by model and resolution; a model it lacks is priced as the
    default model."""

    prices: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_PRICES)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, float]] | None) -> PriceList:
        """The default prices with `overrides` (model → resolution → USD per second) applied."""
        merged = {model: dict(prices) for model, prices in DEFAULT_PRICES.items()}
        for model, prices in (overrides or {}).items():
            merged.setdefault(model, {}).update(prices)
        return cls(merged)

    def per_second(self, model: str, resolution: str | None) -> float:
        """USD per second of `model`'s video at `resolution` (None: its highest price)."""
        prices = self.prices.get(model) or self.prices[DEFAULT_MODEL]
        if resolution in prices:
            return prices[resolution]  # type: ignore[index]
        return max(prices.values())

    def seconds(self, row: ValidRow) -> float:
        """Seconds of video a row makes, or the most it can make when its input's length is
        not known yet."""
        if row.output_seconds is not None:
            return row.output_seconds
        limits = limits_for(row.action, row.model)
        longest_input = limits.input_seconds[1] if limits.input_seconds else 0.0
        return float(limits.output_seconds(longest_input, row.duration) or 0.0)

    def row(self, row: ValidRow) -> float:
        """The estimated cost of one row's job, in USD."""
        return self.seconds(row) * self.per_second(row.model, row.resolution)

    def rows(self, rows: Iterable[ValidRow]) -> Estimate:
        """The estimate of `rows`, counting once the rows that are the very same job."""
        jobs = {row.identity: row for row in rows}
        return Estimate(
            usd=sum(self.row(row) for row in jobs.values()),
            seconds=sum(self.seconds(row) for row in jobs.values()),
            jobs=len(jobs),
        )
