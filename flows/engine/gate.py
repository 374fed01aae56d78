"""The submission gate: this run's pace, and the Prefect global concurrency limit every run shares.

Each paid submission passes two checks, one submission at a time:

1. a local `Pacer` spaces this run's submissions a little more than `1 / submit_rate` seconds
   apart (exact and free, so one run never trips the service's own limit);
2. a Prefect global concurrency limit with slot decay (default name `grok-video-submit`) keeps
   all runs that share a Prefect server under one rate. The gate takes its slots in batches of
   `BATCH_SECONDS` worth (`occupy=k` of a limit of k slots decaying at d per second), so it asks
   the server once per batch instead of once per submission: Prefect's `rate_limit` is a slow
   pacer on its own (see DESIGN.md and benchmarks/RESULTS.md). A batch asked for at time T may
   only be used until one interval (`HEADROOM / d`) before T + k/d, when the server would let
   another run take the next batch and submit at once; slots left over then are dropped, so
   runs never overlap their batches, a run's first submission is at least one interval after
   the last run's last one, and together they stay within d per second. Slots given back
   early keep that interval too.

A run gives its batch's unused slots back (`release`) as soon as it has nothing left to submit
(the flows call it then, not only at the end), and a run that expects a single submission
(`expected=1`) takes no batch ahead: many small runs at once (an `asyncio.gather` over
single-video flows) then take turns at the limit as fast as they submit, instead of each holding
it while it sets up. Runs waiting for the limit ask again sooner at first and less often the
longer they wait (`retry_delays`), so twenty of them do not keep a SQLite-backed server's
database locked.

The limit is created when missing, with `limit = k` slots decaying at `submit_rate` per second.
An existing limit is left as it is (an operator may have tuned it) and rules over every run.

The gate's logic is here; the server's side is a `SlotSource` (flows/engine/slots.py: Prefect's,
by default), and its clock and sleep can be replaced, so tests run it on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator

from prefect_grok_video.flows.engine.outage import DEFAULT_OUTAGE_SECONDS, ApiOutage
from prefect_grok_video.flows.engine.slots import (
    LimitInfo,
    PrefectSlots,
    SlotSource,
    SlotSourceError,
    SlotsRefused,
    SourceBusy,
)
from prefect_grok_video.logs import Logger
from prefect_grok_video.pacing import Clock, Pacer, Sleep

__all__ = ["DEFAULT_LIMIT_NAME", "GateClosedError", "SubmitGate"]

DEFAULT_LIMIT_NAME = "grok-video-submit"
#: Keeps the spacing a little wider than 1/rate, so that network jitter does not make two
#: submissions arrive closer together than the service's own limit allows (it would answer 429).
HEADROOM = 1.02
#: Seconds of submissions one batch of global slots covers: one Prefect API call per batch.
#: Long enough that a slow answer (a busy SQLite server takes up to seconds) costs little.
BATCH_SECONDS = 30.0
#: Seconds before asking a busy (or unreachable) server again the first time; each further
#: try waits twice as long, up to `BUSY_RETRY_MAX_SECONDS`.
BUSY_RETRY_SECONDS = 0.1
BUSY_RETRY_MAX_SECONDS = 1.0
#: The longest wait between asks refused because another run holds the limit's slots: what a
#: run waiting for another's early give-back loses at most, and what keeps a crowd of waiting
#: runs from asking the server many times a second each.
REFUSED_RETRY_MAX_SECONDS = 0.5
#: Seconds between looks at when this run's previous batch runs out: giving back unused
#: slots brings it forward.
EXPIRY_CHECK_SECONDS = 0.5


def retry_delays(first: float, longest: float) -> Iterator[float]:
    """Waits between tries: `first`, then twice as long each time, never over `longest`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, longest)


class GateClosedError(RuntimeError):
    """The run is stopping; this submission was never sent."""


class SubmitGate:
    """Admits one submission at a time, at most `rate` per second, here and across runs."""

    def __init__(
        self,
        rate: float,
        *,
        limit_name: str | None = DEFAULT_LIMIT_NAME,
        logger: Logger | None = None,
        slots: SlotSource | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        outage_seconds: float = DEFAULT_OUTAGE_SECONDS,
        expected: int | None = None,
    ) -> None:
        self.rate = rate
        #: Submissions this run expects to make (None: unknown); with one, `prepare` takes no
        #: batch ahead.
        self.expected = expected
        self.limit_name = limit_name
        self._source: SlotSource = slots if slots is not None else PrefectSlots()
        self._clock = clock
        self._sleep = sleep
        self._pacer = self._pacer_for(rate)
        self._batch = max(1, math.floor(rate * BATCH_SECONDS))
        self._decay = rate
        self._slots = 0
        self._slots_expire = 0.0
        self._asked = 0.0
        #: When this run's last submission went (None before the first).
        self._last_sent: float | None = None
        self._turn = asyncio.Lock()
        self._ready = limit_name is None
        self._closed = False
        self._preparing: asyncio.Future[None] | None = None
        self._logger = logger or logging.getLogger("prefect_grok_video")
        self._outage = ApiOutage(
            self._logger, outage_seconds, clock=clock,
            waiting="submissions wait for it, since the rate shared with other runs is kept "
            "there (polls and downloads go on)",
        )  # fmt: skip

    async def __aenter__(self) -> SubmitGate:
        """Start `prepare` in the background; leaving the block gives back unused slots."""
        self._preparing = asyncio.ensure_future(self.prepare())
        await asyncio.sleep(0)  # its first request goes out before the run sets up further
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._preparing is not None:
            if exc_info[0] is not None:  # a failed or cancelled run waits for no server
                self._preparing.cancel()
            await asyncio.gather(self._preparing, return_exceptions=True)
        await self.release()

    def close(self) -> None:
        """Admit no more submissions: waiting and later callers get `GateClosedError`."""
        self._closed = True

    async def prepare(self) -> None:
        """Get ready for the first submission before it comes: look the global limit up (or
        create it) and take a first batch of its slots while the run sets up, so the first
        submission need not wait for the Prefect API. Best effort: what fails here fails again,
        and is reported, when a submission waits."""
        async with self._turn:
            if self._closed:
                return
            try:
                if self.expected == 1:  # its one ask comes with its one submission
                    if not self._ready:
                        await self._ensure_limit()
                    return
                await self._hold_slots()
            except Exception as exc:  # `wait` meets it again, and reports it
                self._logger.debug("Submit gate not prepared ahead: %r", exc)

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Admit one submission, whose request goes on the wire as the block ends.

        Callers go through one at a time, the block included: what a submission does between
        its admission and the wire (the flows write its claim file there) delays the next one,
        which is spaced from the block's end. Otherwise a slow claim lets the next submission,
        admitted one interval later, reach the service first, and the one after it close
        behind: a 429 at a strict service.
        """
        async with self._turn:
            self._check_open()
            while True:
                await self._hold_slots()
                await self._pacer.wait()
                self._check_open()
                if self.limit_name is None:
                    break
                if self._clock() + self._pacer.interval <= self._slots_expire:
                    self._slots -= 1
                    break
                # Too close to the batch's end: the next run to take a batch may submit the
                # moment it runs out, so this submission waits for a fresh batch of its own.
                self._slots = 0
            try:
                yield
            finally:
                self._pacer.space_from_now()
                self._last_sent = self._clock()

    async def wait(self) -> None:
        """Wait until one more submission may be sent at once (`admit` with nothing to do)."""
        async with self.admit():
            pass

    async def release(self) -> None:
        """Give back the slots of the current batch this run will not use (its end), so the
        next run need not wait for them to decay. Best effort: a failure only makes others
        wait a little longer."""
        async with self._turn:  # not while a submission is taking its slot
            unused, self._slots = self._returnable(self._slots), 0
        if not unused or self.limit_name is None:
            return
        delays = retry_delays(BUSY_RETRY_SECONDS, BUSY_RETRY_MAX_SECONDS)
        async with self._source.connect() as slots:
            # Worth asking until the batch would have run out anyway.
            while self._clock() < self._slots_expire:
                try:
                    await slots.give_back(self.limit_name, unused, self._clock() - self._asked)
                except SourceBusy:
                    await self._sleep(next(delays))
                    continue
                except SlotSourceError as exc:
                    self._logger.debug("Could not give back %d slots: %s", unused, exc)
                    return
                # The next batch only waits for the slots kept to decay.
                kept = self._batch - unused
                self._slots_expire = self._asked + kept / self._decay
                return

    def _returnable(self, unused: int) -> int:
        """How many of the batch's `unused` slots may be given back: those the server would
        free after this run's last submission plus one interval, so that whoever takes the
        next batch cannot submit right behind it. (This run's pace is a little slower than
        the slots decay, so the batch's used slots alone may free the limit too early.)"""
        if self._last_sent is None or self._last_sent < self._asked:
            return unused
        busy_until = self._last_sent + self._pacer.interval - self._asked
        return max(0, min(unused, self._batch - math.ceil(busy_until * self._decay)))

    async def _hold_slots(self) -> None:
        """Know the global limit, and hold a live batch of its slots (when there is one)."""
        if not self._ready:
            await self._ensure_limit()
        if self.limit_name is not None and (
            self._slots <= 0 or self._clock() >= self._slots_expire
        ):
            await self._take_batch()

    def _check_open(self) -> None:
        if self._closed:
            raise GateClosedError("the run is stopping: no new submission is sent")

    def _pacer_for(self, rate: float) -> Pacer:
        return Pacer(rate / HEADROOM, clock=self._clock, sleep=self._sleep)

    async def _take_batch(self) -> None:
        """Occupy a batch of the global limit's slots, asking as soon as they can be free.

        Prefect's own `rate_limit`, and its client's retries, wait out each refusal for seconds
        (the server's estimate with random spread; a 2 s backoff when a busy SQLite server
        answers 503): measured, that cut a 20/s run to 5/s. Here the first ask comes when this
        run's previous batch has decayed, a refusal (423) is asked again within 1/decay
        seconds, a busy server (429/502/503, connection errors) within 0.1 s; either wait grows
        twice as long with each further try, up to `REFUSED_RETRY_MAX_SECONDS` and
        `BUSY_RETRY_MAX_SECONDS`. A server out of reach is told once (`ApiOutage`); one that
        stays away for `outage_seconds` leaves the run on its own pace.
        """
        assert self.limit_name is not None
        while (left := self._slots_expire - self._clock()) > 0:
            await self._sleep(min(left, EXPIRY_CHECK_SECONDS))
        interval = 1.0 / self._decay
        refusals = retry_delays(interval, max(REFUSED_RETRY_MAX_SECONDS, interval))
        busy_delays = retry_delays(BUSY_RETRY_SECONDS, BUSY_RETRY_MAX_SECONDS)
        async with self._source.connect() as slots:
            while True:
                asked = self._clock()
                try:
                    await slots.take(self.limit_name, self._batch)
                    self._outage.reached()
                    break
                except SlotsRefused as refused:
                    self._outage.reached()
                    await self._sleep(min(refused.retry_after, next(refusals)))
                    continue
                except SourceBusy as busy:
                    self._outage.failed(busy)
                if self._outage.exceeded:
                    self._logger.warning(
                        "The Prefect API did not grant slots of %r for %.0f s; this run goes "
                        "on at its own pace (%s/s)",
                        self.limit_name, self._outage.away_for, self.rate,
                    )  # fmt: skip
                    self.limit_name = None
                    return
                await self._sleep(next(busy_delays))
        self._slots = self._batch
        # From when the granted ask was sent, not answered: the server decays the batch from
        # a moment in between, so this run never uses a slot past the batch's own time.
        self._asked = asked
        self._slots_expire = asked + self._batch / self._decay

    async def _ensure_limit(self) -> None:
        """Create the global limit when missing; size batches to what an existing one allows."""
        assert self.limit_name is not None
        limit = await self._source.read(self.limit_name)
        if limit is None:
            if await self._source.create(self.limit_name, self._batch, self.rate):
                self._logger.info(
                    "Created global concurrency limit %r: %s submissions/s shared by all runs",
                    self.limit_name, self.rate,
                )  # fmt: skip
                limit = LimitInfo(slots=self._batch, decay=self.rate, active=True)
            else:  # another run won the race to create it: this one reads theirs
                limit = await self._source.read(self.limit_name)
        if limit is None:  # deleted meanwhile: pace this run only
            self.limit_name = None
        elif not limit.active or limit.decay <= 0:
            self._logger.warning(
                "Global concurrency limit %r is inactive or has no slot decay; submissions "
                "are paced by this run only (%s/s)",
                self.limit_name, self.rate,
            )  # fmt: skip
            self.limit_name = None
        else:
            self._batch = max(1, min(self._batch, limit.slots))
            self._decay = limit.decay
            if limit.decay < self.rate:
                self._pacer = self._pacer_for(limit.decay)
                self._logger.warning(
                    "Global concurrency limit %r allows %s submissions/s for all runs: this "
                    "run's submit_rate %s is capped by it",
                    self.limit_name, limit.decay, self.rate,
                )  # fmt: skip
        self._ready = True
