"""The submit gate on virtual time, against an in-memory shared limit with slot decay.

`FakeSlots` keeps one limit the way a Prefect server does in rate-limit mode: slots taken decay
at `decay` per second, an ask that does not fit is refused (423), slots given back are freed at
once. It can be made busy (every call refused as 429/503 would be) or slow to answer. The
Prefect implementation of the same interface is tested against a real server in test_slots.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest
from fake_time import FakeTime

from prefect_grok_video.flows.engine.gate import (
    BATCH_SECONDS,
    HEADROOM,
    GateClosedError,
    SubmitGate,
)
from prefect_grok_video.flows.engine.slots import (
    LimitInfo,
    SlotSourceError,
    SlotsRefused,
    SourceBusy,
)

NAME = "grok-video-submit"


class FakeSlots:
    """One shared limit on virtual time, with a record of every call."""

    def __init__(self, fake: FakeTime, limit: LimitInfo | None = None) -> None:
        self.fake = fake
        self.limit = limit
        self.active = 0.0
        self.updated = fake.now
        #: (time sent, slots, granted) of every ask for slots.
        self.asks: list[tuple[float, int, bool]] = []
        #: (time sent, slots, given back) of every give-back.
        self.give_backs: list[tuple[float, int, bool]] = []
        self.created: list[tuple[str, int, float]] = []
        self.reads = 0
        #: Every call before this time is answered "busy".
        self.busy_until = float("-inf")
        #: Seconds each ask takes to be answered.
        self.answer_delay = 0.0
        #: Give-backs are answered with this error.
        self.give_back_error: Exception | None = None

    def _active_now(self) -> float:
        assert self.limit is not None
        decayed = self.limit.decay * (self.fake.now - self.updated)
        return max(0.0, self.active - decayed)

    def _set_active(self, active: float) -> None:
        self.active, self.updated = active, self.fake.now

    async def read(self, name: str) -> LimitInfo | None:
        assert name == NAME
        self.reads += 1
        return self.limit

    async def create(self, name: str, slots: int, decay: float) -> bool:
        self.created.append((name, slots, decay))
        if self.limit is not None:
            return False
        self.limit = LimitInfo(slots=slots, decay=decay, active=True)
        return True

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeSlots]:
        yield self

    async def take(self, name: str, slots: int) -> None:
        assert self.limit is not None
        sent = self.fake.now
        if sent < self.busy_until:
            self.asks.append((sent, slots, False))
            raise SourceBusy("HTTP 503")
        await self.fake.sleep(self.answer_delay)
        fits = self._active_now() + slots <= self.limit.slots + 1e-9
        self.asks.append((sent, slots, fits))
        if not fits:
            raise SlotsRefused((self._active_now() + slots - self.limit.slots) / self.limit.decay)
        self._set_active(self._active_now() + slots)

    async def give_back(self, name: str, slots: int, held: float) -> None:
        assert held >= 0
        busy = self.fake.now < self.busy_until
        self.give_backs.append((self.fake.now, slots, not busy and not self.give_back_error))
        if busy:
            raise SourceBusy("HTTP 503")
        if self.give_back_error is not None:
            raise self.give_back_error
        self._set_active(max(0.0, self._active_now() - slots))


def new_gate(fake: FakeTime, slots: FakeSlots, rate: float, **options) -> SubmitGate:
    return SubmitGate(
        rate, limit_name=NAME, slots=slots, clock=fake.clock, sleep=fake.sleep, **options
    )


async def submit(fake: FakeTime, gate: SubmitGate, times: int) -> list[float]:
    """Pass `times` submissions through the gate one after another; when each went."""
    sent = []
    for _ in range(times):
        await gate.wait()
        sent.append(fake.now)
    return sent


def granted(slots: FakeSlots) -> list[float]:
    return [when for when, _, ok in slots.asks if ok]


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in pairwise(times)]


async def test_a_missing_limit_is_created_at_the_runs_rate_with_one_batch_of_slots():
    fake = FakeTime()
    slots = FakeSlots(fake)
    await fake.run(submit(fake, new_gate(fake, slots, 2.0), 1))
    assert slots.created == [(NAME, 60, 2.0)]
    assert slots.asks == [(fake.now, 60, True)]


async def test_one_ask_per_batch_of_thirty_seconds_worth_of_slots():
    """At 2/s a batch is 60 slots lasting 30 s; spaced 2 % wider than 1/rate, a batch serves
    59 submissions before it runs out, so 150 submissions take three asks."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    start = fake.now
    sent = await fake.run(submit(fake, new_gate(fake, slots, 2.0), 150))
    assert [(count, ok) for _, count, ok in slots.asks] == [(60, True)] * 3
    asked = granted(slots)
    assert asked[0] == start
    # Each batch is asked for once the previous one has decayed, and no sooner.
    assert all(BATCH_SECONDS <= gap <= BATCH_SECONDS + 1 for gap in gaps(asked))
    # Every submission falls inside a batch, and no batch serves more than its 60 slots.
    for batch_start in asked:
        used = [t for t in sent if batch_start <= t < batch_start + BATCH_SECONDS]
        assert 0 < len(used) <= 60
    assert len(sent) == 150


async def test_submissions_keep_the_pace_with_its_headroom():
    fake = FakeTime()
    sent = await fake.run(submit(fake, new_gate(fake, FakeSlots(fake), 4.0), 20))
    assert gaps(sent) == pytest.approx([HEADROOM / 4.0] * 19)


async def test_slots_expire_a_batch_after_the_ask_was_sent_not_answered():
    """A slow server grants the batch 2 s after it was asked for: the batch still runs out 30 s
    after the ask (the server decays it from then). Its last usable moment is one interval
    (0.51 s at 2/s) before that, since another run may take the next batch and submit at once:
    a submission at 29.4 s uses it; one at 29.6 s waits for a new batch, though 57 slots were
    left, asked for when this one has decayed (30 s) and granted 2 s later."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.answer_delay = 2.0
    gate = new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> list[float]:
        first = await submit(fake, gate, 2)
        await fake.sleep(start + 29.4 - fake.now)
        inside = await submit(fake, gate, 1)
        await fake.sleep(start + 29.6 - fake.now)
        return first + inside + await submit(fake, gate, 1)

    sent = await fake.run(scenario())
    assert sent[0] == pytest.approx(start + 2.0)
    assert sent[2] == pytest.approx(start + 29.4)
    assert [when - start for when, _, _ in slots.asks] == pytest.approx([0.0, 30.0])
    assert sent[3] == pytest.approx(start + 32.0)


@pytest.mark.parametrize("lag", [0.0, 0.03])
async def test_two_runs_sharing_the_limit_never_submit_closer_than_one_interval(lag):
    """Two runs at the service's 1/s submit 150 rows each through one shared limit: however
    their batches hand over (each batch's last submission falls late in it, since the pace is
    2 % slower than the decay), no two submissions of either run are less than 1 s apart, and
    with a busy loop waking every sleeper late, still not. (Before the handover kept an
    interval, a run's last submission at 29.6 s and the other's first at 30 s were 0.4 s
    apart: a 429 at a strict service.)"""
    fake = FakeTime()
    fake.lag = lag
    slots = FakeSlots(fake)
    first, second = new_gate(fake, slots, 1.0), new_gate(fake, slots, 1.0)

    async def scenario() -> list[float]:
        sent = await asyncio.gather(submit(fake, first, 150), submit(fake, second, 150))
        return sorted(sent[0] + sent[1])

    sent = await fake.run(scenario())
    assert len(sent) == 300
    assert min(gaps(sent)) >= 1.0 - 1e-9
    assert len(granted(slots)) >= 10  # the runs took turns, batch after batch


async def test_a_run_that_gives_back_its_slots_keeps_one_interval_before_the_next_run():
    """A run submits 10 rows and ends: it gives back what the server would free only after its
    last submission plus one interval, so the next run, waiting for the limit, submits at
    least 1 s after it (it gave back all 20 unused slots of its 30 before, and the next run
    submitted 0.2 s behind it)."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    ending, waiting = new_gate(fake, slots, 1.0), new_gate(fake, slots, 1.0)
    start = fake.now

    async def scenario() -> tuple[list[float], list[float]]:
        done = await submit(fake, ending, 9)
        await fake.sleep(start + 9.8 - fake.now)  # its last row was ready late
        done += await submit(fake, ending, 1)
        later = asyncio.ensure_future(submit(fake, waiting, 1))
        await ending.release()
        return done, await later

    done, [next_first] = await fake.run(scenario())
    assert done[-1] == pytest.approx(start + 9.8)
    assert next_first >= done[-1] + 1.0 - 1e-9
    assert next_first <= done[-1] + 1.6  # still far sooner than the batch's 30 s
    assert [count for _, count, _ in slots.give_backs] == [19]  # of its batch's 30


async def test_a_refused_ask_is_repeated_within_one_decay_interval():
    """Two runs share the limit: the second one's asks are refused while the first one's batch
    lasts, and repeated every 1/decay seconds (not the server's longer Retry-After), so it
    gets its batch within 0.5 s of the first batch decaying."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    first, second = new_gate(fake, slots, 2.0), new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> list[float]:
        await submit(fake, first, 1)
        return await submit(fake, second, 1)

    [sent] = await fake.run(scenario())
    refused = [when for when, _, ok in slots.asks[1:] if not ok]
    assert len(refused) >= 50
    assert gaps(refused) == pytest.approx([0.5] * (len(refused) - 1))
    assert start + BATCH_SECONDS <= granted(slots)[1] <= start + BATCH_SECONDS + 0.5
    assert sent == granted(slots)[1]


async def test_a_busy_server_is_asked_again_after_a_tenth_of_a_second_then_less_often():
    """0.1 s, then twice as long each time up to 1 s: a server whose database is locked by
    many runs' asks gets fewer of them."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    start = fake.now
    slots.busy_until = start + 3.0
    [sent] = await fake.run(submit(fake, new_gate(fake, slots, 2.0), 1))
    times = [when - start for when, _, _ in slots.asks]
    assert times == pytest.approx([0, 0.1, 0.3, 0.7, 1.5, 2.5, 3.5])
    assert sent == pytest.approx(start + 3.5)


async def test_a_long_refusal_is_asked_again_less_often_up_to_half_a_second():
    """At 10/s the first refused ask is repeated after 0.1 s, then 0.2, 0.4, then every 0.5 s
    while another run holds the limit (its batch lasts 30 s): about 60 asks, not 300."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    first, second = new_gate(fake, slots, 10.0), new_gate(fake, slots, 10.0)

    async def scenario() -> list[float]:
        await submit(fake, first, 1)
        return await submit(fake, second, 1)

    await fake.run(scenario())
    refused = [when for when, _, ok in slots.asks[1:] if not ok]
    assert gaps(refused)[:4] == pytest.approx([0.1, 0.2, 0.4, 0.5])
    assert gaps(refused)[3:] == pytest.approx([0.5] * (len(refused) - 4))
    assert 55 <= len(refused) <= 62


async def test_one_submission_runs_at_once_take_turns_as_fast_as_they_submit():
    """Twenty one-row runs at once at 10/s (an `asyncio.gather` over single-video flows): each
    takes its batch only when its submission is ready and gives the rest back right after it
    (as the flows do once every job is submitted), so together they submit within about 5 s,
    still 1/rate apart. (Taking a batch ahead, each held the limit while it set up.)"""
    fake = FakeTime()
    slots = FakeSlots(fake)
    start = fake.now

    async def one_row_run() -> float:
        async with new_gate(fake, slots, 10.0, expected=1) as gate:
            await fake.sleep(0.3)  # set-up: validation, the row's task run
            [sent] = await submit(fake, gate, 1)
            await gate.release()  # its one job is submitted: `JobRunner.settle`
            await fake.sleep(5.0)  # waiting for the job, downloading it
            return sent

    async def scenario() -> list[float]:
        return sorted(await asyncio.gather(*(one_row_run() for _ in range(20))))

    sent = await fake.run(scenario())
    assert min(gaps(sent)) >= HEADROOM / 10.0 - 1e-9
    assert sent[-1] - start < 5.0
    assert {count for _, count, _ in slots.give_backs} == {298}  # kept: one interval's worth
    assert all(when < start + 5.0 for when, _, _ in slots.give_backs)


async def test_a_run_expecting_one_submission_takes_no_batch_ahead():
    """Its one ask comes with its submission, so it holds the shared limit no longer than
    that; a run expecting more takes its first batch while it sets up."""
    fake = FakeTime()
    slots = FakeSlots(fake)

    async def scenario(expected: int) -> None:
        async with new_gate(fake, slots, 10.0, expected=expected):
            await fake.sleep(1.0)

    await fake.run(scenario(1))
    assert slots.asks == [] and slots.created == [(NAME, 300, 10.0)]
    await fake.run(scenario(2))
    assert [count for _, count, _ in slots.asks] == [300]


async def test_a_server_out_of_reach_is_told_once_then_leaves_the_run_on_its_own_pace(caplog):
    """The Prefect API stops answering: the gate keeps asking (after 0.1 s, then twice as long
    each time, up to every second) and says so once, after 5 s; after `outage_seconds` it goes
    on at the run's own pace, and says that too."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.busy_until = float("inf")
    gate = new_gate(fake, slots, 2.0, outage_seconds=60)
    start = fake.now
    with caplog.at_level(logging.INFO, logger="prefect_grok_video"):
        sent = await fake.run(submit(fake, gate, 5))
    asks = len(slots.asks)
    assert gaps([when for when, _, _ in slots.asks])[:5] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1])
    assert asks == pytest.approx(5 + 59, abs=2)  # 1.5 s to the fifth, then one a second
    assert slots.asks[-1][0] - start <= 60 + 1.1
    assert sent[0] - start == pytest.approx(60, abs=1.1)
    assert gaps(sent) == pytest.approx([HEADROOM / 2.0] * 4)
    assert gate.limit_name is None
    told = [r.getMessage() for r in caplog.records if "Prefect API" in r.getMessage()]
    assert len(told) == 2, told
    assert "out of reach (SourceBusy: HTTP 503): submissions wait for it" in told[0]
    assert "for up to 60 s (GROK_VIDEO_SERVER_OUTAGE_TIMEOUT)" in told[0]
    assert "did not grant slots" in told[1] and "its own pace" in told[1]
    await fake.run(submit(fake, gate, 3))
    assert len(slots.asks) == asks  # never asked again


async def test_a_server_away_for_a_while_pauses_submissions_and_says_so_twice(caplog):
    """Away for 20 s (a restart): the submission waits for it rather than break the shared
    rate, one line says the API is away, one that it is back; nothing goes alone."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    gate = new_gate(fake, slots, 2.0)
    start = fake.now
    slots.busy_until = start + 20.0
    with caplog.at_level(logging.INFO, logger="prefect_grok_video"):
        [sent] = await fake.run(submit(fake, gate, 1))
    assert start + 20.0 <= sent <= start + 21.0
    assert gate.limit_name == NAME
    told = [r.getMessage() for r in caplog.records if "Prefect API" in r.getMessage()]
    assert len(told) == 2 and "out of reach" in told[0], told
    assert told[1] == "The Prefect API answers again, after 20 s"


@pytest.mark.parametrize("next_run", ["this run", "another run"])
async def test_release_gives_back_unused_slots_and_brings_the_next_batch_forward(next_run):
    """A run that has submitted 5 of its 60 slots (the last at 2.04 s) gives back 54, keeping
    those that last until one interval after its last submission: the next batch, its own or
    another run's, waits for 6 slots to decay (3 s at 2/s), not 60 (30 s)."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    gate = new_gate(fake, slots, 2.0)
    following = gate if next_run == "this run" else new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> list[float]:
        await submit(fake, gate, 5)
        await gate.release()
        return await submit(fake, following, 1)

    [sent] = await fake.run(scenario())
    assert [(count, ok) for _, count, ok in slots.give_backs] == [(54, True)]
    assert granted(slots)[1] == sent == pytest.approx(start + 3.0)


async def test_release_asks_a_busy_server_again_until_the_batch_would_run_out():
    fake = FakeTime()
    slots = FakeSlots(fake)
    gate = new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> None:
        await submit(fake, gate, 1)
        slots.busy_until = fake.now + 0.55
        await gate.release()

    await fake.run(scenario())
    times = [when - start for when, _, _ in slots.give_backs]
    assert times == pytest.approx([0.0, 0.1, 0.3, 0.7])
    assert slots.give_backs[-1][1:] == (58, True)  # two kept: its one submission + 0.51 s


async def test_release_gives_up_quietly_when_the_server_refuses():
    """A give-back the server refuses costs others some waiting, never the run: it is not
    retried, and the run's next batch still waits for the whole batch to decay."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.give_back_error = SlotSourceError("HTTP 422")
    gate = new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> list[float]:
        await submit(fake, gate, 1)
        await gate.release()
        await gate.release()  # nothing left to give back: no call
        return await submit(fake, gate, 1)

    [again] = await fake.run(scenario())
    assert len(slots.give_backs) == 1
    assert again == pytest.approx(start + BATCH_SECONDS)


async def test_release_with_no_global_limit_or_nothing_unused_calls_nobody():
    fake = FakeTime()
    slots = FakeSlots(fake)
    alone = SubmitGate(2.0, limit_name=None, slots=slots, clock=fake.clock, sleep=fake.sleep)

    async def scenario() -> None:
        await submit(fake, alone, 3)
        await alone.release()
        await new_gate(fake, slots, 2.0).release()

    await fake.run(scenario())
    assert slots.asks == slots.give_backs == slots.created == []


async def test_close_fails_waiting_and_later_callers_without_taking_slots():
    fake = FakeTime()
    slots = FakeSlots(fake)
    gate = new_gate(fake, slots, 1.0)

    async def scenario() -> list[object]:
        waiting = [asyncio.ensure_future(gate.wait()) for _ in range(3)]
        await fake.sleep(0.5)
        gate.close()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        later = await asyncio.gather(gate.wait(), return_exceptions=True)
        return results + later

    first, *closed = await fake.run(scenario())
    assert first is None
    assert [type(result) for result in closed] == [GateClosedError] * 3
    assert len(slots.asks) == 1


async def test_an_existing_limit_with_a_lower_decay_caps_the_pace(caplog):
    fake = FakeTime()
    slots = FakeSlots(fake, LimitInfo(slots=10, decay=1.0, active=True))
    with caplog.at_level(logging.WARNING, logger="prefect_grok_video"):
        sent = await fake.run(submit(fake, new_gate(fake, slots, 5.0), 12))
    assert slots.created == []
    # Batches of the limit's 10 slots, lasting 10 s at its decay of 1/s.
    assert [count for _, count, ok in slots.asks if ok] == [10, 10]
    assert min(gaps(sent)) >= HEADROOM / 1.0 - 1e-9
    assert "is capped by it" in caplog.text


@pytest.mark.parametrize("limit", [
    LimitInfo(slots=10, decay=0.0, active=True),
    LimitInfo(slots=10, decay=1.0, active=False),
])  # fmt: skip
async def test_an_inactive_or_non_decaying_limit_leaves_the_run_on_its_own_pace(limit, caplog):
    fake = FakeTime()
    slots = FakeSlots(fake, limit)
    with caplog.at_level(logging.WARNING, logger="prefect_grok_video"):
        sent = await fake.run(submit(fake, new_gate(fake, slots, 5.0), 4))
    assert slots.asks == []
    assert gaps(sent) == pytest.approx([HEADROOM / 5.0] * 3)
    assert "paced by this run only" in caplog.text


async def test_prepare_takes_the_first_batch_so_the_first_submission_waits_for_nobody():
    """A slow server (1 s per answer): `prepare` meets it while the run sets up; the first
    submission, 5 s later, goes at once on the batch `prepare` took."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.answer_delay = 1.0
    gate = new_gate(fake, slots, 2.0)
    start = fake.now

    async def scenario() -> list[float]:
        await gate.prepare()
        await fake.sleep(5.0)
        return await submit(fake, gate, 3)

    sent = await fake.run(scenario())
    assert slots.created == [(NAME, 60, 2.0)]
    assert slots.asks == [(start, 60, True)]
    assert sent[0] == pytest.approx(start + 6.0)  # 1 s answer + 5 s set-up, no wait of its own


async def test_a_failed_prepare_is_quiet_and_the_submission_meets_the_error(caplog):
    """What `prepare` cannot do, the first submission tries again, and reports."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    gate = new_gate(fake, slots, 2.0)

    async def failing_read(name: str) -> LimitInfo | None:
        raise SlotSourceError("HTTP 500")

    slots.read = failing_read  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG):
        await fake.run(gate.prepare())
    assert "not prepared ahead" in caplog.text and "HTTP 500" in caplog.text
    with pytest.raises(SlotSourceError, match="HTTP 500"):
        await fake.run(gate.wait())


@pytest.mark.parametrize(("submissions", "given_back"), [(5, 52), (0, 60)])
async def test_the_gate_as_a_context_prepares_on_entry_and_gives_back_on_exit(
    submissions, given_back
):
    """Entering starts the preparation without waiting for it; leaving gives back what was not
    used (less what lasts until one interval after the last submission: the batch came 1 s
    after the ask, the fifth submission at 3.04 s), all of it when the run ends (or fails)
    before its first submission."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.answer_delay = 1.0
    start = fake.now

    async def scenario() -> None:
        async with new_gate(fake, slots, 2.0) as gate:
            assert fake.now == start  # entering does not wait for the server's answers
            await submit(fake, gate, submissions)

    await fake.run(scenario())
    assert [(count, ok) for _, count, ok in slots.asks] == [(60, True)]
    assert [(count, ok) for _, count, ok in slots.give_backs] == [(given_back, True)]


async def test_a_run_that_fails_while_the_gate_prepares_does_not_wait_for_the_server():
    """A server out of reach keeps `prepare` asking for up to a minute: a run that fails
    meanwhile leaves the gate at once."""
    fake = FakeTime()
    slots = FakeSlots(fake)
    slots.busy_until = float("inf")
    start = fake.now

    async def scenario() -> None:
        async with new_gate(fake, slots, 2.0):
            await fake.sleep(1.0)
            raise RuntimeError("the run broke")

    with pytest.raises(RuntimeError, match="the run broke"):
        await fake.run(scenario())
    assert fake.now - start < 2.0
    assert slots.give_backs == []  # it held no slots


async def test_a_limit_the_run_created_is_not_read_back_one_another_run_created_is():
    fake = FakeTime()
    slots = FakeSlots(fake)
    await fake.run(submit(fake, new_gate(fake, slots, 2.0), 1))
    assert (slots.reads, slots.created) == (1, [(NAME, 60, 2.0)])

    # Another run creates it at 1/s between this run's read and its create: this run reads
    # theirs and keeps to it.
    fake = FakeTime()
    raced = FakeSlots(fake)
    missing_first = raced.read

    async def read(name: str) -> LimitInfo | None:
        if raced.reads == 0:
            raced.reads += 1
            raced.limit = LimitInfo(slots=30, decay=1.0, active=True)
            return None
        return await missing_first(name)

    raced.read = read  # type: ignore[method-assign]
    sent = await fake.run(submit(fake, new_gate(fake, raced, 2.0), 3))
    assert raced.reads == 2
    assert gaps(sent) == pytest.approx([HEADROOM / 1.0] * 2)
