"""A small reader of MP4 boxes and the service's input rules, checked before money is spent.

The service accepts an MP4 container holding H.264, H.265 or AV1 video, 2 to 15 seconds long
(API.md, section 1). `probe` reads only box headers and the `moov` box (never the media data),
so checking a large file costs a few reads whatever its size; `preflight` applies the rules.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from prefect_grok_video.errors import PreflightError

__all__ = [
    "ACCEPTED_CODECS",
    "MAX_INPUT_SECONDS",
    "MIN_INPUT_SECONDS",
    "Mp4Info",
    "check",
    "preflight",
    "probe",
]

MIN_INPUT_SECONDS = 2.0
MAX_INPUT_SECONDS = 15.0

#: Sample-entry types of the video codecs the service accepts, and their common names.
ACCEPTED_CODECS = {
    "avc1": "H.264",
    "avc3": "H.264",
    "hvc1": "H.265",
    "hev1": "H.265",
    "av01": "AV1",
}
#: Other sample-entry types, named so that a refusal says what was found.
_OTHER_CODECS = {
    "mp4v": "MPEG-4 Part 2",
    "vp09": "VP9",
    "vp08": "VP8",
    "mjpa": "Motion JPEG",
    "jpeg": "Motion JPEG",
    "apch": "ProRes",
    "apcn": "ProRes",
    "s263": "H.263",
    "encv": "encrypted video",
}
#: ftyp brands of the ISO base media / MP4 family (QuickTime's `qt  ` is not one of them).
_MP4_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42",
     "mp71", "avc1", "av01", "hvc1", "dash", "cmfc", "cmf2", "msdh", "msix", "M4V ", "MSNV",
     "f4v ", "3gp4", "3gp5", "3gp6", "mmp4"}
)  # fmt: skip
#: Magic numbers of formats people mistake for MP4, so the refusal names what the file is.
_SIGNATURES = (
    (b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (b"RIFF", "AVI or WAV (RIFF)"),
    (b"GIF8", "GIF"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"FLV", "FLV"),
    (b"OggS", "Ogg"),
    (b"\x00\x00\x01\xba", "MPEG program stream"),
    (b"\x47", "MPEG transport stream"),
)
_MAX_MOOV_BYTES = 64 * 1024 * 1024
_VIDEO_FIX = "re-encode it, e.g. `ffmpeg -i in -c:v libx264 -an out.mp4`"


@dataclass(frozen=True)
class Mp4Info:
    """What `probe` found in a file: brands, duration (seconds) and the first video track."""

    major_brand: str
    compatible_brands: tuple[str, ...]
    duration: float | None
    codec: str | None
    width: int | None = None
    height: int | None = None

    @property
    def codec_name(self) -> str:
        """A human name for the video codec, e.g. `H.264 (avc1)`."""
        if self.codec is None:
            return "no video track"
        name = ACCEPTED_CODECS.get(self.codec) or _OTHER_CODECS.get(self.codec)
        return f"{name} ({self.codec})" if name else f"'{self.codec}'"


@dataclass(frozen=True)
class _Box:
    type: str
    start: int  # offset of the header
    payload: int  # offset of the payload
    end: int  # offset after the box


def _refuse(rule: str, message: str, found: str | None) -> PreflightError:
    return PreflightError(message, rule=rule, found=found, field="video")


def _iter_boxes(f: BinaryIO, start: int, end: int) -> Iterator[_Box]:
    """Yield the boxes between two offsets of `f`, checking each fits in the space it claims."""
    offset = start
    while offset + 8 <= end:
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise _refuse(
                "container",
                f"truncated MP4: it ends inside a box header at byte {offset}",
                f"{offset} bytes",
            )
        size, kind = struct.unpack(">I4s", header)
        payload = offset + 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                raise _refuse("container", "truncated MP4: box header cut short", f"{offset} bytes")
            (size,) = struct.unpack(">Q", large)
            payload += 8
        elif size == 0:
            size = end - offset
        name = kind.decode("latin-1")
        if size < payload - offset:
            raise _refuse(
                "container", f"corrupt MP4: box '{name}' at byte {offset} has size {size}", name
            )
        if offset + size > end:
            raise _refuse(
                "container",
                f"truncated MP4: box '{name}' at byte {offset} needs {size} bytes but only "
                f"{end - offset} remain; the file was cut short (download or copy it again)",
                f"{end} bytes",
            )
        yield _Box(name, offset, payload, offset + size)
        offset += size


def _read(f: BinaryIO, box: _Box) -> bytes:
    f.seek(box.payload)
    return f.read(box.end - box.payload)


def _child_boxes(data: bytes, start: int = 0) -> dict[str, list[bytes]]:
    """Children of an in-memory container box, by type (malformed tails are ignored)."""
    children: dict[str, list[bytes]] = {}
    offset = start
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= len(data):
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = len(data) - offset
        if size < header or offset + size > len(data):
            break
        children.setdefault(kind.decode("latin-1"), []).append(
            data[offset + header : offset + size]
        )
        offset += size
    return children


def _timescale_duration(full_box: bytes) -> tuple[int, int] | None:
    """(timescale, duration) of an `mvhd` or `mdhd` payload."""
    if len(full_box) < 4:
        return None
    if full_box[0] == 1:
        if len(full_box) < 32:
            return None
        timescale, duration = struct.unpack_from(">IQ", full_box, 20)
        unknown = 0xFFFFFFFFFFFFFFFF
    else:
        if len(full_box) < 20:
            return None
        timescale, duration = struct.unpack_from(">II", full_box, 12)
        unknown = 0xFFFFFFFF
    if timescale == 0 or duration in (0, unknown):
        return None
    return timescale, duration


def _video_track(moov: dict[str, list[bytes]]) -> tuple[str, int | None, int | None, float | None]:
    """(codec, width, height, duration) of the first video track, or codec None if there is none."""
    for trak in moov.get("trak", []):
        mdia = _child_boxes(trak).get("mdia", [b""])[0]
        parts = _child_boxes(mdia)
        hdlr = parts.get("hdlr", [b""])[0]
        if hdlr[8:12] != b"vide":
            continue
        mdhd = _timescale_duration(parts.get("mdhd", [b""])[0])
        duration = mdhd[1] / mdhd[0] if mdhd else None
        minf = _child_boxes(parts.get("minf", [b""])[0])
        stbl = _child_boxes(minf.get("stbl", [b""])[0])
        stsd = stbl.get("stsd", [b""])[0]
        if len(stsd) < 16:
            return None, None, None, duration  # type: ignore[return-value]
        codec = stsd[12:16].decode("latin-1")
        width = height = None
        if len(stsd) >= 8 + 8 + 36:  # visual sample entry: width and height after 24 bytes
            width, height = struct.unpack_from(">HH", stsd, 8 + 8 + 24)
        return codec, width, height, duration
    return None, None, None, None  # type: ignore[return-value]


def _describe_non_mp4(head: bytes) -> str:
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if not head:
        return "an empty file"
    return f"no MP4 'ftyp' box (starts with {head[:8]!r})"


def probe(f: BinaryIO, size: int | None = None) -> Mp4Info:
    """Read the structure of the MP4 in the seekable binary file `f` (of `size` bytes).

    Raises `PreflightError` (rule `container`) when the file is not an MP4 or is truncated.
    """
    if size is None:
        size = f.seek(0, 2)
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        raise _refuse(
            "container",
            f"not an MP4 file (found {_describe_non_mp4(head)}); the service accepts MP4 only: "
            f"{_VIDEO_FIX}",
            _describe_non_mp4(head),
        )
    ftyp = moov = None
    media = fragments = False
    for box in _iter_boxes(f, 0, size):
        if box.type == "ftyp" and ftyp is None:
            ftyp = _read(f, box)
        elif box.type == "moov":
            if box.end - box.payload > _MAX_MOOV_BYTES:
                raise _refuse("container", "the MP4's 'moov' box is implausibly large", "moov")
            moov = _read(f, box)
        elif box.type == "mdat":
            media = True
        elif box.type == "moof":
            fragments = True
    assert ftyp is not None  # the first box is ftyp
    major = ftyp[0:4].decode("latin-1")
    compatible = tuple(ftyp[i : i + 4].decode("latin-1") for i in range(8, len(ftyp) - 3, 4))
    if not ({major, *compatible} & _MP4_BRANDS):
        found = "QuickTime MOV" if major == "qt  " else f"brand '{major}'"
        raise _refuse(
            "container",
            f"not an MP4 file (found {found}); the service accepts MP4 only: remux it, e.g. "
            "`ffmpeg -i in.mov -c copy out.mp4`",
            found,
        )
    if moov is None:
        raise _refuse(
            "container",
            "incomplete MP4: it has no 'moov' box (the recording was not finished or the file "
            "was cut short)",
            "no moov",
        )
    if not media:
        raise _refuse(
            "container",
            "incomplete MP4: it has no media data ('mdat' box); the file was cut short after its "
            "header (download or copy it again)",
            "no mdat",
        )
    boxes = _child_boxes(moov)
    codec, width, height, track_duration = _video_track(boxes)
    if fragments and "mvex" in boxes:
        # In a fragmented MP4, mvhd and mdhd count only the samples inside moov (often none, or
        # just the first fragment): the whole length is in mvex/mehd, when the muxer wrote one.
        duration = _fragmented_duration(boxes)
    else:
        mvhd = _timescale_duration(boxes.get("mvhd", [b""])[0])
        duration = mvhd[1] / mvhd[0] if mvhd else track_duration
    return Mp4Info(major, compatible, duration, codec, width, height)


def _fragmented_duration(moov: dict[str, list[bytes]]) -> float | None:
    """Duration of a fragmented MP4 from `mvex/mehd` and the `mvhd` timescale."""
    mehd = _child_boxes(moov["mvex"][0]).get("mehd", [b""])[0]
    mvhd = moov.get("mvhd", [b""])[0]
    if len(mehd) < (12 if mehd[:1] == b"\x01" else 8) or len(mvhd) < 20:
        return None
    timescale = struct.unpack_from(">I", mvhd, 20 if mvhd[0] == 1 else 12)[0]
    value = struct.unpack_from(">Q" if mehd[0] == 1 else ">I", mehd, 4)[0]
    return value / timescale if timescale and value else None


def check(info: Mp4Info) -> Mp4Info:
    """Apply the service's input rules to what `probe` found; raise `PreflightError` if broken."""
    if info.codec is None:
        raise _refuse("codec", "the MP4 has no video track", "no video track")
    if info.codec not in ACCEPTED_CODECS:
        raise _refuse(
            "codec",
            f"the video codec is {info.codec_name}; the service accepts H.264, H.265 or AV1: "
            f"{_VIDEO_FIX}",
            info.codec_name,
        )
    if info.duration is None:
        raise _refuse(
            "duration",
            "the MP4 does not say how long it is (no duration in its header, as in a fragmented "
            "MP4): remux it into a plain MP4, e.g. `ffmpeg -i in.mp4 -c copy out.mp4`",
            None,
        )
    seconds = round(info.duration, 3)
    if not MIN_INPUT_SECONDS <= seconds <= MAX_INPUT_SECONDS:
        fix = "use a longer clip" if seconds < MIN_INPUT_SECONDS else "trim it"
        raise _refuse(
            "duration",
            f"the video is {seconds:g} s long; the service accepts {MIN_INPUT_SECONDS:g} to "
            f"{MAX_INPUT_SECONDS:g} s: {fix}",
            f"{seconds:g} s",
        )
    return info


def preflight(f: BinaryIO, size: int | None = None) -> Mp4Info:
    """Probe `f` and check it against the service's rules; return what was found."""
    return check(probe(f, size))
