"""Virtual time for pacing tests: a clock, a sleep that advances it, and a runner.

`FakeTime.run(coro)` runs `coro` (and every task it starts) on the current asyncio loop; when
all of them are asleep, it moves the clock to the earliest sleeper's deadline and wakes that
one. A test then asserts exact times, however loaded the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Loop turns given to woken tasks before time moves on: enough for a wake-up to pass through
#: a few locks and futures (the gate's longest chain is under ten).
SETTLE_TURNS = 50
#: Virtual seconds after which a run is taken to be stuck (a loop that never ends).
HORIZON = 3600.0


class FakeTime:
    """A monotonic clock that only moves when every task is asleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        #: Seconds every sleeper wakes after its deadline (a busy event loop); 0 by default.
        self.lag = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        """The virtual time (seconds)."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of virtual time (plus `lag`)."""
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self.now + max(seconds, 0.0) + self.lag
        heapq.heappush(self._sleepers, (deadline, next(self._order), woken))
        await woken

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` to its end on virtual time; fail if it waits on anything but time."""
        task = asyncio.ensure_future(coro)
        horizon = self.now + HORIZON
        try:
            while True:
                for _ in range(SETTLE_TURNS):
                    await asyncio.sleep(0)
                if task.done():
                    return task.result()
                while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                    heapq.heappop(self._sleepers)
                if not self._sleepers:
                    raise RuntimeError("deadlock: nothing sleeps, yet the run is not done")
                deadline, _, woken = heapq.heappop(self._sleepers)
                if deadline > horizon:
                    raise RuntimeError(f"still running after {HORIZON} virtual seconds")
                self.now = max(self.now, deadline)
                woken.set_result(None)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
