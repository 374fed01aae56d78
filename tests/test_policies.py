"""The retry and polling schedules, driven with a controlled clock."""

from __future__ import annotations

import pytest

from prefect_grok_video import policies
from prefect_grok_video.policies import PollPolicy, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(policies.time, "monotonic", clock)
    return clock


def test_retry_backoff_doubles_up_to_its_cap():
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=4, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]


def test_retry_after_wins_but_is_capped():
    policy = RetryPolicy(max_retry_after=30, jitter=0)
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(1, retry_after=3600) == 30


def test_retry_is_bounded_in_count_and_time():
    policy = RetryPolicy(max_attempts=3, max_elapsed=10)
    assert policy.allows(2, elapsed=1, delay=1)
    assert not policy.allows(3, elapsed=1, delay=1)
    assert not policy.allows(1, elapsed=9.5, delay=1)


def _simulate(
    clock, policy: PollPolicy, latency: float, progress: bool, history=None
) -> tuple[int, float]:
    """Polls and detection delay for a job finishing `latency` s after submission, given the
    latencies of earlier jobs (`history`)."""
    tracker = policy.tracker(started=clock.now, history=history)
    start = clock.now
    clock.now += tracker.first_delay()
    polls = 0
    while True:
        polls += 1
        elapsed = clock.now - start
        if elapsed >= latency:
            tracker.finished()
            return polls, elapsed - latency
        clock.now += tracker.next_delay(100 * elapsed / latency if progress else None)


@pytest.mark.parametrize("latency", [30, 90, 300])
def test_with_progress_a_job_is_seen_soon_after_it_ends_with_few_polls(clock, latency):
    polls, late = _simulate(clock, PollPolicy(), latency, progress=True)
    assert polls <= 6
    assert late <= 0.1 * latency


@pytest.mark.parametrize("latency", [30, 90, 300])
def test_without_progress_the_gap_is_bounded_by_max_interval(clock, latency):
    policy = PollPolicy()
    polls, late = _simulate(clock, policy, latency, progress=False)
    assert late <= policy.max_interval
    assert polls <= 3 + latency / policy.min_interval  # bounded, and far fewer in practice
    assert polls <= 20


def test_progress_that_jumps_late_is_still_seen_within_the_jobs_age(clock):
    policy = PollPolicy(first_poll=5)
    tracker = policy.tracker(started=clock.now)
    clock.now += tracker.first_delay()
    # 1 % after 5 s predicts ~500 s, but the next poll comes no later than the job's age allows
    assert tracker.next_delay(1) <= max(policy.max_interval, 5)


def test_retry_after_stretches_a_poll_gap(clock):
    tracker = PollPolicy().tracker(started=clock.now)
    assert tracker.next_delay(None, retry_after=12) >= 12


def test_a_resumed_wait_polls_at_once(clock):
    tracker = PollPolicy(first_poll=5).tracker(started=clock.now - 60)
    assert tracker.first_delay() == 0


def _peers(*latencies: float) -> policies.LatencyHistory:
    history = policies.LatencyHistory()
    for latency in latencies:
        history.add(latency)
    return history


@pytest.mark.parametrize("latency", [30, 90, 300])
def test_without_progress_peers_latencies_aim_the_polls(clock, latency):
    peers = _peers(0.8 * latency, latency, 1.2 * latency)
    for share in (0.8, 0.9, 1.0, 1.1, 1.2):
        polls, late = _simulate(clock, PollPolicy(), share * latency, False, peers)
        assert polls <= 9, share
        assert late <= 0.1 * share * latency, share


def test_without_progress_and_without_peers_the_backoff_still_rules(clock):
    few = _peers(100, 100)  # too few to go by
    tracker = PollPolicy().tracker(started=clock.now, history=few)
    assert tracker.first_delay() == PollPolicy().first_poll


def test_a_job_slower_than_all_its_peers_is_still_seen_within_a_quarter_of_its_age(clock):
    peers = _peers(30, 32, 35)
    polls, late = _simulate(clock, PollPolicy(), 120, False, peers)
    assert late <= 0.25 * 120 + 1
    assert polls <= 20


def test_a_job_quicker_than_its_peers_is_seen_within_their_shortest_latency(clock):
    peers = _peers(200, 220, 240)
    polls, late = _simulate(clock, PollPolicy(), 60, False, peers)
    assert late <= 200  # never later than the quickest peer's end (the price of no progress)
    assert polls == 1


def test_finished_jobs_join_the_history(clock):
    history = policies.LatencyHistory()
    for latency in (40, 50, 60):
        _simulate(clock, PollPolicy(), latency, False, history)
    low, high = history.span()
    assert 40 <= low <= 50 and 60 <= high <= 75  # within the last gap between two polls


def test_a_job_done_at_its_first_poll_says_nothing_of_latency(clock):
    """A job an earlier run submitted long ago is done at once: its age is no latency."""
    history = policies.LatencyHistory()
    for _ in range(3):
        tracker = PollPolicy().tracker(started=clock.now - 3600, history=history)
        clock.now += tracker.first_delay()
        tracker.finished()
    assert history.span() is None
