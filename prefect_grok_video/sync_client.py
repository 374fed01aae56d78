"""`GrokVideoClient`: the synchronous face of `AsyncGrokVideoClient`, same arguments, same methods.

The async client runs on a private event loop in a background thread, so this works from plain
scripts and from code that already runs an event loop (notebooks, sync Prefect tasks).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from prefect_grok_video.client import AsyncGrokVideoClient
from prefect_grok_video.inputs import ImageInput, VideoInput
from prefect_grok_video.logs import Logger
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.operations import JobRequest
from prefect_grok_video.policies import PollPolicy, RetryPolicy
from prefect_grok_video.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    GrokVideoSettings,
)

__all__ = ["GrokVideoClient"]

T = TypeVar("T")


class GrokVideoClient:
    """A synchronous client of the Grok video API (see `AsyncGrokVideoClient`)."""

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        logger: Logger | None = None,
    ) -> None:
        """The arguments of `AsyncGrokVideoClient` (but `pace`, which belongs to a flow run)."""
        self._start(
            lambda: AsyncGrokVideoClient(
                api_key,
                base_url=base_url,
                model=model,
                timeout=timeout,
                retry=retry,
                poll=poll,
                max_upload_bytes=max_upload_bytes,
                max_download_bytes=max_download_bytes,
                transport=transport,
                logger=logger,
            )
        )

    @classmethod
    def from_settings(
        cls, settings: GrokVideoSettings | None = None, **overrides: Any
    ) -> GrokVideoClient:
        """A client from `settings` (default: read from `GROK_VIDEO_*` variables, once)."""
        client = cls.__new__(cls)
        client._start(lambda: AsyncGrokVideoClient.from_settings(settings, **overrides))
        return client

    def _start(self, build: Callable[[], AsyncGrokVideoClient]) -> None:
        """Build the async client on the background loop, which its connection pools need."""
        self._runner = _LoopThread()
        try:
            self._async = self._runner.run(_call(build))
        except BaseException:
            self._runner.stop()
            raise

    @property
    def base_url(self) -> str:
        return self._async.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> GrokVideoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pools and stop the background loop."""
        if self._runner.running:
            self._runner.run(self._async.aclose())
            self._runner.stop()

    def submit(self, request: JobRequest, *, preflight: bool = True) -> str:
        """See `AsyncGrokVideoClient.submit`."""
        return self._runner.run(self._async.submit(request, preflight=preflight))

    def submit_generation(
        self,
        *,
        prompt: str,
        image: str | ImageInput | None = None,
        duration: int | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        model: str | None = None,
        preflight: bool = True,
    ) -> str:
        """See `AsyncGrokVideoClient.submit_generation`."""
        return self._runner.run(
            self._async.submit_generation(
                prompt=prompt, image=image, duration=duration, aspect_ratio=aspect_ratio,
                resolution=resolution, model=model, preflight=preflight,
            )
        )  # fmt: skip

    def submit_edit(
        self,
        *,
        video: str | VideoInput,
        prompt: str,
        model: str | None = None,
        preflight: bool = True,
    ) -> str:
        """See `AsyncGrokVideoClient.submit_edit`."""
        return self._runner.run(
            self._async.submit_edit(video=video, prompt=prompt, model=model, preflight=preflight)
        )

    def submit_extension(
        self,
        *,
        video: str | VideoInput,
        prompt: str,
        duration: int = 6,
        model: str | None = None,
        preflight: bool = True,
    ) -> str:
        """See `AsyncGrokVideoClient.submit_extension`."""
        return self._runner.run(
            self._async.submit_extension(
                video=video, prompt=prompt, duration=duration, model=model, preflight=preflight
            )
        )

    def get_video(self, request_id: str) -> VideoJob:
        """See `AsyncGrokVideoClient.get_video`."""
        return self._runner.run(self._async.get_video(request_id))

    def wait_for_video(
        self,
        request_id: str,
        *,
        timeout: float | None = 600.0,
        poll: PollPolicy | None = None,
        submitted_at: float | None = None,
        on_update: Callable[[VideoJob], Awaitable[None] | None] | None = None,
    ) -> VideoJob:
        """See `AsyncGrokVideoClient.wait_for_video` (`on_update` runs on the client's loop)."""
        return self._runner.run(
            self._async.wait_for_video(
                request_id,
                timeout=timeout,
                poll=poll,
                submitted_at=submitted_at,
                on_update=on_update,
            )
        )

    def download(
        self, url: str, destination: str | os.PathLike[str], *, max_bytes: int | None = None
    ) -> DownloadResult:
        """See `AsyncGrokVideoClient.download`."""
        return self._runner.run(self._async.download(url, destination, max_bytes=max_bytes))


async def _call(build: Callable[[], T]) -> T:
    return build()


class _LoopThread:
    """An event loop running in a daemon thread, to call coroutines from synchronous code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="grok-video-client", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
