"""Prefect's slot source (flows/engine/slots.py): its contract on a real Prefect server, and the
busy answers it must hand back at once, where Prefect's own client would pause first.

The second part guards what the gate relies on in Prefect's client, public as it is: a
response hook that raises ends the call before the retry loop's pause, and `max_retries = 0`
ends it on a dropped connection. Prefect's pause is made to raise, so these tests fail on the
spot (never slow down) when a Prefect release changes either.
"""

from __future__ import annotations

import types
import uuid

import anyio
import httpx
import prefect.client.base
import pytest
import respx
from fixtures_prefect import delete_limit
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from prefect_grok_video.flows.engine.gate import SubmitGate
from prefect_grok_video.flows.engine.slots import (
    BUSY_STATUSES,
    LimitInfo,
    PrefectSlots,
    SlotSourceError,
    SlotsRefused,
    SourceBusy,
)

API = "http://prefect.test/api"


class PrefectPaused(Exception):
    """Prefect's client went to sleep before returning an answer."""


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """Make the sleep of Prefect's retry loop raise `PrefectPaused`; the pauses it was asked
    for. Only the `anyio` that prefect.client.base sees is changed."""
    asked: list[float] = []

    async def pause(seconds: float) -> None:
        asked.append(seconds)
        raise PrefectPaused(f"Prefect's client paused {seconds} s before returning")

    anyio_with_pause = types.ModuleType("anyio")
    anyio_with_pause.__dict__.update(vars(anyio))
    anyio_with_pause.sleep = pause  # type: ignore[attr-defined]
    monkeypatch.setattr(prefect.client.base, "anyio", anyio_with_pause)
    return asked


@pytest.fixture
def api():
    """A mocked Prefect API at `API` (CSRF protection off, as on a default server)."""
    with temporary_settings({PREFECT_API_URL: API}), respx.mock(base_url=API) as router:
        router.get("/csrf-token").respond(422, json={"detail": "CSRF protection is disabled."})
        yield router


@pytest.mark.parametrize("status", sorted(BUSY_STATUSES))
async def test_a_busy_answer_comes_back_at_once_without_prefects_pause(api, pauses, status):
    take = api.post("/v2/concurrency_limits/increment").respond(status)
    give_back = api.post("/v2/concurrency_limits/decrement").respond(status)
    async with PrefectSlots().connect() as slots:
        with pytest.raises(SourceBusy):
            await slots.take("limit", 3)
        with pytest.raises(SourceBusy):
            await slots.give_back("limit", 3, held=1.0)
    assert pauses == []
    assert take.call_count == give_back.call_count == 1


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout])
async def test_a_dropped_connection_comes_back_at_once_without_a_retry(api, pauses, error):
    take = api.post("/v2/concurrency_limits/increment").mock(side_effect=error("dropped"))
    async with PrefectSlots().connect() as slots:
        with pytest.raises(SourceBusy):
            await slots.take("limit", 3)
    assert pauses == []
    assert take.call_count == 1


async def test_prefects_own_client_still_pauses_on_a_busy_answer(api, pauses):
    """Why the slot source has its hook: with no retries left, Prefect's client still sleeps
    2 s before it returns a 503. When this fails, that pause is gone and so may be the hook."""
    api.post("/v2/concurrency_limits/increment").respond(503)
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
        async with get_client() as client:
            with pytest.raises(PrefectPaused):
                await client.increment_concurrency_slots(["limit"], 3, "rate_limit")
    assert pauses and pauses[0] >= 1.0


async def test_a_refusal_carries_the_servers_retry_after_and_other_errors_are_errors(api, pauses):
    api.post("/v2/concurrency_limits/increment").respond(423, headers={"Retry-After": "2.5"})
    api.post("/v2/concurrency_limits/decrement").respond(422, json={"detail": "bad"})
    async with PrefectSlots().connect() as slots:
        with pytest.raises(SlotsRefused) as refused:
            await slots.take("limit", 3)
        with pytest.raises(SlotSourceError, match="422"):
            await slots.give_back("limit", 3, held=1.0)
    assert refused.value.retry_after == 2.5
    assert pauses == []


@pytest.fixture
async def limit_name(prefect_api):
    """A limit name of this test's own on the real Prefect server, deleted afterwards."""
    name = f"test-slots-{uuid.uuid4().hex[:8]}"
    yield name
    await delete_limit(name)


async def test_the_prefect_slot_source_on_a_real_server(limit_name):
    source = PrefectSlots()
    assert await source.read(limit_name) is None
    # Decaying a slot per 100 s: nothing decays while the test runs, however slow the server.
    assert await source.create(limit_name, 5, 0.01) is True
    assert await source.create(limit_name, 5, 0.01) is False
    assert await source.read(limit_name) == LimitInfo(slots=5, decay=0.01, active=True)
    async with source.connect() as slots:
        await slots.take(limit_name, 5)
        with pytest.raises(SlotsRefused) as refused:
            await slots.take(limit_name, 1)
        assert refused.value.retry_after > 0
        await slots.give_back(limit_name, 3, held=0.5)
        await slots.take(limit_name, 3)  # freed at once, not after 300 s of decay
        with pytest.raises(SlotsRefused):
            await slots.take(limit_name, 1)


async def test_a_gate_on_a_real_server_takes_a_batch_and_gives_back_what_it_did_not_use(
    limit_name,
):
    gate = SubmitGate(1.0, limit_name=limit_name)
    for _ in range(2):
        await gate.wait()
    async with get_client() as client:
        taken = await client.read_global_concurrency_limit_by_name(limit_name)
        await gate.release()
        left = await client.read_global_concurrency_limit_by_name(limit_name)
    assert (taken.limit, taken.slot_decay_per_second) == (30, 1.0)
    assert taken.active_slots >= 20  # the batch of 30, less what decayed meanwhile
    assert left.active_slots <= 3  # the 28 unused are back
