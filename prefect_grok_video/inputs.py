"""What a row may give as its `video`, `image`, `prompt` and `duration`, checked before anything
is sent.

A `video` value (and an `image` value, but for Files API ids) is one of (first match wins):

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
URLs are checked against the service's rules before any request (videos by
`prefect_grok_video.mp4`, stills by `prefect_grok_video.images`: PNG or JPEG); local and fsspec
files are streamed as base64 (memory does not grow with the file) with an exact
``Content-Length``.

About 430 lines: the rules of every input a row may give, kept together, since the same checks
run at validation and again at submission.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Literal, TypeVar

import fsspec

from prefect_grok_video.errors import InputError
from prefect_grok_video.images import ImageInfo, check_image, probe_image
from prefect_grok_video.mp4 import MAX_INPUT_SECONDS, MIN_INPUT_SECONDS, Mp4Info, preflight

__all__ = [
    "FILE_ID_PREFIX",
    "MAX_DURATION",
    "MAX_PROMPT_CHARS",
    "MIN_DURATION",
    "STORAGE_PROTOCOLS",
    "ImageInput",
    "MediaInput",
    "VideoInput",
    "check_choice",
    "check_duration",
    "check_prompt",
    "is_storage_url",
    "resolve_image",
    "resolve_video",
]

FILE_ID_PREFIX = "file_id:"
#: Seconds of new video an extension may ask for (API.md, section 1; `operations` has them all).
MIN_DURATION, MAX_DURATION = 2, 10
#: The longest prompt sent. The service documents no number; xAI refuses overlong prompts with
#: `invalid_argument`, so a longer one is refused here before it costs anything.
MAX_PROMPT_CHARS = 4096
#: Bytes read per chunk when encoding a file: a multiple of 3, so chunks encode independently.
_CHUNK = 3 * 64 * 1024
#: fsspec protocols read as storage (their packages, e.g. s3fs, must be installed). Others that
#: fsspec knows (ftp, http caches, archives...) are refused as not meant for inputs.
STORAGE_PROTOCOLS = frozenset(
    {"file", "local", "memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci",
     "oss", "hdfs", "webhdfs", "sftp", "ssh", "smb", "dbfs", "hf"}
)  # fmt: skip

InputKind = Literal["url", "data_url", "file_id", "file"]
#: Kept for code written against the first version, where only videos were inputs.
VideoKind = InputKind


def _human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError  # pragma: no cover


@dataclass(frozen=True)
class MediaInput:
    """A resolved `video` or `image` value: what it is, how to show it safely, how to send it."""

    #: The field the value was given in ("video" or "image"): errors name it.
    FIELD: ClassVar[str] = "video"
    #: Media types a data URL of this kind may declare.
    DATA_TYPES: ClassVar[tuple[str, ...]] = ()
    #: What the content is, in words.
    NOUN: ClassVar[str] = "a file"

    kind: InputKind
    #: The value as the user wrote it (a data URL is kept whole; use `describe()` to show it).
    source: str
    #: The local path or fsspec URL of a `file` input.
    location: str | None = None
    #: Size in bytes of the content (files and data URLs).
    size: int | None = None

    def describe(self) -> str:
        """A short, safe description for logs and reports: never a data URL's body."""
        if self.kind == "data_url":
            media_type = self.source[5:].split(";", 1)[0].split(",", 1)[0] or "data"
            return f"data:{media_type} ({_human_size(self.size or 0)} inline)"
        if self.kind == "url" and "?" in self.source:
            # A query may hold a signature or a token (a presigned URL): not for logs.
            return self.source.split("?", 1)[0] + "?…"
        return self.source

    @property
    def needs_upload(self) -> bool:
        """Whether the content is sent inline (files and data URLs)."""
        return self.kind in ("file", "data_url")

    def open(self) -> IO[bytes]:
        """Open the content for reading (files and data URLs only)."""
        if self.kind == "data_url":
            return io.BytesIO(_decode_data_url(self.source, self.FIELD, self.DATA_TYPES)[1])
        if self.kind != "file" or self.location is None:
            raise TypeError(f"a {self.kind} input has no content to read")
        try:
            opened: IO[bytes] = fsspec.open(self.location, "rb").open()
            return opened
        except OSError as exc:
            raise InputError(
                f"cannot read {self.location}: {exc.strerror or exc}", field=self.FIELD
            ) from exc

    def fingerprint(self) -> str:
        """What identifies the content: `sha256:<hex>` of it, or the URL / file id."""
        if not self.needs_upload:
            return self.wire_value()
        digest = hashlib.sha256()
        with self.open() as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"

    def wire_value(self) -> str:
        """The value sent for inputs sent by reference (URLs, data URLs, file ids)."""
        if self.kind == "file_id":
            return self.source[len(FILE_ID_PREFIX) :].strip()
        if self.kind == "file":
            raise TypeError("a file input is streamed; use encode_body()")
        return self.source

    def file_media_type(self) -> str:
        """The media type a file's data URL declares."""
        raise NotImplementedError

    def encode_body(
        self, fields: dict[str, object], name: str | None = None, *, as_object: bool = False
    ) -> tuple[int, AsyncIterator[bytes]]:
        """The JSON request body `fields` + this input as `name` (default: its field), as
        (exact length, async byte stream); `as_object` sends it as `{"url": ...}`.

        For files the content is read and base64-encoded chunk by chunk while it is sent, so
        memory stays flat; call again for each attempt (a stream can be consumed once).
        """
        head = json.dumps(fields)[:-1].encode()  # the object without its closing brace
        if fields:
            head += b", "
        head += json.dumps(name or self.FIELD).encode() + b": "
        if as_object:
            head += b'{"url": '
        close = b"}}" if as_object else b"}"
        if self.kind != "file":
            body = head + json.dumps(self.wire_value()).encode() + close
            return len(body), _once(body)
        assert self.size is not None
        prefix = head + f'"data:{self.file_media_type()};base64,'.encode()
        suffix = b'"' + close
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
                f"{sent} read); send it again once it is no longer being written",
                field=self.FIELD,
            )
        yield suffix


@dataclass(frozen=True)
class VideoInput(MediaInput):
    """A resolved `video` value (see the module docstring)."""

    FIELD: ClassVar[str] = "video"
    DATA_TYPES: ClassVar[tuple[str, ...]] = ("video/mp4", "application/octet-stream", "")
    NOUN: ClassVar[str] = "a video file"

    def preflight(
        self, seconds: tuple[float, float] = (MIN_INPUT_SECONDS, MAX_INPUT_SECONDS)
    ) -> Mp4Info | None:
        """Check the content against the service's rules for an input lasting `seconds`
        (low, high); None for URLs and file ids, whose content is not read."""
        if not self.needs_upload:
            return None
        with self.open() as f:
            return preflight(f, self.size, seconds)

    def file_media_type(self) -> str:
        return "video/mp4"


@dataclass(frozen=True)
class ImageInput(MediaInput):
    """A resolved `image` value: a still (PNG or JPEG) for image-to-video."""

    FIELD: ClassVar[str] = "image"
    DATA_TYPES: ClassVar[tuple[str, ...]] = ("image/png", "image/jpeg", "image/jpg")
    NOUN: ClassVar[str] = "an image file"

    def preflight(self) -> ImageInfo | None:
        """Check the content is a PNG or JPEG within the size limit; None for URLs."""
        if not self.needs_upload:
            return None
        with self.open() as f:
            return check_image(f, self.size)

    def file_media_type(self) -> str:
        with self.open() as f:
            return probe_image(f).media_type


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _decode_data_url(value: str, field: str, accepted: tuple[str, ...]) -> tuple[str, bytes]:
    """(media type, decoded bytes) of a base64 data URL; `InputError` if it is not one."""
    header, sep, payload = value.partition(",")
    if not sep:
        raise InputError("data URL has no ',' separating its header from its data", field=field)
    params = header[len("data:") :].split(";")
    media_type = params[0].strip().lower()
    if "base64" not in (p.strip().lower() for p in params[1:]):
        example = f"data:{accepted[0]};base64,..."
        raise InputError(f"data URL is not base64-encoded: write it as {example}", field=field)
    if media_type not in accepted:
        wanted = " or ".join(t for t in accepted if t.startswith(("video/", "image/")))
        raise InputError(
            f"data URL holds {media_type!r}, not {_a(field)}: the service accepts {wanted}",
            field=field,
        )
    try:
        return media_type, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"data URL's data is not valid base64 ({exc})", field=field) from exc


def _a(noun: str) -> str:
    """`noun` after its indefinite article: "a video", "an image"."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def is_storage_url(value: str) -> bool:
    """Whether `value` is a URL of remote or in-memory storage read through fsspec (not file://)."""
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in STORAGE_PROTOCOLS and scheme.lower() != "file"


M = TypeVar("M", bound=MediaInput)


def _resolve(
    cls: type[M],
    value: str,
    base_dir: str | os.PathLike[str] | None,
    max_bytes: int | None,
    file_ids: bool,
) -> M:
    """The input `value` names, checked as far as it can be without reading its content."""
    field = cls.FIELD
    forms = "a path, an http(s) URL" + (
        ", a data URL or file_id:<id>" if file_ids else " or a data URL"
    )
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"is empty: give {forms}", field=field)
    value = value.strip()
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        return cls("url", value)
    if lowered.startswith("data:"):
        # Decoded size from the text length, so an oversize value is refused before decoding.
        payload = value.partition(",")[2]
        size = len(payload) * 3 // 4 - payload[-2:].count("=")
        _check_size(size, max_bytes, "the data URL", field)
        _decode_data_url(value, field, cls.DATA_TYPES)
        return cls("data_url", value, size=size)
    if lowered.startswith(FILE_ID_PREFIX):
        if not file_ids:
            raise InputError(
                f"{_a(field)} cannot be given as a Files API id: give {forms}", field=field
            )
        if not value[len(FILE_ID_PREFIX) :].strip():
            raise InputError(
                f"{FILE_ID_PREFIX} needs an id after it, e.g. file_id:file-abc123", field=field
            )
        return cls("file_id", value)
    scheme, sep, _ = value.partition("://")
    if sep and scheme.lower() not in STORAGE_PROTOCOLS:
        raise InputError(
            f"unsupported URL scheme {scheme!r}: use http(s)://, data:, "
            + ("file_id:, " if file_ids else "")
            + "a local path or a storage URL such as s3://, gs://, az:// or memory://",
            field=field,
        )
    location = _locate(value, base_dir)
    try:
        fs, path = fsspec.core.url_to_fs(location)
        info = fs.info(path)
    except ImportError as exc:
        raise InputError(f"cannot read {value}: {exc}", field=field) from exc
    except FileNotFoundError:
        raise InputError(f"file not found: {location}", field=field) from None
    except OSError as exc:
        raise InputError(f"cannot read {location}: {exc}", field=field) from exc
    if info.get("type") == "directory":
        raise InputError(f"{location} is a folder, not {cls.NOUN}", field=field)
    size = int(info.get("size") or 0)
    if size == 0:
        raise InputError(f"{location} is empty (0 bytes)", field=field)
    _check_size(size, max_bytes, location, field)
    return cls("file", value, location=location, size=size)


def resolve_video(
    value: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    file_ids: bool = True,
) -> VideoInput:
    """Decide what a `video` value is (see the module docstring) and check it can be sent.

    Relative paths resolve against `base_dir` (a local folder or fsspec URL; default: the
    current folder). Raises `InputError` (field `video`) before any request when the value is
    none of the accepted forms (`file_ids=False`: a Files API id is not one), names a missing
    file or a folder, or exceeds `max_bytes`.
    """
    return _resolve(VideoInput, value, base_dir, max_bytes, file_ids)


def resolve_image(
    value: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
) -> ImageInput:
    """Decide what an `image` value is: a path, storage URL, http(s) URL or data URL (field
    `image`); like `resolve_video`, but a still cannot be a Files API id."""
    return _resolve(ImageInput, value, base_dir, max_bytes, file_ids=False)


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


def _check_size(size: int, max_bytes: int | None, what: str, field: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise InputError(
            f"{what} is {_human_size(size)}, over the {_human_size(max_bytes)} upload limit "
            "(GROK_VIDEO_MAX_UPLOAD_BYTES): shorten or compress it, or host it at an https URL",
            field=field,
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


def check_duration(
    duration: object, durations: tuple[int, int] = (MIN_DURATION, MAX_DURATION)
) -> int:
    """The duration as sent, or `InputError` (field `duration`) unless a whole number within
    `durations` (low, high; by default an extension's 2–10)."""
    low, high = durations
    if isinstance(duration, bool) or not isinstance(duration, int):
        if isinstance(duration, float) and duration.is_integer():
            duration = int(duration)
        else:
            raise InputError(
                f"must be a whole number of seconds from {low} to {high}, got {duration!r}",
                field="duration",
            )
    if not low <= duration <= high:
        raise InputError(f"must be from {low} to {high} seconds, got {duration}", field="duration")
    return duration


def check_choice(value: object, choices: Sequence[str], field: str) -> str:
    """`value` if it is one of `choices`, else `InputError` (field `field`) listing them."""
    if not isinstance(value, str) or value not in choices:
        given = repr(value) if isinstance(value, str) else type(value).__name__
        raise InputError(f"must be one of {', '.join(choices)}, got {given}", field=field)
    return value
