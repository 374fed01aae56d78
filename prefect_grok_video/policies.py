"""When the client tries a request again, and how often it polls a job. The one place for both.

Retries of a single request (`RetryPolicy`), bounded by `max_attempts` and `max_elapsed`:

==============================  ========  =====  =============================================
what happened                   submit    poll   why
==============================  ========  =====  =============================================
429 Too Many Requests           retry     retry  no job was made; waits `Retry-After`
could not connect, connect      retry     retry  nothing was sent
timeout, no free connection
request body not fully sent     retry     retry  the service cannot act on half a request
500, 502, 503                   retry     retry  answered before a job was accepted
504 Gateway Timeout             NEVER     retry  a gateway gave up waiting: the service may
                                                 have accepted the job (outcome unknown)
sent, then no answer (read      NEVER     retry  a job may exist and be billed:
timeout, dropped connection,                     `SubmitOutcomeUnknownError`
a 2xx without request_id)
400, 401, 403, 404, 411, 413,   never     never  the same request fails the same way
422
==============================  ========  =====  =============================================

A job that *fails* (`failed` with `service_unavailable` or `internal_error`) is never retried by
the client: a new submission is a new paid job, decided by the pipeline (`max_resubmits`).

Polling (`PollPolicy`): the first poll comes `first_poll` seconds after the wait starts; after
that, when the service reports `progress`, the next poll is aimed just after the moment the job
should finish at its observed pace; without progress the interval grows geometrically from
`min_interval` by `backoff` up to `max_interval`. A `Retry-After` is always honoured.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from prefect_grok_video.errors import GrokVideoError
from prefect_grok_video.logs import Logger

__all__ = ["LatencyHistory", "PollPolicy", "PollTracker", "RetryPolicy", "retrying"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, one request is retried when that is safe."""

    max_attempts: int = 5
    #: Seconds from the first attempt after which no new attempt starts.
    max_elapsed: float = 120.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    #: A `Retry-After` above this is cut to it (a broken header must not stall a run for hours).
    max_retry_after: float = 60.0
    #: Random spread of each wait, as a fraction, so that many clients do not retry in step.
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempts count from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff_initial * 2.0 ** (attempt - 1), self.backoff_max)
        return float(base * (1 + random.uniform(-self.jitter, self.jitter)))

    def allows(self, attempt: int, elapsed: float, delay: float) -> bool:
        """Whether another attempt may start after `attempt` attempts and `elapsed` seconds."""
        return attempt < self.max_attempts and elapsed + delay <= self.max_elapsed


async def retrying(
    policy: RetryPolicy,
    logger: Logger,
    operation: str,
    attempt: Callable[[], Awaitable[T]],
) -> T:
    """Run `attempt` until it succeeds or fails in a way `policy` will not retry."""
    count, start = 0, time.monotonic()
    while True:
        count += 1
        try:
            return await attempt()
        except GrokVideoError as error:
            delay = policy.delay(count, getattr(error, "retry_after", None))
            if not error.retryable or not policy.allows(count, time.monotonic() - start, delay):
                raise
            logger.warning(
                "%s attempt %d failed (%s); retrying in %.1fs", operation, count, error, delay
            )
            await asyncio.sleep(delay)


@dataclass(frozen=True)
class PollPolicy:
    """How a job is polled until it ends. Defaults suit jobs of 30 s to 5 min."""

    #: Seconds from the start of the wait to the first poll.
    first_poll: float = 5.0
    #: Shortest and longest gap between two polls.
    min_interval: float = 1.0
    max_interval: float = 30.0
    #: Growth of the gap between polls when the service reports no progress.
    backoff: float = 1.5
    #: Aim this far past the estimated finish (a fraction of the time left), so a poll rarely
    #: lands just before the job ends.
    overshoot: float = 0.05

    def tracker(
        self, started: float | None = None, history: LatencyHistory | None = None
    ) -> PollTracker:
        """A fresh schedule for one job; `started` is its submit time (`time.monotonic()`);
        `history`, the latencies of its peers (a client keeps one for all its waits)."""
        return PollTracker(self, time.monotonic() if started is None else started, history)


class LatencyHistory:
    """How long recent jobs took from submission to `done`.

    When the service's answers carry no `progress`, a job is polled around the time its peers
    finished, at gaps that grow with its age, instead of on a blind backoff: for jobs like
    their peers (±20 %), that is about 8 polls and a few percent of delay, where the backoff
    alone takes up to 19 polls and 20 % (benchmarks/RESULTS.md).
    """

    #: Jobs seen before the history is trusted.
    MIN_JOBS = 3

    def __init__(self, size: int = 64) -> None:
        self._seen: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        """Record one job's latency."""
        if seconds > 0:
            self._seen.append(seconds)

    def span(self) -> tuple[float, float] | None:
        """The shortest and longest recent latency, once `MIN_JOBS` jobs were recorded."""
        if len(self._seen) < self.MIN_JOBS:
            return None
        return min(self._seen), max(self._seen)


@dataclass
class PollTracker:
    """The polling schedule of one job, fed with what each poll saw."""

    policy: PollPolicy
    started: float
    history: LatencyHistory | None = None
    _interval: float = 0.0
    _samples: list[tuple[float, float]] = field(default_factory=list)
    _last_poll: float | None = None

    #: Polls a job like its peers gets within the span of their latencies, at most.
    SPAN_POLLS = 6
    #: Smallest growth of the gap between two polls within that span (5 % of the job's age).
    SPAN_GROWTH = 1.05

    def first_delay(self) -> float:
        """Seconds to wait before the first poll (just before the quickest peer finished)."""
        first = self.policy.first_poll
        span = self.history.span() if self.history else None
        if span is not None:
            first = max(first, span[0] / self._growth(span))
        return max(0.0, first - (time.monotonic() - self.started))

    def finished(self) -> None:
        """Record that the last poll saw the job done: its latency joins the history when an
        earlier poll saw it pending (a job already done at the first poll, such as one
        submitted by an earlier run, says nothing of how long jobs take)."""
        if self.history is None or self._last_poll is None:
            return
        # The job ended between the previous poll and this one: count the middle.
        self.history.add((self._last_poll + time.monotonic()) / 2 - self.started)

    def _growth(self, span: tuple[float, float]) -> float:
        low, high = span
        return max(self.SPAN_GROWTH, float((high / low) ** (1 / self.SPAN_POLLS)))

    def next_delay(self, progress: float | None, retry_after: float | None = None) -> float:
        """Seconds to wait before the next poll, given the progress (0–100) the last one saw."""
        policy = self.policy
        now = time.monotonic()
        self._last_poll = now
        self._interval = (
            policy.min_interval
            if not self._interval
            else min(self._interval * policy.backoff, policy.max_interval)
        )
        delay = self._interval
        if progress is not None and 0 < progress < 100:
            self._samples.append((now, float(progress)))
            remaining = self._estimate_remaining(now, float(progress))
            if remaining is not None:
                # Trust the pace up to the job's own age, so a job whose progress jumps late
                # is still seen within about one elapsed time of finishing.
                ceiling = max(policy.max_interval, now - self.started)
                return self._honour(
                    min(max(remaining * (1 + policy.overshoot), policy.min_interval), ceiling),
                    retry_after,
                )
        span = self.history.span() if self.history else None
        if span is not None:
            # No progress to go by: poll at gaps that grow with the job's age, tightly while
            # it is as old as its peers were when they finished, loosely (a quarter of its age)
            # once it is older than all of them.
            age = now - self.started
            growth = self._growth(span)
            step = age * (growth - 1) if age < span[1] * growth else age / 4
            delay = max(step, span[0] / growth - age)
        return self._honour(min(max(delay, policy.min_interval), policy.max_interval), retry_after)

    @staticmethod
    def _honour(delay: float, retry_after: float | None) -> float:
        return delay if retry_after is None else max(delay, retry_after)

    def _estimate_remaining(self, now: float, progress: float) -> float | None:
        """Seconds until the job should finish, from the pace of its progress."""
        first_time, first_progress = self._samples[0]
        if len(self._samples) >= 2 and progress > first_progress:
            rate = (progress - first_progress) / (now - first_time)
        elif now > self.started:
            rate = progress / (now - self.started)
        else:
            return None
        return (100.0 - progress) / rate if rate > 0 else None
