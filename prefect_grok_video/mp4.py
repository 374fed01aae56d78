"""A small reader of MP4 boxes and the service's input rules, checked before money is spent.

The service accepts an MP4 container holding H.264, H.265 or AV1 video, 2 to 15 seconds long
(API.md, section 1). `probe` reads only box headers and the `moov` and `moof` boxes (never the
media data), so checking a large file costs a few reads whatever its size; `preflight` applies
the rules.

About 430 lines: the box reader and the rules it serves are one piece; splitting them would
export the reader's internals for one user.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from prefect_grok_video.errors import PreflightError

__all__ = [
    "ACCEPTED_CODECS",
    "MAX_INPUT_SECONDS",
    "MIN_INPUT_SECONDS",
    "Mp4Info",
    "check",
    "check_length",
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
)
_TS_PACKET = 188  # an MPEG transport stream is 188-byte packets, each starting with 0x47
_MAX_MOOV_BYTES = 64 * 1024 * 1024
_MAX_MOOF_BYTES = 1024 * 1024  # a fragment header: ~16 bytes a sample, so ~65,000 samples
_MAX_FRAGMENTS = 100_000  # a 2-15 s clip has at most a few thousand, even one per frame
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


def _iter_boxes(f: IO[bytes], start: int, end: int) -> Iterator[_Box]:
    """Yield the boxes between two offsets of `f`, checking each fits in the space it claims."""
    offset = start
    while offset < end:
        f.seek(offset)
        header = f.read(min(8, end - offset))
        size = struct.unpack(">I", header[:4])[0] if len(header) == 8 else None
        if size == 1:
            header += f.read(min(8, end - offset - 8))
        if size is None or len(header) < (16 if size == 1 else 8):
            # Even 1-7 stray bytes after the last box are a header cut short: a truncated file.
            raise _refuse(
                "container",
                f"truncated MP4: it ends inside a box header at byte {offset}; the file was cut "
                "short (download or copy it again)",
                f"{end} bytes",
            )
        name = header[4:8].decode("latin-1")
        if size == 1:
            (size,) = struct.unpack(">Q", header[8:])
        elif size == 0:
            size = end - offset
        if size < len(header):
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
        yield _Box(name, offset, offset + len(header), offset + size)
        offset += size


def _read(f: IO[bytes], box: _Box) -> bytes:
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


def _first(boxes: dict[str, list[bytes]], kind: str) -> bytes:
    return boxes.get(kind, [b""])[0]


def _media_time(full_box: bytes) -> tuple[int, int] | None:
    """(timescale, duration) of an `mvhd` or `mdhd` payload; duration 0 when not given."""
    wide = full_box[:1] == b"\x01"
    if len(full_box) < (32 if wide else 20):
        return None
    timescale, duration = struct.unpack_from(">IQ" if wide else ">II", full_box, 20 if wide else 12)
    if duration == (1 << (64 if wide else 32)) - 1:  # all ones: unknown
        duration = 0
    return (timescale, duration) if timescale else None


@dataclass(frozen=True)
class _Track:
    """The first video track in `moov`: codec, size, id and times in its `mdhd` timescale."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    track_id: int | None = None
    timescale: int = 0
    duration: int = 0  # from mdhd; in a fragmented MP4 it counts only the samples in moov
    moov_ticks: int = 0  # the sum of stts: the samples described in moov


def _video_track(moov: dict[str, list[bytes]]) -> _Track:
    """The first video track of `moov` (codec None if there is none)."""
    for trak in moov.get("trak", []):
        boxes = _child_boxes(trak)
        mdia = _child_boxes(_first(boxes, "mdia"))
        if _first(mdia, "hdlr")[8:12] != b"vide":
            continue
        tkhd = _first(boxes, "tkhd")
        at = 20 if tkhd[:1] == b"\x01" else 12
        track_id = struct.unpack_from(">I", tkhd, at)[0] if len(tkhd) >= at + 4 else None
        timescale, duration = _media_time(_first(mdia, "mdhd")) or (0, 0)
        stbl = _child_boxes(_first(_child_boxes(_first(mdia, "minf")), "stbl"))
        stts = _first(stbl, "stts")
        entries = struct.unpack_from(">I", stts, 4)[0] if len(stts) >= 8 else 0
        table = stts[8 : 8 + 8 * entries]
        ticks = sum(n * delta for n, delta in struct.iter_unpack(">II", table[: len(table) & ~7]))
        stsd = _first(stbl, "stsd")
        codec = stsd[12:16].decode("latin-1") if len(stsd) >= 16 else None
        width = height = None
        if len(stsd) >= 8 + 8 + 36:  # visual sample entry: width and height after 24 bytes
            width, height = struct.unpack_from(">HH", stsd, 8 + 8 + 24)
        return _Track(codec, width, height, track_id, timescale, duration, ticks)
    return _Track()


def _trun_ticks(trun: bytes, default: int) -> int | None:
    """The sum of a `trun` payload's sample durations (its own, else `default`); None if unknown."""
    if len(trun) < 8:
        return None
    flags, count = struct.unpack_from(">II", trun)
    if not flags & 0x100:  # no per-sample durations
        return count * default if default or not count else None
    start = 8 + 4 * (flags & 0x1) + 4 * (flags >> 2 & 0x1)  # after data offset, first flags
    stride = 4 * bin(flags & 0xF00).count("1")  # duration, size, flags, composition offset
    if start + count * stride > len(trun):
        return None
    return sum(int(struct.unpack_from(">I", trun, start + i * stride)[0]) for i in range(count))


def _fragment_ticks(f: IO[bytes], moofs: list[_Box], track: _Track, mvex: bytes) -> int | None:
    """The video track's duration in the `moof` boxes (its timescale); None if unknown."""
    default = 0
    for trex in _child_boxes(mvex).get("trex", []):
        if len(trex) >= 24 and struct.unpack_from(">I", trex, 4)[0] == track.track_id:
            default = struct.unpack_from(">I", trex, 12)[0]
    ticks = 0
    for box in moofs:
        if box.end - box.payload > _MAX_MOOF_BYTES:
            raise _refuse(
                "container",
                f"the MP4's 'moof' box at byte {box.start} is implausibly large",
                "moof",
            )
        for traf in _child_boxes(_read(f, box)).get("traf", []):
            boxes = _child_boxes(traf)
            tfhd = _first(boxes, "tfhd")
            if len(tfhd) < 8 or struct.unpack_from(">I", tfhd, 4)[0] != track.track_id:
                continue
            flags = struct.unpack_from(">I", tfhd)[0]
            at = 8 + 8 * (flags & 0x1) + 4 * (flags >> 1 & 0x1)  # after base offset, description
            own = flags & 0x8 and len(tfhd) >= at + 4
            sample_default = struct.unpack_from(">I", tfhd, at)[0] if own else default
            for trun in boxes.get("trun", []):
                run = _trun_ticks(trun, sample_default)
                if run is None:
                    return None
                ticks += run
    return ticks


def _duration(
    f: IO[bytes], moov: dict[str, list[bytes]], track: _Track, moofs: list[_Box]
) -> float | None:
    """Seconds of the video track, or of the movie (`mvhd`, the longest track) if it says none."""
    movie = _media_time(_first(moov, "mvhd"))
    if moofs and "mvex" in moov:
        # Fragmented: mvhd and mdhd count only the samples in moov (often none). The whole length
        # is in mvex/mehd when the muxer wrote one (ffmpeg does not), else in the moof boxes.
        mehd = _first(_child_boxes(moov["mvex"][0]), "mehd")
        wide = mehd[:1] == b"\x01"
        if movie and len(mehd) >= (12 if wide else 8):
            value: int = struct.unpack_from(">Q" if wide else ">I", mehd, 4)[0]
            if value:
                return value / movie[0]
        if track.track_id is None or not track.timescale:
            return None
        ticks = _fragment_ticks(f, moofs, track, moov["mvex"][0])
        if ticks is None or track.moov_ticks + ticks == 0:
            return None
        return (track.moov_ticks + ticks) / track.timescale
    if track.timescale and track.duration:
        return track.duration / track.timescale
    return movie[1] / movie[0] if movie and movie[1] else None


def _is_transport_stream(f: IO[bytes], size: int) -> bool:
    """Whether `f` opens with two or three 188-byte packets, each starting with sync byte 0x47."""
    offsets = range(0, min(size, 3 * _TS_PACKET), _TS_PACKET)
    for offset in offsets:
        f.seek(offset)
        if f.read(1) != b"\x47":
            return False
    return len(offsets) >= 2


def _describe_non_mp4(f: IO[bytes], head: bytes, size: int) -> str:
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if not head:
        return "an empty file"
    if _is_transport_stream(f, size):
        return "MPEG transport stream"
    return f"no MP4 'ftyp' box (starts with {head[:8]!r})"


def probe(f: IO[bytes], size: int | None = None) -> Mp4Info:
    """Read the structure of the MP4 in the seekable binary file `f` (of `size` bytes).

    Raises `PreflightError` (rule `container`) when the file is not an MP4 or is truncated.
    """
    if size is None:
        size = f.seek(0, 2)
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        found = _describe_non_mp4(f, head, size)
        raise _refuse(
            "container",
            f"not an MP4 file (found {found}); the service accepts MP4 only: {_VIDEO_FIX}",
            found,
        )
    ftyp = moov = None
    media = False
    moofs: list[_Box] = []
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
            if len(moofs) == _MAX_FRAGMENTS:
                raise _refuse(
                    "container",
                    f"the MP4 has too many fragments (over {_MAX_FRAGMENTS:,} 'moof' boxes)",
                    "too many fragments",
                )
            moofs.append(box)
    assert ftyp is not None  # the first box is ftyp
    major = ftyp[0:4].decode("latin-1")
    compatible = tuple(ftyp[i : i + 4].decode("latin-1") for i in range(8, len(ftyp) - 3, 4))
    if not ({major, *compatible} & _MP4_BRANDS):
        quicktime = major == "qt  "
        found = "QuickTime MOV" if quicktime else f"brand '{major}'"
        files = "in.mov -c copy out.mp4" if quicktime else "input -c copy output.mp4"
        raise _refuse(
            "container",
            f"not an MP4 file (found {found}); the service accepts MP4 only: remux it, e.g. "
            f"`ffmpeg -i {files}`",
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
    track = _video_track(boxes)
    duration = _duration(f, boxes, track, moofs)
    return Mp4Info(major, compatible, duration, track.codec, track.width, track.height)


def check(
    info: Mp4Info, seconds: tuple[float, float] = (MIN_INPUT_SECONDS, MAX_INPUT_SECONDS)
) -> Mp4Info:
    """Apply the service's input rules to what `probe` found (a video of H.264, H.265 or AV1
    lasting `seconds`, low to high: the operation's input length); `PreflightError` if broken."""
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
            "the MP4 does not say how long its video is (no duration in its headers or "
            "fragments): remux it into a plain MP4, e.g. `ffmpeg -i in.mp4 -c copy out.mp4`",
            None,
        )
    check_length(info.duration, seconds)
    return info


def check_length(duration: float, seconds: tuple[float, float]) -> None:
    """`PreflightError` unless an input of `duration` seconds lies within `seconds`."""
    low, high = seconds
    length = round(duration, 3)
    if not low <= length <= high:
        fix = "use a longer clip" if length < low else "trim it"
        raise _refuse(
            "duration",
            f"the video is {length:g} s long; the service accepts {low:g} to {high:g} s: {fix}",
            f"{length:g} s",
        )


def preflight(
    f: IO[bytes],
    size: int | None = None,
    seconds: tuple[float, float] = (MIN_INPUT_SECONDS, MAX_INPUT_SECONDS),
) -> Mp4Info:
    """Probe `f` and check it against the service's rules for an input of `seconds`."""
    return check(probe(f, size), seconds)
