"""Spacing submissions evenly in one process, so a run stays under the service's rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["Clock", "Pacer", "Sleep"]

#: Seconds on a monotonic clock.
Clock = Callable[[], float]
#: Waits the given number of seconds.
Sleep = Callable[[float], Awaitable[object]]


class Pacer:
    """Hands out start times at most `rate` per second, first come first served.

    Each caller reserves the next free slot and sleeps until it, so N callers take
    (N - burst) / rate seconds, evenly spaced, with no busy waiting. A caller cancelled while
    it sleeps loses its slot (the rate is never exceeded, only under-used). `clock` and `sleep`
    are replaceable so tests can run it on virtual time.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        # The earliest time the next slot may start, kept `burst - 1` intervals in the past
        # at most, so that an idle pacer allows a burst.
        self._next = clock() - (burst - 1) * self.interval

    async def wait(self) -> None:
        """Wait for this caller's slot."""
        now = self._clock()
        slot = max(self._next, now - (self._burst - 1) * self.interval)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
        if self._burst == 1:
            # Woken late (a busy event loop)? Space the next caller from now, not from the
            # slot: two callers must never be released closer together than the interval.
            self.space_from_now()

    def space_from_now(self) -> None:
        """The last caller's slot really began only now (it had more to do before it went):
        the next caller waits one interval from here."""
        self._next = max(self._next, self._clock() + self.interval)
