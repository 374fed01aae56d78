"""The account of a run: one `ItemResult` per manifest row, and the `RunReport` around them.

Both are plain pydantic models, JSON-serialisable, holding no secret and no data URL body, so
they can be returned by flows, written to a file with `--report`, and turned into artifacts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, computed_field

from prefect_grok_video.models import USD_PER_TICK

__all__ = ["ITEM_STATUSES", "PAID_BY", "ItemError", "ItemResult", "ItemStatus", "RunReport"]

ItemStatus = Literal[
    "succeeded", "failed", "moderated", "expired", "timed_out", "invalid", "unknown",
    "upstream_failed", "skipped",
]  # fmt: skip
#: Every outcome a row can end with, in the order reports list them.
ITEM_STATUSES: tuple[ItemStatus, ...] = get_args(ItemStatus)

#: Who paid for a row's job, by `ItemResult.paid_by_this_run` (empty: no job was paid for).
PAID_BY: dict[bool | None, str] = {True: "this run", False: "earlier run", None: ""}

#: What to do about each unsuccessful outcome, for summaries and the command line.
NEXT_STEPS: dict[str, str] = {
    "failed": "fix the input the error names (a job failing with service_unavailable or "
    "internal_error was already resubmitted up to max_resubmits times)",
    "moderated": "the result did not pass moderation: change the prompt or the clip",
    "expired": "the job expired at the service: run again with refresh to pay for a new one",
    "timed_out": "the job was still running at the deadline: run again (it resumes waiting on "
    "the same request_id and pays nothing) or raise wait_timeout",
    "invalid": "fix the row as its error says, then run again; nothing was paid for it",
    "unknown": "a submit was sent but no answer came, so a job may exist and be billed: check "
    "the provider's console; run again with refresh only if no job was made",
    "upstream_failed": "the row its video comes from (video: @<id>) did not succeed, so nothing "
    "was paid for it: deal with that row, then run again",
    "skipped": "not submitted: the run's spend cap was reached; run again with a higher "
    "max_cost to go on (what was done is not paid for again)",
}


class ItemError(BaseModel):
    """Why a row did not succeed: a short machine-readable code and a message for people."""

    code: str
    message: str
    field: str | None = None


class ItemResult(BaseModel):
    """What happened to one manifest row.

    A run holds one per row until its report is made, so every `ItemResult` shares one set of
    field names as its `model_fields_set` (pydantic gives each model its own: 2.3 KB of a 3.8 KB
    result, measured). So `model_dump(exclude_unset=True)` returns every field.
    """

    id: str
    row: int
    status: ItemStatus
    action: str | None = Field(default=None, description="generate, edit or extend.")
    source: str = Field(
        description="The input video as given (a data URL is summarised; @<id>: another row's "
        "result; empty for a generation)."
    )
    upstream: str | None = Field(
        default=None, description="The id of the row whose result is this row's video."
    )
    image: str | None = Field(default=None, description="The still of an image-to-video row.")
    prompt: str | None = None
    duration: int | None = Field(default=None, description="Seconds of new video asked for.")
    aspect_ratio: str | None = None
    resolution: str | None = None
    model: str | None = None
    request_id: str | None = None
    attempts: int = Field(default=0, description="Paid submissions made for this row.")
    output: str | None = Field(default=None, description="Path or URI of the downloaded file.")
    size: int | None = None
    sha256: str | None = None
    thumbnail: str | None = Field(
        default=None,
        description="Path of the poster (the first, middle and last frames side by side, "
        "<id>.jpg beside the video); None when none could be made.",
    )
    video_seconds: float | None = Field(default=None, description="Length of the result.")
    video_url: str | None = Field(default=None, description="Temporary URL of the result.")
    url_expires_at: datetime | None = None
    cost_usd: float | None = None
    cost_ticks: int | None = Field(
        default=None, description="What the service reported the job cost, in 1e-10 USD."
    )
    error: ItemError | None = None
    finished_at: datetime | None = None
    paid_in_flow_run: str | None = Field(
        default=None,
        description="The flow run whose submission paid for this row's job (None: none was "
        "sent, or it was sent outside a flow run).",
    )
    paid_by_this_run: bool | None = Field(
        default=None,
        description="Whether this run paid for the row's job (False: an earlier run did and "
        "this one took it from the cache; None: no job was submitted).",
    )

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "__pydantic_fields_set__", _ITEM_FIELDS)


#: The field names every `ItemResult` shares as its set of fields set.
_ITEM_FIELDS: set[str] = set(ItemResult.model_fields)


class RunReport(BaseModel):
    """The whole run: every row's result, totals by status, time and cost."""

    manifest: str
    output: str
    items: list[ItemResult]
    started_at: datetime
    finished_at: datetime
    flow_run_id: str | None = None
    stopped_by: str | None = Field(
        default=None, description="Why the run stopped submitting before the end (a spend cap)."
    )

    def json_bytes(self, indent: int | None = 2) -> bytes:
        """The report as UTF-8 JSON, made in one pass: at 10,000 rows it is about 12 MB, and
        the run's end should not hold it twice."""
        return self.__pydantic_serializer__.to_json(self, indent=indent)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> dict[str, int]:
        """Rows per status, every status present (zero when none)."""
        counts = Counter(item.status for item in self.items)
        return {status: counts.get(status, 0) for status in ITEM_STATUSES}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def elapsed_seconds(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_cost_usd(self) -> float | None:
        """What the service reported the run cost, or None when it reported no usage."""
        return self._usd(self.items)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_by_action(self) -> dict[str, float]:
        """What the service reported, per action (only actions with reported costs)."""
        actions = dict.fromkeys(item.action or "extend" for item in self.items)
        costs = {
            action: self._ticks([i for i in self.items if (i.action or "extend") == action])
            for action in actions
        }
        return {action: ticks * USD_PER_TICK for action, ticks in costs.items() if ticks}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_this_run_usd(self) -> float | None:
        """What the service reported for the jobs this run paid for (None: no usage)."""
        return self._usd([item for item in self.items if item.paid_by_this_run])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_earlier_runs_usd(self) -> float | None:
        """What the service reported for jobs earlier runs paid for, which this run took
        from the cache (None: no usage)."""
        return self._usd([item for item in self.items if item.paid_by_this_run is False])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_paid_earlier(self) -> int:
        """Rows whose job an earlier run paid for (taken from the cache)."""
        return sum(item.paid_by_this_run is False for item in self.items)

    @classmethod
    def _usd(cls, items: list[ItemResult]) -> float | None:
        ticks = cls._ticks(items)
        return None if ticks is None else ticks * USD_PER_TICK

    @staticmethod
    def _ticks(items: list[ItemResult]) -> int | None:
        """The sum of reported costs, exact in ticks (rows that share a job count it once)."""
        by_job = {
            item.request_id or f"row-{item.row}": item.cost_ticks
            for item in items
            if item.cost_ticks is not None
        }
        return sum(by_job.values()) if by_job else None

    @property
    def all_succeeded(self) -> bool:
        """Whether every row succeeded."""
        return all(item.status == "succeeded" for item in self.items)

    @property
    def succeeded(self) -> list[ItemResult]:
        """The rows that succeeded, in manifest order: each has its `output` file."""
        return [item for item in self.items if item.status == "succeeded"]

    @property
    def failed(self) -> list[ItemResult]:
        """The rows that did not succeed, whatever their status (failed, moderated, expired,
        unknown, ...), in manifest order: each has its `error` (`NEXT_STEPS` says what to do)."""
        return [item for item in self.items if item.status != "succeeded"]

    def cost_line(self) -> str | None:
        """What the service reported, and what of it this run paid, e.g. `$4.76 reported by
        the service: $0.00 paid by this run, $4.76 by earlier runs (12 rows from the cache)`;
        None when the service reported no cost."""
        total = self.total_cost_usd
        if total is None:
            return None
        line = f"${total:.2f} reported by the service: ${self.cost_this_run_usd or 0:.2f} paid "
        line += "by this run"
        if self.rows_paid_earlier:
            line += (f", ${self.cost_earlier_runs_usd or 0:.2f} by earlier runs "
                     f"({self.rows_paid_earlier} rows from the cache)")  # fmt: skip
        return line

    def summary_line(self) -> str:
        """One line counting outcomes, e.g. `4 of 5 rows succeeded; 1 failed`."""
        totals = self.totals
        others = [f"{n} {status}" for status, n in totals.items() if n and status != "succeeded"]
        line = f"{totals['succeeded']} of {len(self.items)} rows succeeded"
        return f"{line}; {', '.join(others)}" if others else line
