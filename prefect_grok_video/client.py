"""HTTP clients for the Grok video extension API: `AsyncGrokVideoClient` and its sync facade.

>>> async with AsyncGrokVideoClient.from_settings() as client:
...     request_id = await client.submit_extension(video="clip.mp4", prompt="the sun rises")
...     job = await client.wait_for_video(request_id)
...     result = await client.download(job.raise_for_status().video.url, "out/clip.mp4")

What is retried, and what never is, is set out in `prefect_grok_video.policies`.
"""

from __future__ import annotations

import asyncio
import email.utils
import glob
import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import fsspec
import httpx
from pydantic import SecretStr, ValidationError

from prefect_grok_video._version import __version__
from prefect_grok_video.display import shown
from prefect_grok_video.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    GrokVideoError,
    InvalidRequestError,
    NotFoundError,
    PollTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServiceError,
    SubmitOutcomeUnknownError,
    UnknownModelError,
    redact,
)
from prefect_grok_video.inputs import (
    VideoInput,
    check_duration,
    check_prompt,
    is_storage_url,
    resolve_video,
)
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.policies import LatencyHistory, PollPolicy, RetryPolicy
from prefect_grok_video.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    GrokVideoSettings,
    check_base_url,
)

__all__ = ["AsyncGrokVideoClient", "GrokVideoClient"]

T = TypeVar("T")
Logger = logging.Logger | logging.LoggerAdapter
_KNOWN_STATUSES = frozenset({"pending", "done", "failed", "expired"})
#: Errors raised before a request's first byte left: it can be sent again safely.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
             httpx.WriteTimeout, httpx.UnsupportedProtocol)  # fmt: skip


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _service_message(response: httpx.Response) -> tuple[str, str | None]:
    """(message, code) from an error response, whatever shape the service used."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] or response.reason_phrase or "no message"), None
    if not isinstance(body, dict):
        return str(body)[:300], None
    error, code = body.get("error"), body.get("code")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or code
        error = error.get("message")
    message = error or body.get("message") or body.get("detail") or response.reason_phrase
    return str(message)[:500], (str(code) if code is not None else None)


class AsyncGrokVideoClient:
    """An async client of the Grok video extension API over one httpx connection pool.

    Use it as an async context manager (or call `aclose()`). `transport` replaces the network,
    for tests (`httpx.MockTransport`, respx). The API key is sent only to `base_url`; result
    URLs, which live on other hosts, are fetched without it.
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
        pace: Callable[[], Awaitable[None]] | None = None,
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
        try:
            self.poll = poll or PollPolicy.from_env()
        except ValidationError as exc:
            error = exc.errors()[0]
            name = f"GROK_VIDEO_{str(error['loc'][0]).upper()}"
            raise ConfigurationError(f"bad setting {name}: {error['msg']}") from None
        self.max_upload_bytes = max_upload_bytes
        self.max_download_bytes = max_download_bytes
        self.logger: Logger = logger or logging.getLogger("prefect_grok_video")
        #: Awaited right before each submit attempt (retries too) goes on the wire: a rate
        #: limiter placed as late as possible, so that submissions reach the service as evenly
        #: spaced as they leave the limiter.
        self.pace = pace
        #: Latencies of the jobs this client saw finish: they pace the polls of the next ones.
        self._latencies = LatencyHistory()
        self._http = httpx.AsyncClient(
            base_url=base + "/",
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"prefect-grok-video/{__version__}"},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    @classmethod
    def from_settings(
        cls, settings: GrokVideoSettings | None = None, **overrides: Any
    ) -> AsyncGrokVideoClient:
        """A client configured from `GROK_VIDEO_*` environment variables (or `settings`)."""
        settings = settings or GrokVideoSettings()
        options: dict[str, Any] = {
            "api_key": settings.api_key or "",
            "base_url": settings.base_url,
            "model": settings.model,
            "timeout": settings.timeout,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_download_bytes": settings.max_download_bytes,
        }
        options.update(overrides)
        return cls(**options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncGrokVideoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- the API -----------------------------------------------------------------------------

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
        prompt = check_prompt(prompt)
        duration = check_duration(duration)
        model = model or self.model
        source = (
            video
            if isinstance(video, VideoInput)
            else resolve_video(video, max_bytes=self.max_upload_bytes)
        )
        if preflight:
            source.preflight()
        fields = {"model": model, "prompt": prompt, "duration": duration}

        def build() -> httpx.Request:
            length, stream = source.encode_body(fields)
            return self._http.build_request(
                "POST",
                "videos/extensions",
                content=stream,
                headers=self._auth_headers(
                    {"Content-Type": "application/json", "Content-Length": str(length)}
                ),
            )

        response = await self._send(build, operation="submit")
        try:
            request_id = response.json()["request_id"]
            if not isinstance(request_id, str) or not request_id:
                raise ValueError(request_id)
        except (ValueError, KeyError, TypeError):
            raise SubmitOutcomeUnknownError(
                f"submit answered HTTP {response.status_code} without a request_id; a job may "
                "have been created and billed: check the provider's console before submitting "
                "again",
                status_code=response.status_code,
            ) from None
        self.logger.debug(
            "Submitted %s (%s, %ss, model %s) as request %s",
            source.describe(), repr(shown(prompt, 60)), duration, model, request_id,
        )  # fmt: skip
        return request_id

    async def get_video(self, request_id: str) -> VideoJob:
        """Poll the job `request_id` once and return what the service says of it."""
        if not request_id or "/" in request_id:
            raise ValueError(f"not a request_id: {request_id!r}")

        def build() -> httpx.Request:
            return self._http.build_request(
                "GET", f"videos/{request_id}", headers=self._auth_headers()
            )

        def parse(response: httpx.Response) -> VideoJob:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                try:
                    return VideoJob.model_validate({**body, "request_id": request_id})
                except ValidationError as exc:
                    # Field names and rules only: the values may hold anything, even a key.
                    problem = "; ".join(
                        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                    )
            else:
                problem = "not a JSON object"
            raise ResponseFormatError(
                f"poll answered HTTP {response.status_code} with a body that is not a job "
                f"({shown(problem, 120)!r})",
                status_code=response.status_code,
                request_id=request_id,
            )

        return await self._send(build, operation="poll", request_id=request_id, parse=parse)

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
        """Stream the video at `url` to `destination` and return its size and sha256.

        `destination` is a file path or a storage URL (`s3://…`, `memory://…`). The file appears
        only when complete: bytes go to a temporary file, whose length is checked before it is
        renamed (or, for storage URLs, uploaded under a temporary name and moved) into place.
        Refuses non-http(s) URLs and files over `max_bytes` (default: `max_download_bytes`).
        """
        limit = max_bytes or self.max_download_bytes
        target = httpx.URL(url)
        if target.scheme not in ("http", "https"):
            raise DownloadError(
                f"refusing to download from a {target.scheme or 'relative'!s} URL; only http(s)",
                retryable=False,
            )
        destination = os.fspath(destination)
        if not is_storage_url(destination):
            path = Path(fsspec.core.strip_protocol(destination))
            path.parent.mkdir(parents=True, exist_ok=True)
            return await self._retrying(
                "download", lambda: self._download_once(target, path, limit)
            )
        with tempfile.TemporaryDirectory(prefix="grok-video-") as folder:
            local = Path(folder) / "video.mp4"
            result = await self._retrying(
                "download", lambda: self._download_once(target, local, limit)
            )
            await anyio.to_thread.run_sync(_publish, local, destination)
        return DownloadResult(path=destination, size=result.size, sha256=result.sha256)

    async def _download_once(self, url: httpx.URL, path: Path, limit: int) -> DownloadResult:
        _remove_stale_partials(path)
        partial = path.with_name(f".{path.name}.{_PART_OWNER}-{uuid.uuid4().hex[:8]}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            async with self._http.stream("GET", url) as response:
                status = response.status_code
                if status >= 400:
                    # 5xx, 408 and 429 may pass; other refusals will not change on their own.
                    transient = status >= 500 or status in (408, 429)
                    gone = status in (401, 403, 404, 410)
                    raise DownloadError(
                        f"download answered HTTP {status}"
                        + ("; the result URL may have expired (24 h)" if gone else ""),
                        status_code=status,
                        retryable=transient,
                    )
                declared = response.headers.get("Content-Length", "")
                # A compressed body's length says nothing about the file's.
                encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                expected = int(declared) if declared.isdigit() and not encoded else None
                if expected is not None and expected > limit:
                    raise DownloadError(
                        f"the video is {expected} bytes, over the {limit}-byte download limit "
                        "(GROK_VIDEO_MAX_DOWNLOAD_BYTES)",
                        retryable=False,
                    )
                with open(partial, "wb") as f:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise DownloadError(
                                f"the video exceeds the {limit}-byte download limit",
                                retryable=False,
                            )
                        digest.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            if expected is not None and size != expected:
                raise DownloadError(f"download ended after {size} of {expected} bytes")
            os.replace(partial, path)
        except httpx.HTTPError as exc:
            failure = DownloadError(f"download failed: {type(exc).__name__}: {self._clean(exc)}")
        else:
            self.logger.debug("Downloaded %s bytes to %s", size, path)
            return DownloadResult(path=str(path), size=size, sha256=digest.hexdigest())
        finally:
            partial.unlink(missing_ok=True)
        raise failure

    # -- plumbing ----------------------------------------------------------------------------

    def _auth_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}", **(extra or {})}

    async def _retrying(self, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it succeeds or fails in a way `self.retry` will not retry."""
        count, start = 0, time.monotonic()
        while True:
            count += 1
            try:
                return await attempt()
            except GrokVideoError as error:
                delay = self.retry.delay(count, getattr(error, "retry_after", None))
                if not error.retryable or not self.retry.allows(
                    count, time.monotonic() - start, delay
                ):
                    raise
                self.logger.warning(
                    "%s attempt %d failed (%s); retrying in %.1fs", operation, count, error, delay
                )
                await asyncio.sleep(delay)

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        operation: str,
        request_id: str | None = None,
        parse: Callable[[httpx.Response], T] | None = None,
    ) -> Any:
        """Send a request built by `build`, retrying what `policies` says is safe to retry."""

        async def attempt() -> Any:
            request = build()
            if operation == "submit" and self.pace is not None:
                await self.pace()
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                # Raised outside this handler, so that no error carries the transport error
                # (whose text is not redacted) as its context.
                failure = self._transport_error(exc, operation, request_id)
            else:
                if not response.is_success:
                    raise self._api_error(response, operation, request_id)
                return response if parse is None else parse(response)
            raise failure

        return await self._retrying(operation, attempt)

    def _transport_error(
        self, exc: httpx.TransportError, operation: str, request_id: str | None
    ) -> GrokVideoError:
        """The error for a request that got no answer: safe to resend only if never sent."""
        what = f"{type(exc).__name__}: {self._clean(exc)}"
        if isinstance(exc, _NOT_SENT):
            return APIConnectionError(
                f"{operation}: could not reach {self.base_url} ({what})", request_id=request_id
            )
        if operation == "submit":
            return SubmitOutcomeUnknownError(
                f"submit was sent but no answer came ({what}); a job may have been created "
                "and billed: check before submitting again"
            )
        return APIConnectionError(f"{operation}: no answer ({what})", request_id=request_id)

    def _clean(self, exc: BaseException) -> str:
        return redact(str(exc), [self._api_key.get_secret_value()])

    def _api_error(
        self, response: httpx.Response, operation: str, request_id: str | None
    ) -> GrokVideoError:
        """The error for an HTTP error answer (the API key is redacted from anything echoed)."""
        secrets = [self._api_key.get_secret_value()]
        message, code = _service_message(response)
        message = redact(message, secrets)
        code = redact(code, secrets) if code else None
        status = response.status_code
        text = f"{operation} refused with HTTP {status}: {message}"
        context: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id}
        mentions_model = "model" in f"{code} {message}".lower()
        if status in (401, 403):
            return AuthenticationError(
                f"{text} (check GROK_VIDEO_API_KEY or the credentials block, and the key's "
                "permissions)",
                **context,
            )
        if status == 429:
            return RateLimitError(
                text,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                **context,
            )
        if status == 504 and operation == "submit":
            return SubmitOutcomeUnknownError(
                f"{text}: a gateway gave up waiting, the job may have been created and billed; "
                "check before submitting again",
                **context,
            )
        if status >= 500:
            return ServiceError(text, **context)
        if operation == "submit" and (status == 404 or (status == 400 and mentions_model)):
            return UnknownModelError(
                f"{text} (check the model id and that it can extend videos)", **context
            )
        if status == 404:
            return NotFoundError(text, **context)
        if status in (400, 411, 413, 422):
            return InvalidRequestError(text, **context)
        return APIError(text, **context)


#: Who writes a temporary download file: `<host>-<pid>`, so a later run on the same host can
#: tell the leftovers of a killed process from a download still in progress.
_PART_OWNER = f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"
#: Leftovers of other hosts (a shared folder) are removed only after this long.
_STALE_PART_SECONDS = 24 * 3600


def _remove_stale_partials(path: Path) -> None:
    """Remove temporary files of earlier downloads to `path` whose writer is gone.

    A process killed mid-download cannot remove its `.part` file; the next download of the
    same file does, when the writer ran on this host and is no longer alive (or, from another
    host, after a day), so no partial file is left beside the videos.
    """
    host = socket.gethostname().replace("-", "_")
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        owner = part.name[len(path.name) + 2 : -len(".part")].rsplit("-", 1)[0]
        writer_host, _, pid = owner.rpartition("-")
        try:
            if writer_host == host and pid.isdigit():
                if _alive(int(pid)):
                    continue
            elif time.time() - part.stat().st_mtime < _STALE_PART_SECONDS:
                continue
            part.unlink()
        except FileNotFoundError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(local: Path, destination: str) -> None:
    """Upload `local` to the storage URL `destination` under a temporary name, then move it."""
    fs, path = fsspec.core.url_to_fs(destination)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.makedirs(parent, exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex[:8]}.part"
    try:
        fs.put_file(str(local), partial)
        fs.mv(partial, path)
    except Exception as exc:
        raise DownloadError(f"could not store the video at {destination}: {exc}") from exc
    finally:
        if fs.exists(partial):
            fs.rm(partial)


class GrokVideoClient:
    """The synchronous face of `AsyncGrokVideoClient`: same constructor, same methods.

    The async client runs on a private event loop in a background thread, so this works from
    plain scripts and from code that already runs an event loop (notebooks, sync Prefect tasks).
    """

    def __init__(self, api_key: str | SecretStr, **options: Any) -> None:
        self._start(lambda: AsyncGrokVideoClient(api_key, **options))

    @classmethod
    def from_settings(
        cls, settings: GrokVideoSettings | None = None, **overrides: Any
    ) -> GrokVideoClient:
        """A client configured from `GROK_VIDEO_*` environment variables (or `settings`)."""
        client = cls.__new__(cls)
        client._start(lambda: AsyncGrokVideoClient.from_settings(settings, **overrides))
        return client

    def _start(self, build: Callable[[], AsyncGrokVideoClient]) -> None:
        """Build the async client on the background loop, which its connection pool needs."""
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
        """Close the connection pool and stop the background loop."""
        if self._runner.running:
            self._runner.run(self._async.aclose())
            self._runner.stop()

    def submit_extension(self, **kwargs: Any) -> str:
        """See `AsyncGrokVideoClient.submit_extension`."""
        return self._runner.run(self._async.submit_extension(**kwargs))

    def get_video(self, request_id: str) -> VideoJob:
        """See `AsyncGrokVideoClient.get_video`."""
        return self._runner.run(self._async.get_video(request_id))

    def wait_for_video(self, request_id: str, **kwargs: Any) -> VideoJob:
        """See `AsyncGrokVideoClient.wait_for_video`."""
        return self._runner.run(self._async.wait_for_video(request_id, **kwargs))

    def download(
        self, url: str, destination: str | os.PathLike[str], **kwargs: Any
    ) -> DownloadResult:
        """See `AsyncGrokVideoClient.download`."""
        return self._runner.run(self._async.download(url, destination, **kwargs))


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
