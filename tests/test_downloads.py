"""Downloads beside the rest of a run: they keep off the event loop's back (file work in
threads) and off the API's connections (a pool of their own), against the real emulator."""

from __future__ import annotations

import asyncio
import os
import time

import certifi
from fixtures_emulator import FAST_POLL, FAST_RETRY

from prefect_grok_video import AsyncGrokVideoClient
from prefect_grok_video.tls import tls_context

#: More than the API's pool of 100 connections.
DOWNLOADS = 150


async def _finished_job_url(client: AsyncGrokVideoClient) -> tuple[str, str]:
    request_id = await client.submit_extension(video="https://cdn.test/a.mp4", prompt="go")
    job = await client.wait_for_video(request_id, timeout=10)
    return request_id, job.raise_for_status().video.url


async def test_a_slow_disk_does_not_stall_the_event_loop(emulator, tmp_path, monkeypatch):
    """Every row of a run shares one event loop: a download's fsync taking a second (a busy or
    network disk) must not hold up the others' polls and submits for that second."""
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(1.0)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with AsyncGrokVideoClient(
        emulator.api_key, base_url=emulator.base_url, poll=FAST_POLL, retry=FAST_RETRY
    ) as client:
        _, url = await _finished_job_url(client)
        stop = asyncio.Event()
        ticking = asyncio.ensure_future(ticker(stop))
        started = time.monotonic()
        result = await client.download(url, tmp_path / "a.mp4")
        took = time.monotonic() - started
        stop.set()
        await ticking
    assert took >= 1.0  # the slow fsync happened
    assert result.size == (tmp_path / "a.mp4").stat().st_size
    assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"


async def test_downloads_have_a_connection_pool_of_their_own(emulator_process, tmp_path):
    """More slow downloads in flight than the API pool has connections (as when many jobs
    finish together) leave the API's connections free: a poll sent meanwhile is answered
    before any download ends. (The emulator runs in its own process, so that the downloads'
    connections open quickly.)"""
    base_url = emulator_process("--latency", "0.2", "--no-rate-limit",
                                "--set", "download_seconds=3")  # fmt: skip
    async with AsyncGrokVideoClient(
        "emulator-key", base_url=base_url, poll=FAST_POLL, retry=FAST_RETRY
    ) as client:
        request_id, url = await _finished_job_url(client)
        ended: list[float] = []

        async def fetch(n: int) -> None:
            await client.download(url, tmp_path / f"{n}.mp4")
            ended.append(time.monotonic())

        async def started_downloads() -> int:
            stats = await client._http.get("_emulator/stats", headers=client._auth_headers())
            return sum(stats.json()["downloads"].values())

        downloads = [asyncio.ensure_future(fetch(n)) for n in range(DOWNLOADS)]
        # Half of them streaming: the others have their connection, or queue for one.
        while await started_downloads() < 50:
            await asyncio.sleep(0.05)
        job = await client.get_video(request_id)
        polled = time.monotonic()
        api_connections = len(client._http._transport._pool.connections)
        await asyncio.gather(*downloads)
    assert job.outcome == "succeeded"
    assert len(ended) == DOWNLOADS
    assert api_connections <= 2, f"{api_connections} connections in the API's pool"
    assert polled < min(ended), "the poll waited for a download's connection"


def test_clients_and_their_download_pools_share_one_tls_context(monkeypatch, tmp_path):
    """Building a TLS context reads a whole CA bundle: the process builds one, and another
    only when SSL_CERT_FILE / SSL_CERT_DIR name other certificates."""
    contexts = []
    for _ in range(2):
        client = AsyncGrokVideoClient("key", base_url="https://api.example/v1")
        contexts += [client._http._transport._pool._ssl_context,
                     client._downloads._http._transport._pool._ssl_context]  # fmt: skip
    assert all(context is tls_context() for context in contexts)
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert tls_context() is not contexts[0]
    assert tls_context() is tls_context()
