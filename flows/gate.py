"""The submission gate: this run's pace, and the Prefect global concurrency limit every run shares.

Each paid submission passes two checks, one submission at a time:

1. a local `Pacer` spaces this run's submissions a little more than `1 / submit_rate` seconds
   apart (exact and free, so one run never trips the service's own limit);
2. a Prefect global concurrency limit with slot decay (default name `grok-video-submit`) keeps
   all runs that share a Prefect server under one rate. The gate takes its slots in batches of
   `BATCH_SECONDS` worth (`occupy=k` of a limit of k slots decaying at d per second), so it asks
   the server once per batch instead of once per submission: Prefect's `rate_limit` is a slow
   pacer on its own (see DESIGN.md and benchmarks/RESULTS.md). A batch asked for at time T may
   only be used until T + k/d, when the server would let another run take the next batch;
   slots left over then are dropped, so runs never overlap their batches and together stay
   within d per second.

The limit is created when missing, with `limit = k` slots decaying at `submit_rate` per second.
An existing limit is left as it is (an operator may have tuned it) and rules over every run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from prefect_grok_video.pacing import Pacer

__all__ = ["DEFAULT_LIMIT_NAME", "GateClosedError", "SubmitGate"]

DEFAULT_LIMIT_NAME = "grok-video-submit"
#: Keeps the spacing a little wider than 1/rate, so that network jitter does not make two
#: submissions arrive closer together than the service's own limit allows (it would answer 429).
HEADROOM = 1.02
#: Seconds of submissions one batch of global slots covers: one Prefect API call per batch.
#: Long enough that a slow answer (a busy SQLite server takes up to seconds) costs little.
BATCH_SECONDS = 30.0
#: Seconds the gate keeps asking a Prefect API that does not answer before going on alone.
UNREACHABLE_SECONDS = 60


#: Answers of a Prefect server too busy to answer now (a locked SQLite database is a 503).
_BUSY = (429, 502, 503)


async def _post_once(client: PrefectClient, path: str, body: dict) -> httpx.Response | None:
    """POST to the Prefect API once; None when the server is busy or out of reach.

    Prefect's client retries a busy server's 503 after a 2-second pause even when told not to
    retry; the gate asks again sooner by itself."""
    http = getattr(client, "_client", None)
    try:
        if not isinstance(http, httpx.AsyncClient):  # not the client this was written against
            response = await client.request("POST", path, json=body)  # type: ignore[arg-type]
        else:
            request = http.build_request("POST", path, json=body)
            if getattr(http, "enable_csrf_support", False):
                await http._add_csrf_headers(request)  # type: ignore[attr-defined]
            response = await httpx.AsyncClient.send(http, request)
    except httpx.TransportError:
        return None
    except httpx.HTTPStatusError as exc:  # from `client.request`
        response = exc.response
    return None if response.status_code in _BUSY else response


class GateClosedError(RuntimeError):
    """The run is stopping; this submission was never sent."""


class SubmitGate:
    """Admits one submission at a time, at most `rate` per second, here and across runs."""

    def __init__(
        self,
        rate: float,
        *,
        limit_name: str | None = DEFAULT_LIMIT_NAME,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.rate = rate
        self.limit_name = limit_name
        self._pacer = Pacer(rate / HEADROOM)
        self._batch = max(1, math.floor(rate * BATCH_SECONDS))
        self._decay = rate
        self._slots = 0
        self._slots_expire = 0.0
        self._asked = 0.0
        self._turn = asyncio.Lock()
        self._ready = limit_name is None
        self._closed = False
        self._logger = logger or logging.getLogger("prefect_grok_video")

    def close(self) -> None:
        """Admit no more submissions: waiting and later callers get `GateClosedError`."""
        self._closed = True

    async def wait(self) -> None:
        """Wait until one more submission may be sent (callers go through one at a time)."""
        async with self._turn:
            self._check_open()
            if not self._ready:
                await self._ensure_limit()
            while True:
                if self.limit_name is not None and (
                    self._slots <= 0 or time.monotonic() >= self._slots_expire
                ):
                    await self._take_batch()
                await self._pacer.wait()
                self._check_open()
                if self.limit_name is None:
                    return
                if time.monotonic() < self._slots_expire:
                    break
                self._slots = 0  # the batch ran out of time while pacing: take a fresh one
            self._slots -= 1

    async def release(self) -> None:
        """Give back the slots of the current batch this run will not use (its end), so the
        next run need not wait for them to decay. Best effort: a failure only makes others
        wait a little longer."""
        async with self._turn:  # not while a submission is taking its slot
            unused, self._slots = self._slots, 0
        if not unused or self.limit_name is None:
            return
        body = {"names": [self.limit_name], "slots": unused}
        async with get_client() as client:
            # Worth asking until the batch would have run out anyway.
            while time.monotonic() < self._slots_expire:
                response = await _post_once(client, "/v2/concurrency_limits/decrement", body)
                if response is not None:
                    if not response.is_success:
                        self._logger.debug(
                            "Could not give back %d slots: HTTP %d", unused, response.status_code
                        )
                    else:  # the next batch only waits for the slots this run used to decay
                        used = self._batch - unused
                        self._slots_expire = self._asked + used / self._decay
                    return
                await asyncio.sleep(0.1)

    def _check_open(self) -> None:
        if self._closed:
            raise GateClosedError("the run is stopping: no new submission is sent")

    async def _take_batch(self) -> None:
        """Occupy a batch of the global limit's slots, asking as soon as they can be free.

        Prefect's own `rate_limit`, and its client's retries, wait out each refusal for seconds
        (the server's estimate with random spread; a 2 s backoff when a busy SQLite server
        answers 503): measured, that cut a 20/s run to 5/s. Here the first ask comes when this
        run's previous batch has decayed, a refusal (423) is asked again within 1/decay
        seconds, a busy server (429/502/503, connection errors) within 0.1 s. A server that
        stays out of reach for `UNREACHABLE_SECONDS` leaves the run on its own pace.
        """
        assert self.limit_name is not None
        # Looked at again every half second: giving back unused slots brings it forward.
        while (left := self._slots_expire - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.5))
        deadline = time.monotonic() + UNREACHABLE_SECONDS
        async with get_client() as client:
            while True:
                asked = time.monotonic()
                response = await _post_once(
                    client,
                    "/v2/concurrency_limits/increment",
                    {"names": [self.limit_name], "slots": self._batch, "mode": "rate_limit"},
                )
                if response is not None:
                    if response.is_success:
                        break
                    if response.status_code == 423:
                        suggested = float(response.headers.get("Retry-After") or 1.0)
                        await asyncio.sleep(min(suggested, 1.0 / self._decay))
                        continue
                    response.raise_for_status()
                if time.monotonic() > deadline:
                    self._logger.warning(
                        "The Prefect API did not grant slots of %r for %d s; this run goes "
                        "on at its own pace (%s/s)",
                        self.limit_name, UNREACHABLE_SECONDS, self.rate,
                    )  # fmt: skip
                    self.limit_name = None
                    return
                await asyncio.sleep(0.1)
        self._slots = self._batch
        # From when the granted ask was sent, not answered: the server decays the batch from
        # a moment in between, so this run never uses a slot past the batch's own time.
        self._asked = asked
        self._slots_expire = asked + self._batch / self._decay

    async def _create_limit(self, client: PrefectClient) -> GlobalConcurrencyLimitResponse | None:
        """Create the limit (another run may win the race: then read theirs)."""
        assert self.limit_name is not None
        try:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=self.limit_name,
                    limit=self._batch,
                    slot_decay_per_second=self.rate,
                    active=True,
                )
            )
            self._logger.info(
                "Created global concurrency limit %r: %s submissions/s shared by all runs",
                self.limit_name, self.rate,
            )  # fmt: skip
        except ObjectAlreadyExists:
            pass
        try:
            return await client.read_global_concurrency_limit_by_name(self.limit_name)
        except ObjectNotFound:
            return None

    async def _ensure_limit(self) -> None:
        """Create the global limit when missing; size batches to what an existing one allows."""
        assert self.limit_name is not None
        async with get_client() as client:
            try:
                limit = await client.read_global_concurrency_limit_by_name(self.limit_name)
            except ObjectNotFound:
                limit = await self._create_limit(client)
            if limit is None:  # deleted meanwhile: pace this run only
                self.limit_name = None
                self._ready = True
                return
        decay = limit.slot_decay_per_second or 0
        if not limit.active or decay <= 0:
            self._logger.warning(
                "Global concurrency limit %r is inactive or has no slot decay; submissions "
                "are paced by this run only (%s/s)",
                self.limit_name, self.rate,
            )  # fmt: skip
            self.limit_name = None
        else:
            self._batch = max(1, min(self._batch, limit.limit))
            self._decay = decay
            if decay < self.rate:
                self._pacer = Pacer(decay / HEADROOM)
                self._logger.warning(
                    "Global concurrency limit %r allows %s submissions/s for all runs: this "
                    "run's submit_rate %s is capped by it",
                    self.limit_name, decay, self.rate,
                )  # fmt: skip
        self._ready = True
