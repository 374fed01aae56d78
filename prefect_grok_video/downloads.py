"""Fetching generated videos: streamed from their temporary URLs into files, whole or not at all.

Results live on another host than the API, with no key, so they are fetched over a connection
pool of their own: a long download never holds a connection that a poll or a submit needs. File
work (folders, writes, `fsync`, renames, clean-up) runs in worker threads, so that a slow disk
never stalls the event loop that every row of a run shares.
"""

from __future__ import annotations

import glob
import hashlib
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import anyio
import fsspec
import httpx

from prefect_grok_video._version import __version__
from prefect_grok_video.errors import DownloadError, redact
from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.logs import Logger
from prefect_grok_video.models import DownloadResult
from prefect_grok_video.outputs import local_path
from prefect_grok_video.policies import RetryPolicy, retrying
from prefect_grok_video.tls import tls_context

__all__ = ["Downloader"]

#: Bytes gathered before one write (in a worker thread) to the partial file.
_WRITE_BYTES = 1024 * 1024
#: Connections kept for downloads, apart from the API's.
_DOWNLOAD_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10)

#: Who writes a temporary download file: `<host>-<pid>`, so a later run on the same host can
#: tell the leftovers of a killed process from a download still in progress.
_PART_OWNER = f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"
#: Leftovers of other hosts (a shared folder) are removed only after this long.
_STALE_PART_SECONDS = 24 * 3600


class Downloader:
    """Downloads result videos over its own connection pool; see `download`."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout,
        max_bytes: int,
        retry: RetryPolicy,
        logger: Logger,
        transport: httpx.AsyncBaseTransport | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.max_bytes = max_bytes
        #: Redacted from error texts: a result URL might echo a key.
        self._secrets = tuple(secrets)
        self.retry = retry
        self.logger = logger
        self._http = httpx.AsyncClient(
            # Waiting for one of the pool's connections is queueing, not a failure.
            timeout=httpx.Timeout(
                connect=timeout.connect, read=timeout.read, write=timeout.write, pool=None
            ),
            transport=transport,
            headers={"User-Agent": f"prefect-grok-video/{__version__}"},
            limits=_DOWNLOAD_LIMITS,
            verify=tls_context(),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def download(
        self, url: str, destination: str | os.PathLike[str], *, max_bytes: int | None = None
    ) -> DownloadResult:
        """Stream the video at `url` to `destination` and return its size and sha256.

        `destination` is a file path (`file://` URLs too) or a storage URL (`s3://…`,
        `memory://…`). The file appears only when complete: bytes go to a temporary file, whose
        length is checked before it is renamed (or, for storage URLs, uploaded under a
        temporary name and moved) into place. Refuses non-http(s) URLs and files over
        `max_bytes` (default: the downloader's).
        """
        limit = max_bytes or self.max_bytes
        target = httpx.URL(url)
        if target.scheme not in ("http", "https"):
            raise DownloadError(
                f"refusing to download from a {target.scheme or 'relative'!s} URL; only http(s)",
                retryable=False,
            )
        destination = os.fspath(destination)
        if not is_storage_url(destination):
            path = local_path(destination)
            return await retrying(
                self.retry, self.logger, "download", lambda: self._once(target, path, limit)
            )
        with tempfile.TemporaryDirectory(prefix="grok-video-") as folder:
            local = Path(folder) / "video.mp4"
            result = await retrying(
                self.retry, self.logger, "download", lambda: self._once(target, local, limit)
            )
            await anyio.to_thread.run_sync(_publish, local, destination)
        return DownloadResult(path=destination, size=result.size, sha256=result.sha256)

    async def _once(self, url: httpx.URL, path: Path, limit: int) -> DownloadResult:
        """One attempt: stream to a partial file beside `path`, check it, rename it into place.
        The file work is two calls in a thread (start, finish), plus one per 1 MiB written."""
        partial = path.with_name(f".{path.name}.{_PART_OWNER}-{uuid.uuid4().hex[:8]}.part")
        digest = hashlib.sha256()
        size = 0
        file: IO[bytes] | None = None
        try:
            async with self._http.stream("GET", url) as response:
                expected = _expected_size(response, limit)
                file = await anyio.to_thread.run_sync(_start_file, path, partial)
                buffer = bytearray()
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise DownloadError(
                            f"the video exceeds the {limit}-byte download limit "
                            "(GROK_VIDEO_MAX_DOWNLOAD_BYTES)",
                            retryable=False,
                        )
                    digest.update(chunk)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BYTES:
                        await anyio.to_thread.run_sync(file.write, bytes(buffer))
                        buffer.clear()
            if expected is not None and size != expected:
                raise DownloadError(f"download ended after {size} of {expected} bytes")
            await anyio.to_thread.run_sync(_finish_file, file, bytes(buffer), partial, path)
            file = None
        except httpx.HTTPError as exc:
            what = redact(str(exc), self._secrets)
            failure = DownloadError(f"download failed: {type(exc).__name__}: {what}")
        else:
            self.logger.debug("Downloaded %s bytes to %s", size, path)
            return DownloadResult(path=str(path), size=size, sha256=digest.hexdigest())
        finally:
            if file is not None:
                await anyio.to_thread.run_sync(_discard, file, partial)
        raise failure


def _expected_size(response: httpx.Response, limit: int) -> int | None:
    """The announced size of a download's body, after refusing an error or an oversize file."""
    status = response.status_code
    if status >= 400:
        # 5xx, 408 and 429 may pass; other refusals will not change on their own.
        gone = status in (401, 403, 404, 410)
        raise DownloadError(
            f"download answered HTTP {status}"
            + ("; the result URL may have expired (24 h)" if gone else ""),
            status_code=status,
            retryable=status >= 500 or status in (408, 429),
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
    return expected


def _start_file(path: Path, partial: Path) -> IO[bytes]:
    """Make `path`'s folder, remove stale partial files beside it, open `partial` to write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(path)
    return open(partial, "wb")  # closed by _finish_file, or _discard on failure


def _finish_file(file: IO[bytes], rest: bytes, partial: Path, path: Path) -> None:
    """Write the last bytes, flush them to disk, close the file and rename it to `path`."""
    try:
        file.write(rest)
        file.flush()
        os.fsync(file.fileno())
    finally:
        file.close()
    os.replace(partial, path)


def _discard(file: IO[bytes], partial: Path) -> None:
    """Close an unfinished partial file and remove whatever is left of it."""
    file.close()
    partial.unlink(missing_ok=True)


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
