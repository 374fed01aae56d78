"""Watching one chunk run (flows/engine/supervision.py): on the session's Prefect server, runs left
Running with and without heartbeats; with a client that loses the server for a while, what the
operator is told and how the clocks restart."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.states import Crashed, Pending, Running

from prefect_grok_video.flows.engine.outage import ApiOutage, is_out_of_reach
from prefect_grok_video.flows.engine.supervision import SupervisionSettings, watch_chunk_run

LOGGER = logging.getLogger("test-supervision")


def _outage(limit: float = 60) -> ApiOutage:
    return ApiOutage(LOGGER, limit, waiting="chunk runs go on by themselves, and this run "
                     "waits for it", quiet_seconds=0)  # fmt: skip


@flow(name="watched-chunk")
def watched_chunk() -> None:
    """Never run: its flow runs are made by hand, in the states a dead worker leaves."""


async def _run_in(state) -> object:
    async with get_client() as client:
        return await client.create_flow_run(watched_chunk, state=state)


async def test_a_running_chunk_run_without_heartbeats_is_taken_for_dead(prefect_api):
    run = await _run_in(Running())
    settings = SupervisionSettings(chunk_heartbeat_timeout=3.0)
    async with get_client() as client:
        verdict = await watch_chunk_run(client, run.id, settings, _outage(),
                                        poll_seconds=0.2, heartbeat_check_seconds=0.5)  # fmt: skip
    assert verdict.retry and verdict.report is None
    assert verdict.problem.startswith("sent no heartbeat for") and "process is gone" in (
        verdict.problem
    )
    # counted from when it started running (its state's time, a moment before this test's)
    silent = (datetime.now(timezone.utc) - run.state.timestamp).total_seconds()
    assert 3.0 <= silent < 10


async def test_a_chunk_run_that_sends_heartbeats_is_left_alone_until_it_ends(prefect_api):
    """Heartbeats every second for 12 s keep a Running run alive past its 8 s timeout (the
    server stores events a few seconds late); it then crashes, and that is the verdict."""
    run = await _run_in(Running())
    settings = SupervisionSettings(chunk_heartbeat_timeout=8.0)

    async def heartbeats() -> None:
        for _ in range(12):
            emit_event("prefect.flow-run.heartbeat",
                       resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"})  # fmt: skip
            await asyncio.sleep(1.0)
        async with get_client() as client:
            await client.set_flow_run_state(run.id, Crashed(message="gone at last"), force=True)

    beating = asyncio.ensure_future(heartbeats())
    started = time.monotonic()
    async with get_client() as client:
        verdict = await watch_chunk_run(client, run.id, settings, _outage(),
                                        poll_seconds=0.2, heartbeat_check_seconds=0.5)  # fmt: skip
    await beating
    assert verdict.problem == "ended Crashed: gone at last"
    assert time.monotonic() - started >= 12


class _Away:
    """A Prefect client whose server is away for its first `calls` reads, then shows a run
    that has been Pending since long before the outage."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        long_ago = datetime.now(timezone.utc) - timedelta(minutes=10)
        self.run = SimpleNamespace(
            state=Pending().model_copy(update={"timestamp": long_ago}), created=long_ago
        )

    async def read_flow_run(self, run_id):
        if self.calls > 0:
            self.calls -= 1
            raise httpx.ConnectError("All connection attempts failed")
        return self.run


async def test_an_outage_is_told_once_and_restarts_the_pending_clock(caplog):
    """The API is away for ten reads: one warning says so (not one per read), one line says
    it is back and after how long; the run's 10 minutes in Pending count only from then, as
    no worker could start it while the server was away."""
    settings = SupervisionSettings(chunk_pending_timeout=2.0)
    client = _Away(calls=10)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        started = time.monotonic()
        verdict = await watch_chunk_run(client, uuid4(), settings, _outage(),
                                        poll_seconds=0.1)  # type: ignore[arg-type]  # fmt: skip
        took = time.monotonic() - started
    assert "was claimed by a worker" in verdict.problem and verdict.retry
    assert 2.9 <= took < 6  # ten reads 0.1 s apart, then 2 s of the restarted clock
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER.name]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING" and "out of reach (ConnectError" in lines[0][1]
    assert "GROK_VIDEO_SERVER_OUTAGE_TIMEOUT" in lines[0][1]
    assert lines[1][0] == "INFO" and "answers again, after 1 s" in lines[1][1]


async def test_an_outage_longer_than_its_limit_ends_the_watch_for_good():
    client = _Away(calls=10**6)
    verdict = await watch_chunk_run(client, uuid4(), SupervisionSettings(),  # type: ignore[arg-type]
                                    _outage(0.5), poll_seconds=0.1)  # fmt: skip
    assert not verdict.retry
    assert verdict.problem.startswith("the Prefect API was out of reach for")


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://prefect.test/api")
    return httpx.HTTPStatusError(str(code), request=request, response=httpx.Response(code))


@pytest.mark.parametrize(
    ("error", "away"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (_status(503), True),
        (_status(404), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_the_api_being_away(error, away):
    assert is_out_of_reach(error) is away


def test_the_heartbeat_timeout_follows_prefects_heartbeat_frequency(monkeypatch):
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        assert SupervisionSettings().heartbeat_timeout() == 90
        assert SupervisionSettings(chunk_heartbeat_timeout=45).heartbeat_timeout() == 45
    monkeypatch.setenv("GROK_VIDEO_CHUNK_RETRIES", "11")
    with pytest.raises(Exception, match="GROK_VIDEO_CHUNK_RETRIES"):
        SupervisionSettings.from_env()
