"""Stills for image-to-video: PNG or JPEG, told apart by their content, and no larger than the
service takes. `probe_image` reads only a file's first bytes and headers."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

from prefect_grok_video.errors import PreflightError

__all__ = ["MAX_IMAGE_BYTES", "ImageInfo", "check_image", "probe_image"]

#: Largest still sent (xAI's limit for image inputs is about 10 MiB).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
#: Magic numbers of other formats, so a refusal names what the file is.
_OTHERS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML (SVG?)"),
    (b"%PDF", "PDF"),
)
_FIX = "convert it to PNG or JPEG"


@dataclass(frozen=True)
class ImageInfo:
    """What a still is: its format, media type and size in pixels (0 when unknown)."""

    format: str
    width: int
    height: int

    @property
    def media_type(self) -> str:
        return "image/png" if self.format == "PNG" else "image/jpeg"


def _refuse(rule: str, message: str, found: str | None) -> PreflightError:
    return PreflightError(message, rule=rule, found=found, field="image")


def probe_image(f: IO[bytes]) -> ImageInfo:
    """What the still in `f` is; `PreflightError` (field `image`) unless PNG or JPEG."""
    head = f.read(32)
    if head.startswith(_PNG):
        # The IHDR chunk comes first: length, type, then width and height.
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise _refuse("format", "the PNG is truncated or damaged: export it again", "PNG")
        width, height = struct.unpack(">II", head[16:24])
        return ImageInfo("PNG", width, height)
    if head.startswith(_JPEG):
        return ImageInfo("JPEG", *_jpeg_size(head, f))
    found: str | None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = "WebP"
    elif head[4:8] == b"ftyp":
        found = "an MP4/ISO media file (a video, not a still)"
    else:
        found = next((name for magic, name in _OTHERS if head.startswith(magic)), None)
    what = found or ("empty" if not head else "not an image")
    raise _refuse(
        "format", f"the still is {what}; the service takes PNG or JPEG: {_FIX}", found or what
    )


def _jpeg_size(head: bytes, f: IO[bytes]) -> tuple[int, int]:
    """Width and height from a JPEG's first frame header (0, 0 if not found in the first 64 KiB)."""
    data = head + f.read(64 * 1024)
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            at += 1
            continue
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return 0, 0


def check_image(f: IO[bytes], size: int | None) -> ImageInfo:
    """Probe a still and check its size against `MAX_IMAGE_BYTES`; return what was found."""
    info = probe_image(f)
    if size is not None and size > MAX_IMAGE_BYTES:
        raise _refuse(
            "size",
            f"the still is {size / 2**20:.1f} MiB; the service takes up to "
            f"{MAX_IMAGE_BYTES // 2**20} MiB: resize or compress it (JPEG)",
            f"{size} bytes",
        )
    return info
