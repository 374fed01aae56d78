"""The `Pacer` on virtual time: exact spacing, bursts, a late wake-up, a cancelled caller."""

from __future__ import annotations

import asyncio

import pytest
from fake_time import FakeTime

from prefect_grok_video.pacing import Pacer


def pacer(fake: FakeTime, rate: float, burst: int = 1) -> Pacer:
    return Pacer(rate, burst, clock=fake.clock, sleep=fake.sleep)


async def released(fake: FakeTime, pace: Pacer, callers: int) -> list[float]:
    """The times at which `callers` callers, all arriving now, are let through."""

    async def one() -> float:
        await pace.wait()
        return fake.now

    return list(await asyncio.gather(*(one() for _ in range(callers))))


@pytest.mark.parametrize("rate", [0.5, 4.0, 20.0])
async def test_callers_arriving_together_are_spaced_one_interval_apart(rate):
    fake = FakeTime()
    start = fake.now
    times = await fake.run(released(fake, pacer(fake, rate), 10))
    assert times == pytest.approx([start + i / rate for i in range(10)])


async def test_a_burst_goes_at_once_then_the_rest_one_interval_apart():
    fake = FakeTime()
    start = fake.now
    pace = pacer(fake, 5.0, burst=3)
    times = await fake.run(released(fake, pace, 7))
    assert times == pytest.approx([start] * 3 + [start + i / 5.0 for i in range(1, 5)])


async def test_an_idle_pacer_allows_a_burst_again_and_no_more():
    fake = FakeTime()
    pace = pacer(fake, 5.0, burst=3)

    async def scenario() -> list[float]:
        await released(fake, pace, 3)
        await fake.sleep(10.0)
        return await released(fake, pace, 5)

    start = fake.now + 10.0
    times = await fake.run(scenario())
    assert times == pytest.approx([start] * 3 + [start + 0.2, start + 0.4])


async def test_sequential_callers_keep_the_spacing():
    fake = FakeTime()
    pace = pacer(fake, 2.0)

    async def scenario() -> list[float]:
        times = []
        for _ in range(4):
            await pace.wait()
            times.append(fake.now)
        return times

    start = fake.now
    assert await fake.run(scenario()) == pytest.approx([start, start + 0.5, start + 1, start + 1.5])


async def test_a_caller_woken_late_spaces_the_next_one_from_when_it_woke():
    """A busy loop wakes a caller 50 ms late: the next caller still comes a full interval
    after it, never 50 ms after it."""
    fake = FakeTime()
    pace = pacer(fake, 10.0)

    async def scenario() -> list[float]:
        await pace.wait()
        fake.lag = 0.05
        await pace.wait()
        late = fake.now
        fake.lag = 0.0
        await pace.wait()
        return [late, fake.now]

    start = fake.now
    late, after = await fake.run(scenario())
    assert late == pytest.approx(start + 0.15)
    assert after == pytest.approx(late + 0.1)


async def test_a_cancelled_caller_loses_its_slot():
    """The slot of a caller cancelled while it waits is not handed to anyone else: the rate is
    under-used, never exceeded."""
    fake = FakeTime()
    pace = pacer(fake, 1.0)

    async def scenario() -> list[float]:
        async def one() -> float:
            await pace.wait()
            return fake.now

        first, second, third = (asyncio.ensure_future(one()) for _ in range(3))
        await fake.sleep(0.5)
        second.cancel()
        fourth = asyncio.ensure_future(one())
        await asyncio.gather(second, return_exceptions=True)
        return [await first, await third, await fourth]

    start = fake.now
    assert await fake.run(scenario()) == pytest.approx([start, start + 2, start + 3])


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_pacer_needs_a_positive_rate_and_burst(rate, burst):
    with pytest.raises(ValueError):
        Pacer(rate, burst)
