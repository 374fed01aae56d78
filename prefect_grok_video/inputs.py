"""What a row may give as its `video`, `prompt` and `duration`, checked before anything is sent.

A `video` value is one of (first match wins):

==========================  ===========================================  =======================
written as                  example                                      sent as
==========================  ===========================================  =======================
an http(s) URL              ``https://cdn.example.com/clip.mp4``         the URL, unchanged
a ``data:`` URL             ``data:video/mp4;base64,AAAAIGZ0eXA...``     the data URL, unchanged
an xAI Files API id         ``file_id:file-3kd9...``                     ``file-3kd9...``
an fsspec URL               ``s3://bucket/clip.mp4``, ``memory://c.mp4`` a base64 data URL
a local path                ``clips/a.mp4``, ``file:///data/a.mp4``      a base64 data URL
==========================  ===========================================  =======================

A Files API id must carry the ``file_id:`` prefix: a bare ``file-3kd9`` is read as a local path,
so a typo in a file name can never be sent as somebody's file id. Local and fsspec files and data
URLs are checked against the service's rules (`prefect_grok_video.mp4`) before any request;
local and fsspec files are streamed as base64 (memory does not grow with the file) with an exact
``Content-Length``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import fsspec

from prefect_grok_video.errors import InputError
from prefect_grok_video.mp4 import Mp4Info, preflight

__all__ = [
    "FILE_ID_PREFIX",
    "MAX_DURATION",
    "MAX_PROMPT_CHARS",
    "MIN_DURATION",
    "STORAGE_PROTOCOLS",
    "VideoInput",
    "check_duration",
    "check_prompt",
    "is_storage_url",
    "resolve_video",
]

FILE_ID_PREFIX = "file_id:"
#: Seconds of new video a request may ask for (API.md, section 1).
MIN_DURATION, MAX_DURATION = 2, 10
#: The longest prompt sent. The service documents no number; xAI refuses overlong prompts with
#: `invalid_argument`, so a longer one is refused here before it costs anything.
MAX_PROMPT_CHARS = 4096
#: Bytes read per chunk when encoding a file: a multiple of 3, so chunks encode independently.
_CHUNK = 3 * 64 * 1024
_ACCEPTED_DATA_TYPES = ("video/mp4", "application/octet-stream", "")
#: fsspec protocols read as storage (their packages, e.g. s3fs, must be installed). Others that
#: fsspec knows (ftp, http caches, archives...) are refused as not meant for inputs.
STORAGE_PROTOCOLS = frozenset(
    {"file", "local", "memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci",
     "oss", "hdfs", "webhdfs", "sftp", "ssh", "smb", "dbfs", "hf"}
)  # fmt: skip

VideoKind = Literal["url", "data_url", "file_id", "file"]


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError  # pragma: no cover


@dataclass(frozen=True)
class VideoInput:
    """A resolved `video` value: what it is, how to describe it safely, and how to send it."""

    kind: VideoKind
    #: The value as the user wrote it (a data URL is kept whole; use `describe()` to show it).
    source: str
    #: The local path or fsspec URL of a `file` input.
    location: str | None = None
    #: Size in bytes of the video content (files and data URLs).
    size: int | None = None

    def describe(self) -> str:
        """A short, safe description for logs and reports: never a data URL's body."""
        if self.kind == "data_url":
            return f"data:video/mp4 ({_human_size(self.size or 0)} inline)"
        return self.source

    @property
    def needs_upload(self) -> bool:
        """Whether the content is sent inline (files and data URLs)."""
        return self.kind in ("file", "data_url")

    def open(self) -> IO[bytes]:
        """Open the video content for reading (files and data URLs only)."""
        if self.kind == "data_url":
            return io.BytesIO(_decode_data_url(self.source)[1])
        if self.kind != "file" or self.location is None:
            raise TypeError(f"a {self.kind} input has no content to read")
        try:
            return fsspec.open(self.location, "rb").open()
        except OSError as exc:
            raise InputError(f"cannot read {self.location}: {exc.strerror or exc}") from exc

    def preflight(self) -> Mp4Info | None:
        """Check the content against the service's rules; None for URLs and file ids."""
        if not self.needs_upload:
            return None
        with self.open() as f:
            return preflight(f, self.size)

    def fingerprint(self) -> str:
        """What identifies the video: `sha256:<hex>` of the content, or the URL / file id."""
        if not self.needs_upload:
            return self.wire_value()
        digest = hashlib.sha256()
        with self.open() as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"

    def wire_value(self) -> str:
        """The `video` field for inputs sent by reference (URLs, data URLs, file ids)."""
        if self.kind == "file_id":
            return self.source[len(FILE_ID_PREFIX) :].strip()
        if self.kind == "file":
            raise TypeError("a file input is streamed; use VideoInput.encode_body()")
        return self.source

    def encode_body(self, fields: dict[str, object]) -> tuple[int, AsyncIterator[bytes]]:
        """The JSON request body `fields` + `video`, as (exact length, async byte stream).

        For files the video is read and base64-encoded chunk by chunk while it is sent, so
        memory stays flat; call again for each attempt (a stream can be consumed once).
        """
        head = json.dumps(fields)[:-1].encode()  # the object without its closing brace
        if self.kind != "file":
            body = head + b', "video": ' + json.dumps(self.wire_value()).encode() + b"}"
            return len(body), _once(body)
        assert self.size is not None
        prefix = head + b', "video": "data:video/mp4;base64,'
        suffix = b'"}'
        length = len(prefix) + 4 * -(-self.size // 3) + len(suffix)
        return length, self._stream(prefix, suffix)

    async def _stream(self, prefix: bytes, suffix: bytes) -> AsyncIterator[bytes]:
        yield prefix
        sent = 0
        with self.open() as f:
            while chunk := f.read(_CHUNK):
                sent += len(chunk)
                if sent > (self.size or 0):
                    break
                yield base64.b64encode(chunk)
        if sent != self.size:
            # Stops the request before it is complete, so the service cannot have made a job.
            raise InputError(
                f"{self.location} changed while it was being sent ({self.size} bytes expected, "
                f"{sent} read); send it again once it is no longer being written"
            )
        yield suffix


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _decode_data_url(value: str) -> tuple[str, bytes]:
    """(media type, decoded bytes) of a base64 data URL; `InputError` if it is not one."""
    header, sep, payload = value.partition(",")
    if not sep:
        raise InputError("data URL has no ',' separating its header from its data")
    params = header[len("data:") :].split(";")
    media_type = params[0].strip().lower()
    if "base64" not in (p.strip().lower() for p in params[1:]):
        raise InputError("data URL is not base64-encoded: write it as data:video/mp4;base64,...")
    if media_type not in _ACCEPTED_DATA_TYPES:
        raise InputError(
            f"data URL holds {media_type!r}, not a video: the service accepts video/mp4"
        )
    try:
        return media_type, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"data URL's data is not valid base64 ({exc})") from exc


def is_storage_url(value: str) -> bool:
    """Whether `value` is a URL of remote or in-memory storage read through fsspec (not file://)."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in STORAGE_PROTOCOLS and scheme.lower() != "file"


def resolve_video(
    value: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
) -> VideoInput:
    """Decide what a `video` value is (see the module docstring) and check it can be sent.

    Relative paths resolve against `base_dir` (a local folder or fsspec URL; default: the
    current folder). Raises `InputError` (field `video`) before any request when the value is
    none of the accepted forms, names a missing file or a folder, or exceeds `max_bytes`.
    """
    if not isinstance(value, str) or not value.strip():
        raise InputError("is empty: give a path, an http(s) URL, a data URL or file_id:<id>")
    value = value.strip()
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        return VideoInput("url", value)
    if lowered.startswith("data:"):
        # Decoded size from the text length, so an oversize value is refused before decoding.
        payload = value.partition(",")[2]
        size = len(payload) * 3 // 4 - payload[-2:].count("=")
        _check_size(size, max_bytes, "the data URL")
        _decode_data_url(value)
        return VideoInput("data_url", value, size=size)
    if lowered.startswith(FILE_ID_PREFIX):
        if not value[len(FILE_ID_PREFIX) :].strip():
            raise InputError(f"{FILE_ID_PREFIX} needs an id after it, e.g. file_id:file-abc123")
        return VideoInput("file_id", value)
    scheme, sep, _ = value.partition("://")
    if sep and scheme.lower() not in STORAGE_PROTOCOLS:
        raise InputError(
            f"unsupported URL scheme {scheme!r}: use http(s)://, data:, file_id:, a local path "
            "or a storage URL such as s3://, gs://, az:// or memory://"
        )
    location = _locate(value, base_dir)
    try:
        fs, path = fsspec.core.url_to_fs(location)
        info = fs.info(path)
    except ImportError as exc:
        raise InputError(f"cannot read {value}: {exc}") from exc
    except FileNotFoundError:
        raise InputError(f"file not found: {location}") from None
    except OSError as exc:
        raise InputError(f"cannot read {location}: {exc}") from exc
    if info.get("type") == "directory":
        raise InputError(f"{location} is a folder, not a video file")
    size = int(info.get("size") or 0)
    if size == 0:
        raise InputError(f"{location} is empty (0 bytes)")
    _check_size(size, max_bytes, location)
    return VideoInput("file", value, location=location, size=size)


def _locate(value: str, base_dir: str | os.PathLike[str] | None) -> str:
    """The absolute location of a local path or fsspec URL, relative ones under `base_dir`."""
    if is_storage_url(value):
        return value
    if value.lower().startswith("file://"):
        return str(Path(fsspec.core.strip_protocol(value)))
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if base_dir is None:
        return str(Path.cwd() / path)
    base = os.fspath(base_dir)
    if is_storage_url(base):
        return base.rstrip("/") + "/" + value
    return str(Path(fsspec.core.strip_protocol(base)) / path)


def _check_size(size: int, max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise InputError(
            f"{what} is {_human_size(size)}, over the {_human_size(max_bytes)} upload limit "
            "(GROK_VIDEO_MAX_UPLOAD_BYTES): shorten or compress it, or host it at an https URL"
        )


def check_prompt(prompt: object) -> str:
    """The prompt as sent, or `InputError` (field `prompt`) when empty or too long."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("is empty: describe what happens next in the video", field="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"is {len(prompt)} characters, over the {MAX_PROMPT_CHARS}-character limit: shorten it",
            field="prompt",
        )
    return prompt


def check_duration(duration: object) -> int:
    """The duration as sent, or `InputError` (field `duration`) unless a whole 2–10."""
    if isinstance(duration, bool) or not isinstance(duration, int):
        if isinstance(duration, float) and duration.is_integer():
            duration = int(duration)
        else:
            raise InputError(
                f"must be a whole number of seconds from {MIN_DURATION} to {MAX_DURATION}, "
                f"got {duration!r}",
                field="duration",
            )
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise InputError(
            f"must be from {MIN_DURATION} to {MAX_DURATION} seconds, got {duration}",
            field="duration",
        )
    return duration
