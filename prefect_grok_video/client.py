"""The async client of the Grok video API: `AsyncGrokVideoClient`.

>>> async with AsyncGrokVideoClient.from_settings() as client:
...     request_id = await client.submit_extension(video="clip.mp4", prompt="the sun rises")
...     job = await client.wait_for_video(request_id)
...     result = await client.download(job.raise_for_status().video.url, "out/clip.mp4")

What is retried, and what never is, is set out in `prefect_grok_video.policies`; what the
service's answers mean, in `prefect_grok_video.responses`; how results are fetched, in
`prefect_grok_video.downloads`. `GrokVideoClient` (`prefect_grok_video.sync_client`) is the
synchronous face of this one.

About 400 lines: one method per endpoint of the service, on one class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from prefect_grok_video._version import __version__
from prefect_grok_video.display import shown
from prefect_grok_video.downloads import Downloader
from prefect_grok_video.errors import (
    ConfigurationError,
    GrokVideoError,
    PollTimeoutError,
)
from prefect_grok_video.inputs import ImageInput, VideoInput, resolve_image, resolve_video
from prefect_grok_video.logs import Logger
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.operations import JobRequest
from prefect_grok_video.policies import LatencyHistory, PollPolicy, RetryPolicy, retrying
from prefect_grok_video.responses import (
    api_error,
    parse_job,
    parse_request_id,
    transport_error,
)
from prefect_grok_video.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    GrokVideoSettings,
    check_base_url,
)
from prefect_grok_video.tls import tls_context

__all__ = ["AsyncGrokVideoClient"]

T = TypeVar("T")
_KNOWN_STATUSES = frozenset({"pending", "done", "failed", "expired"})
#: Connections kept for API calls (submits and polls); downloads have a pool of their own.
_API_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class AsyncGrokVideoClient:
    """An async client of the Grok video API.

    Use it as an async context manager (or call `aclose()`). Every option is an argument:
    nothing is read from the environment here (`from_settings` does that, once). `transport`
    replaces the network for tests (`httpx.MockTransport`, respx), for API calls and downloads
    alike. The API key is sent only to `base_url`; result URLs, on other hosts, are fetched
    without it, over a connection pool of their own.
    """

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
        pace: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "")
        if not key.get_secret_value().strip():
            raise ConfigurationError(
                "no API key: set GROK_VIDEO_API_KEY or pass api_key= (or use a "
                "GrokVideoCredentials block)"
            )
        try:
            base = check_base_url(base_url)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._api_key = key
        self.base_url = base
        self.model = model
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.max_upload_bytes = max_upload_bytes
        self.logger: Logger = logger or logging.getLogger("prefect_grok_video")
        #: Entered around the last step of each submit attempt (retries too) before the wire,
        #: `before_send` included: a rate limiter placed as late as possible, so that
        #: submissions reach the service as evenly spaced as they leave it.
        self.pace = pace
        #: Latencies of the jobs this client saw finish: they pace the polls of the next ones.
        self._latencies = LatencyHistory()
        self._http = httpx.AsyncClient(
            base_url=base + "/",
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"prefect-grok-video/{__version__}"},
            limits=_API_LIMITS,
            verify=tls_context(),
        )
        self._downloads = Downloader(
            timeout=self._http.timeout,
            max_bytes=max_download_bytes,
            retry=self.retry,
            logger=self.logger,
            transport=transport,
            secrets=[key.get_secret_value()],
        )

    @classmethod
    def from_settings(
        cls, settings: GrokVideoSettings | None = None, **overrides: Any
    ) -> AsyncGrokVideoClient:
        """A client from `settings` (default: read from `GROK_VIDEO_*` variables, once);
        `overrides` go to the constructor."""
        settings = settings or GrokVideoSettings.from_env()
        arguments = {"api_key": settings.api_key or "", **settings.client_arguments()}
        return cls(**{**arguments, **overrides})

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts of every request (connect, read, write, pool)."""
        return self._http.timeout

    @property
    def max_download_bytes(self) -> int:
        """Largest result accepted by `download`."""
        return self._downloads.max_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncGrokVideoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._http.aclose()
        await self._downloads.aclose()

    # -- the API -----------------------------------------------------------------------------

    async def submit(
        self,
        request: JobRequest,
        *,
        preflight: bool = True,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Start the paid job `request` describes and return its request_id.

        Every field is checked against the operation's limits (`prefect_grok_video.operations`)
        and, with `preflight`, files and data URLs against the service's rules, before any
        request: `InputError` names the field. `SubmitOutcomeUnknownError` means the request
        went out but no answer came (do not blindly submit again). `before_send` is awaited
        right before each attempt goes on the wire, after the pacing wait (the flows record
        there that the job is on its way); what it raises ends the submission unsent.
        """
        request = request.checked()
        media = request.media
        if preflight and request.video is not None:
            request.video.preflight(request.limits.input_seconds or (0, float("inf")))
        if preflight and request.image is not None:
            request.image.preflight()

        def build() -> httpx.Request:
            content: bytes | AsyncIterator[bytes]
            if media is None:
                content = json.dumps(request.fields()).encode()
                length = len(content)
            else:
                length, content = media.encode_body(
                    request.fields(), as_object=request.media_as_object
                )
            return self._http.build_request(
                "POST",
                request.limits.route,
                content=content,
                headers=self._auth_headers(
                    {"Content-Type": "application/json", "Content-Length": str(length)}
                ),
            )

        request_id = await self._send(
            build, operation="submit", parse=parse_request_id, before_send=before_send
        )
        self.logger.debug(
            "Submitted %s of %s (%r, %s) as request %s",
            request.action, media.describe() if media else "a prompt",
            shown(request.prompt, 60),
            {k: v for k, v in request.fields().items() if k not in ("prompt", "model")},
            request_id,
        )  # fmt: skip
        return request_id

    async def submit_generation(
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
        """Start a paid generation (text-to-video, or image-to-video with `image`, a still as
        a path, storage URL, http(s) URL or data URL) and return its request_id; see `submit`."""
        still = image if isinstance(image, ImageInput) or image is None else self._image(image)
        request = JobRequest(
            "generate", prompt, model or self.model, image=still, duration=duration,
            aspect_ratio=aspect_ratio, resolution=resolution,
        )  # fmt: skip
        return await self.submit(request, preflight=preflight)

    async def submit_edit(
        self,
        *,
        video: str | VideoInput,
        prompt: str,
        model: str | None = None,
        preflight: bool = True,
    ) -> str:
        """Start a paid edit of `video` (restyled as `prompt` says; the output matches the
        input) and return its request_id; see `submit`."""
        clip = video if isinstance(video, VideoInput) else self._video(video, file_ids=False)
        return await self.submit(
            JobRequest("edit", prompt, model or self.model, video=clip), preflight=preflight
        )

    async def submit_extension(
        self,
        *,
        video: str | VideoInput,
        prompt: str,
        duration: int = 6,
        model: str | None = None,
        preflight: bool = True,
    ) -> str:
        """Start a paid extension job for `video` and return its request_id.

        `video` is a path, fsspec URL, http(s) URL, data URL or `file_id:<id>` (see
        `prefect_grok_video.inputs`); files and data URLs are checked first (`preflight`).
        Raises `InputError` before any request for a bad value, `SubmitOutcomeUnknownError`
        when the request went out but no answer came (do not blindly submit again).
        """
        clip = video if isinstance(video, VideoInput) else self._video(video)
        request = JobRequest("extend", prompt, model or self.model, video=clip, duration=duration)
        return await self.submit(request, preflight=preflight)

    def _video(self, value: str, *, file_ids: bool = True) -> VideoInput:
        return resolve_video(value, max_bytes=self.max_upload_bytes, file_ids=file_ids)

    def _image(self, value: str) -> ImageInput:
        return resolve_image(value, max_bytes=self.max_upload_bytes)

    async def get_video(self, request_id: str) -> VideoJob:
        """Poll the job `request_id` once and return what the service says of it."""
        if not request_id or "/" in request_id:
            raise ValueError(f"not a request_id: {request_id!r}")

        def build() -> httpx.Request:
            return self._http.build_request(
                "GET", f"videos/{request_id}", headers=self._auth_headers()
            )

        return await self._send(
            build,
            operation="poll",
            request_id=request_id,
            parse=lambda response: parse_job(response, request_id),
        )

    async def wait_for_video(
        self,
        request_id: str,
        *,
        timeout: float | None = 600.0,
        poll: PollPolicy | None = None,
        submitted_at: float | None = None,
        on_update: Callable[[VideoJob], Awaitable[None] | None] | None = None,
    ) -> VideoJob:
        """Poll `request_id` until it is `done`, `failed` or `expired`, and return that job.

        Failed, expired and moderated jobs are returned, not raised (see
        `VideoJob.raise_for_status`). Transient poll errors are ridden out until the deadline;
        `PollTimeoutError` names the request_id when `timeout` seconds pass first (the job may
        still finish: wait again rather than submit again). `submitted_at` (a
        `time.monotonic()` value) sharpens the schedule; `on_update` sees every poll's answer.
        """
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        tracker = (poll or self.poll).tracker(submitted_at or start, self._latencies)
        delay = tracker.first_delay()
        last: VideoJob | None = None
        polls = 0
        while True:
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(delay)
            polls += 1
            try:
                job = await self.get_video(request_id)
            except GrokVideoError as exc:
                if not exc.retryable:
                    raise
                self.logger.warning("Poll of %s failed, will poll again: %s", request_id, exc)
                delay = tracker.next_delay(None, getattr(exc, "retry_after", None))
            else:
                last = job
                if on_update is not None:
                    maybe = on_update(job)
                    if maybe is not None:
                        await maybe
                if job.is_terminal:
                    if job.status == "done":
                        tracker.finished()
                    self.logger.debug(
                        "Request %s is %s after %.1fs and %d polls",
                        request_id, job.outcome, time.monotonic() - start, polls,
                    )  # fmt: skip
                    return job
                if job.status not in _KNOWN_STATUSES:
                    self.logger.warning(
                        "Request %s has unknown status %r; treating it as pending",
                        request_id, job.status,
                    )  # fmt: skip
                delay = tracker.next_delay(job.progress)
            if deadline is not None and time.monotonic() >= deadline:
                elapsed = time.monotonic() - start
                raise PollTimeoutError(
                    f"still {last.status if last else 'unanswered'} after {elapsed:.0f}s of "
                    "waiting; the job may still finish: wait for this request_id again (do not "
                    "submit again)",
                    elapsed=elapsed,
                    last_status=last.status if last else None,
                    request_id=request_id,
                )

    async def download(
        self, url: str, destination: str | os.PathLike[str], *, max_bytes: int | None = None
    ) -> DownloadResult:
        """Stream the video at `url` to `destination`; see `Downloader.download`."""
        return await self._downloads.download(url, destination, max_bytes=max_bytes)

    # -- plumbing ----------------------------------------------------------------------------

    def _auth_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}", **(extra or {})}

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        operation: str,
        parse: Callable[[httpx.Response], T],
        request_id: str | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """Send a request built by `build` and `parse` its answer, retrying what `policies`
        says is safe to retry (a malformed answer to a poll, too)."""
        secrets = [self._api_key.get_secret_value()]

        async def attempt() -> T:
            request = build()
            async with self.pace() if operation == "submit" and self.pace else nullcontext():
                if before_send is not None:
                    await before_send()
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                # Raised outside this handler, so that no error carries the transport error
                # (whose text is not redacted) as its context.
                failure = transport_error(
                    exc, operation, request_id, base_url=self.base_url, secrets=secrets
                )
            else:
                if not response.is_success:
                    raise api_error(response, operation, request_id, secrets)
                return parse(response)
            raise failure

        return await retrying(self.retry, self.logger, operation, attempt)
