"""Where the submit gate gets its shared slots: the interface it needs, and Prefect's.

The gate reads or creates a limit, and asks for or gives back k of its slots (`SlotSource`).
`PrefectSlots` is the one place in the project that talks to Prefect's global concurrency
limits, and it does so through Prefect's public API only:

- `read_global_concurrency_limit_by_name` and `create_global_concurrency_limit` on the
  ordinary client, Prefect's retries included (once per run: a pause costs little);
- `increment_concurrency_slots(mode="rate_limit")` and `release_concurrency_slots` on a client
  that hands a busy answer back at once, since the gate asks again sooner by itself.

Why that second client. Prefect's HTTP client (`_send_with_retry` in prefect/client/base.py,
Prefect 3.9.1) sleeps before it returns a 429, 502 or 503 answer, even on its last try: with
`PREFECT_CLIENT_MAX_RETRIES=0` it sleeps 2**1 s (with jitter), then returns the answer. A busy
SQLite server answers 503 often, and waiting that out cut a 20/s run to half its pace
(benchmarks/NOTES.md, item 1). Two public knobs avoid it without touching Prefect's internals:

- `get_client(httpx_settings={"event_hooks": ...})`: httpx runs response hooks inside
  `AsyncClient.send`, before Prefect's retry loop sees the status, and an exception that is not
  one of the transport errors Prefect retries passes straight through it. The hook raises
  `SourceBusy` on 429/502/503.
- settings with `client.max_retries = 0` around each call, so that a dropped connection or a
  timeout is raised at once too instead of being retried after 2, 4, 8... s.

Measured against a server answering 503 to everything (Prefect 3.9.1, loopback): the plain
`increment_concurrency_slots` with `PREFECT_CLIENT_MAX_RETRIES=0` returned after 1.98 s, the
hooked one after 0.065 s. The gate used to get there by sending through `client._client` with
an unbound `httpx.AsyncClient.send` and `_add_csrf_headers`, which a minor release can break
silently. So no private call is needed; tests/test_slots.py fails loudly if Prefect's client
starts sleeping before the hook (its retry sleep is made to raise), and also if the plain client
stops sleeping (the hook could then go).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.context import SettingsContext, get_settings_context
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import get_current_settings

__all__ = [
    "BUSY_STATUSES",
    "LimitInfo",
    "PrefectSlots",
    "SlotConnection",
    "SlotSource",
    "SlotSourceError",
    "SlotsRefused",
    "SourceBusy",
    "without_retries",
]

#: Answers of a Prefect server too busy to answer now (a locked SQLite database is a 503).
BUSY_STATUSES = frozenset({429, 502, 503})


class SourceBusy(Exception):
    """The source is busy or out of reach: ask again soon."""


class SlotsRefused(Exception):
    """The slots are taken (a 423): ask again after at most `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"slots taken; retry after {retry_after} s")
        self.retry_after = retry_after


class SlotSourceError(RuntimeError):
    """The source answered with an error that asking again will not cure."""


@dataclass(frozen=True)
class LimitInfo:
    """A shared limit as the gate needs it: its size, its slot decay, whether it applies."""

    slots: int
    decay: float
    active: bool


class SlotConnection(Protocol):
    """Asks for and gives back slots; raises `SourceBusy`, `SlotsRefused`, `SlotSourceError`."""

    async def take(self, name: str, slots: int, mode: str = "rate_limit") -> None:
        """Occupy `slots` of limit `name` (in `mode`: "rate_limit" or "concurrency"), or
        raise."""

    async def give_back(self, name: str, slots: int, held: float) -> None:
        """Free `slots` of limit `name`, occupied for `held` seconds, or raise."""


class SlotSource(Protocol):
    """The gate's view of a shared limit's server."""

    async def read(self, name: str) -> LimitInfo | None:
        """The limit `name`, or None when there is none."""

    async def create(self, name: str, slots: int, decay: float) -> bool:
        """Create limit `name`; False when it exists already (another run won the race)."""

    def connect(self) -> AbstractAsyncContextManager[SlotConnection]:
        """A connection for a series of asks (one per batch, not one per ask)."""


async def _raise_when_busy(response: httpx.Response) -> None:
    """Response hook: end the call on a busy answer before Prefect's client waits on it."""
    if response.status_code in BUSY_STATUSES:
        raise SourceBusy(f"HTTP {response.status_code}")


def without_retries() -> SettingsContext:
    """The current Prefect settings with `client.max_retries = 0`, to enter around one call."""
    settings = get_current_settings()
    client = settings.client.model_copy(update={"max_retries": 0})
    return SettingsContext(
        profile=get_settings_context().profile,
        settings=settings.model_copy(update={"client": client}),
    )


class _PrefectConnection:
    """Slot asks on one Prefect client that hands busy answers back at once."""

    def __init__(self, client: PrefectClient) -> None:
        self._client = client

    async def take(self, name: str, slots: int, mode: str = "rate_limit") -> None:
        """Occupy `slots` of limit `name`: in rate-limit mode they decay by themselves, in
        concurrency mode they stay until given back."""
        try:
            with without_retries():
                await self._client.increment_concurrency_slots(
                    [name],
                    slots,
                    mode,  # type: ignore[arg-type]
                )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:
                raise SlotsRefused(float(exc.response.headers.get("Retry-After") or 1.0)) from exc
            raise SlotSourceError(str(exc)) from exc
        except httpx.TransportError as exc:
            raise SourceBusy(repr(exc)) from exc

    async def give_back(self, name: str, slots: int, held: float) -> None:
        """Free `slots` of limit `name` before they decay."""
        try:
            with without_retries():
                # The server wants a positive occupancy (it averages them for limits without
                # decay); the clock may not have moved since the batch was taken.
                await self._client.release_concurrency_slots([name], slots, max(held, 0.001))
        except httpx.HTTPStatusError as exc:
            raise SlotSourceError(str(exc)) from exc
        except httpx.TransportError as exc:
            raise SourceBusy(repr(exc)) from exc


class PrefectSlots:
    """The global concurrency limits of the Prefect API in the current settings."""

    async def read(self, name: str) -> LimitInfo | None:
        """The limit `name`, or None when the server has none."""
        async with get_client() as client:
            try:
                limit = await client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                return None
        return LimitInfo(
            slots=limit.limit, decay=limit.slot_decay_per_second or 0.0, active=limit.active
        )

    async def create(self, name: str, slots: int, decay: float) -> bool:
        """Create limit `name`, active, with `slots` slots decaying at `decay` per second."""
        limit = GlobalConcurrencyLimitCreate(
            name=name, limit=slots, slot_decay_per_second=decay, active=True
        )
        async with get_client() as client:
            try:
                await client.create_global_concurrency_limit(limit)
            except ObjectAlreadyExists:
                return False
        return True

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[SlotConnection]:
        """One Prefect client for a series of asks: one connection, one CSRF token."""
        hooks = {"response": [_raise_when_busy]}
        async with get_client(httpx_settings={"event_hooks": hooks}) as client:
            yield _PrefectConnection(client)
