"""The spend cap of a run (`max_cost`): what it has committed, and whether one more job fits.

A job is committed at its estimate (`prefect_grok_video.pricing`) right before it is paid for —
inside the submit task, after Prefect's cache found no earlier submission, so a job already
paid for is never refused — and at what the service reported once it has ended. A job found
already done (a rerun's) counts at its reported cost and is never refused. Once a job does not
fit, the cap is reached: no further job is submitted, and those rows end `skipped`.

So a run pays for at most the cap plus what jobs cost beyond their estimates (estimates err
high: see `pricing`), and a rerun with a higher cap goes on from there without paying again.
The rows of a chunked run share one cap through a Prefect global concurrency limit whose slots
are cents (`SharedBudget`); a run on its own keeps its count in memory (`LocalBudget`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from contextvars import ContextVar
from typing import Protocol

from prefect_grok_video.errors import GrokVideoError
from prefect_grok_video.flows.engine.slots import (
    PrefectSlots,
    SlotSource,
    SlotSourceError,
    SlotsRefused,
    SourceBusy,
)
from prefect_grok_video.logs import Logger

__all__ = [
    "Budget",
    "BudgetExceededError",
    "LocalBudget",
    "SharedBudget",
    "budget_limit_name",
    "run_budget",
]


class BudgetExceededError(GrokVideoError):
    """A job was not submitted: it would have taken the run past its spend cap."""


class Budget(Protocol):
    """A run's spend cap, in USD."""

    cap: float

    @property
    def reached(self) -> bool:
        """Whether a job was refused: no further one is submitted."""

    async def reserve(self, key: str, usd: float) -> bool:
        """Commit `usd` for the job `key` (once per key), unless that passes the cap."""

    async def settle(self, key: str | None, actual: float | None) -> None:
        """A job ended: its reservation (if any) becomes what the service reported."""

    async def release(self, key: str) -> None:
        """The job `key` was not paid for after all: free its reservation."""


#: The budget of the run in progress, seen by its submit tasks.
run_budget: ContextVar[Budget | None] = ContextVar("grok_video_budget", default=None)


class _Reservations:
    """What each job reserved, and the cap's state, common to both budgets."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self._reserved: dict[str, float] = {}
        self._reached = False

    @property
    def reached(self) -> bool:
        return self._reached

    def refuse(self) -> bool:
        self._reached = True
        return False


class LocalBudget(_Reservations):
    """A cap counted in this process (one run)."""

    def __init__(self, cap: float) -> None:
        super().__init__(cap)
        self.committed = 0.0
        self._lock = asyncio.Lock()

    async def reserve(self, key: str, usd: float) -> bool:
        async with self._lock:
            if key in self._reserved:
                return True
            if self._reached or self.committed + usd > self.cap + 1e-9:
                return self.refuse()
            self._reserved[key] = usd
            self.committed += usd
            return True

    async def settle(self, key: str | None, actual: float | None) -> None:
        async with self._lock:
            reserved = self._reserved.pop(key, 0.0) if key else 0.0
            self.committed += (reserved if actual is None else actual) - reserved

    async def release(self, key: str) -> None:
        async with self._lock:
            self.committed -= self._reserved.pop(key, 0.0)


def budget_limit_name(parent_flow_run_id: str) -> str:
    """The global concurrency limit a chunked run's cap is kept in."""
    return f"grok-video-budget-{parent_flow_run_id}"


def _cents(usd: float) -> int:
    return math.ceil(round(usd * 100, 6))


class SharedBudget(_Reservations):
    """A cap kept on the Prefect server, shared by the chunk runs of one run: a global
    concurrency limit of `cap` in cents, whose occupied slots are the cents committed."""

    #: Seconds to keep asking a busy server before counting a job as refused.
    BUSY_SECONDS = 120.0

    def __init__(
        self,
        name: str,
        cap: float,
        source: SlotSource | None = None,
        logger: Logger | None = None,
    ) -> None:
        super().__init__(cap)
        self.name = name
        self._source = source or PrefectSlots()
        self._logger = logger or logging.getLogger("prefect_grok_video")

    @classmethod
    async def create(cls, name: str, cap: float, source: SlotSource | None = None) -> SharedBudget:
        """The budget `name`, created on the server unless it exists (a retried parent)."""
        budget = cls(name, cap, source)
        await budget._source.create(name, max(1, _cents(cap)), decay=0.0)
        return budget

    async def _change(self, cents: int) -> bool:
        """Occupy (`cents` > 0) or free slots; False when the limit refuses."""
        if cents == 0:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.BUSY_SECONDS
        async with self._source.connect() as connection:
            while True:
                try:
                    if cents > 0:
                        await connection.take(self.name, cents, mode="concurrency")
                    else:
                        await connection.give_back(self.name, -cents, held=1.0)
                    return True
                except SlotsRefused:
                    return False
                except SourceBusy:
                    if loop.time() > deadline:
                        return False
                    await asyncio.sleep(0.2)
                except SlotSourceError as exc:
                    self._logger.warning("Spend cap %s: %s", self.name, exc)
                    return False

    async def reserve(self, key: str, usd: float) -> bool:
        if key in self._reserved:
            return True
        if self._reached or not await self._change(_cents(usd)):
            return self.refuse()
        self._reserved[key] = usd
        return True

    async def settle(self, key: str | None, actual: float | None) -> None:
        reserved = self._reserved.pop(key, 0.0) if key else 0.0
        difference = _cents(actual) - _cents(reserved) if actual is not None else 0
        if difference > 0 and not await self._change(difference):
            self._reached = True  # the service charged more than the cap has left
        elif difference < 0:
            await self._change(difference)

    async def release(self, key: str) -> None:
        reserved = self._reserved.pop(key, 0.0)
        await self._change(-_cents(reserved))
