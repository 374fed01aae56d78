"""Watching a chunk run until it has a report, and saying why when it never will.

Prefect 3.9 alone lets a chunked run hang or lose rows: `run_deployment` polls a child forever
and returns a Crashed one without a word; nothing on the server moves a Pending run whose worker
died; a Running run whose process died stays Running unless a zombie-run automation marks it
Crashed; a chunk run whose process starts while the server is away crashes at its first call.
So the parent watches each chunk run itself (`watch_chunk_run`) and ends each watch with a
`Verdict`: the chunk's report, or what went wrong and whether running the chunk again can help.
`flows/engine/chunks.py` runs a chunk again when it can (free: its paid jobs are cached) and reports
its rows lost, with what to do, when it cannot.

What the parent waits for, and how long (`SupervisionSettings`, `GROK_VIDEO_*` variables):

| verdict | after | setting (default) |
|---|---|---|
| run again: it ended Crashed or Failed, or its report cannot be read | at once | |
| run again: claimed by a worker (Pending) and never started | 300 s | `CHUNK_PENDING_TIMEOUT` |
| run again: Running without a heartbeat | 3 x the heartbeat frequency | `CHUNK_HEARTBEAT_TIMEOUT` |
| lost: no worker took it (Scheduled, Late) | 3600 s | `CHUNK_START_TIMEOUT` |
| lost: cancelled by someone else | at once | |
| lost: the Prefect API out of reach | 900 s | `SERVER_OUTAGE_TIMEOUT` |

Clocks restart when the Prefect API comes back from an outage: a chunk run could neither start
nor send heartbeats while it was away.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventOrder,
    EventResourceFilter,
)
from prefect.settings import get_current_settings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from prefect_grok_video.flows.engine.outage import ApiOutage, is_out_of_reach
from prefect_grok_video.flows.engine.slots import without_retries
from prefect_grok_video.report import RunReport
from prefect_grok_video.settings import ENV_PREFIX, read_env

__all__ = ["HEARTBEATS_MISSED", "SupervisionSettings", "Verdict", "watch_chunk_run"]

#: Heartbeats a running chunk run may miss before it is taken for dead (as the zombie-run
#: automation of deployments/automations.yaml does).
HEARTBEATS_MISSED = 3
#: Seconds between looks at a chunk run's state, and at its latest heartbeat.
POLL_SECONDS = 2.0
HEARTBEAT_CHECK_SECONDS = 10.0


class SupervisionSettings(BaseSettings):
    """How long a chunked run waits for its chunk runs, and how often it runs one again."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    chunk_retries: int = Field(
        default=2, ge=0, le=10,
        description="Times a chunk run that crashed, failed, or was stuck is run again "
        "(GROK_VIDEO_CHUNK_RETRIES).",
    )  # fmt: skip
    chunk_pending_timeout: float = Field(
        default=300.0, gt=0,
        description="Seconds a chunk run may stay Pending (claimed by a worker, not started) "
        "before it is taken for lost with its worker (GROK_VIDEO_CHUNK_PENDING_TIMEOUT).",
    )  # fmt: skip
    chunk_heartbeat_timeout: float | None = Field(
        default=None, gt=0,
        description="Seconds a Running chunk run may go without a heartbeat before it is taken "
        "for dead; default 3 x PREFECT_FLOWS_HEARTBEAT_FREQUENCY "
        "(GROK_VIDEO_CHUNK_HEARTBEAT_TIMEOUT).",
    )  # fmt: skip
    chunk_start_timeout: float = Field(
        default=3600.0, gt=0,
        description="Seconds a chunk run may wait for a worker to take it "
        "(GROK_VIDEO_CHUNK_START_TIMEOUT).",
    )  # fmt: skip
    server_outage_timeout: float = Field(
        default=900.0, gt=0,
        description="Seconds a run waits for an unreachable Prefect API before it gives up on "
        "what needs it (GROK_VIDEO_SERVER_OUTAGE_TIMEOUT).",
    )  # fmt: skip

    @classmethod
    def from_env(cls) -> SupervisionSettings:
        """The settings of this process's environment (`ConfigurationError` if one is bad)."""
        return read_env(cls)

    def heartbeat_timeout(self) -> float | None:
        """Seconds without a heartbeat after which a chunk run is dead; None when flow runs
        send none (Prefect's heartbeats turned off, and no timeout set)."""
        if self.chunk_heartbeat_timeout is not None:
            return self.chunk_heartbeat_timeout
        frequency = get_current_settings().flows.heartbeat_frequency
        return None if frequency is None else HEARTBEATS_MISSED * frequency


@dataclass(frozen=True)
class Verdict:
    """How watching a chunk run ended: its report, or why there is none."""

    report: RunReport | None = None
    #: Why the chunk run has no report (None when it has one).
    problem: str | None = None
    #: Whether running the chunk again can help.
    retry: bool = True


async def watch_chunk_run(
    client: PrefectClient,
    run_id: UUID,
    settings: SupervisionSettings,
    outage: ApiOutage,
    *,
    poll_seconds: float = POLL_SECONDS,
    heartbeat_check_seconds: float = HEARTBEAT_CHECK_SECONDS,
) -> Verdict:
    """Watch chunk run `run_id` until it has a report, or until it is clear it never will."""
    heartbeat_timeout = settings.heartbeat_timeout()
    last_heartbeat: datetime | None = None
    checked_heartbeat = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            with without_retries():  # an outage is told at once, and waited out here
                run = await client.read_flow_run(run_id)
        except Exception as exc:
            if not is_out_of_reach(exc):
                raise
            outage.failed(exc)
            if outage.exceeded:
                return Verdict(problem=f"the Prefect API was out of reach for "
                               f"{outage.away_for:.0f} s", retry=False)  # fmt: skip
            await asyncio.sleep(poll_seconds)
            continue
        outage.reached()
        state = run.state
        if state is None:
            await asyncio.sleep(poll_seconds)
            continue
        kind, since = state.type, outage.since(state.timestamp)
        if kind == StateType.COMPLETED:
            try:
                report = await state.aresult(raise_on_failure=False)
            except Exception as exc:  # its result file is missing or unreadable
                return Verdict(problem=f"completed, but its report could not be read ({exc})")
            if isinstance(report, RunReport):
                return Verdict(report=report)
            return Verdict(problem="completed without a report")
        if kind in (StateType.CRASHED, StateType.FAILED):
            reason = f": {state.message}" if state.message else ""
            return Verdict(problem=f"ended {state.name}{reason}")
        if kind == StateType.CANCELLED:
            return Verdict(problem="was cancelled", retry=False)
        if kind == StateType.PENDING and since > settings.chunk_pending_timeout:
            return Verdict(
                problem=f"was claimed by a worker {since:.0f} s ago and never started (its "
                "worker is gone, or its process died before it could say so)"
            )
        if kind == StateType.SCHEDULED and outage.since(run.created or state.timestamp) > (
            settings.chunk_start_timeout
        ):
            return Verdict(problem=f"waited {since:.0f} s for a worker of its pool, and none "
                           "took it", retry=False)  # fmt: skip
        if kind == StateType.CANCELLING and since > settings.chunk_pending_timeout:
            return Verdict(problem=f"has been Cancelling for {since:.0f} s", retry=False)
        if kind == StateType.RUNNING and heartbeat_timeout is not None:
            if loop.time() - checked_heartbeat >= heartbeat_check_seconds:
                checked_heartbeat = loop.time()
                last_heartbeat = await _last_heartbeat(client, run_id, state.timestamp)
            alive = max(state.timestamp, last_heartbeat or state.timestamp)
            silent = outage.since(alive)
            if silent > heartbeat_timeout:
                return Verdict(problem=f"sent no heartbeat for {silent:.0f} s (its process is "
                               "gone)")  # fmt: skip
        await asyncio.sleep(poll_seconds)


async def _last_heartbeat(
    client: PrefectClient, run_id: UUID, running_since: datetime
) -> datetime | None:
    """When flow run `run_id` last sent a heartbeat (None: none since it started running, or
    the API is away: the next look will tell)."""
    query = EventFilter(
        event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        occurred=EventOccurredFilter(
            # Prefect's `DateTime` is a datetime it validates from any aware datetime.
            since=running_since - timedelta(seconds=5),  # type: ignore[arg-type]
            until=datetime.now(timezone.utc) + timedelta(minutes=5),  # type: ignore[arg-type]
        ),
        order=EventOrder.DESC,
    )
    try:
        page = await client.read_events(filter=query, limit=1)
    except Exception as exc:
        if not is_out_of_reach(exc):
            raise
        return None
    return page.events[0].occurred if page.events else None
