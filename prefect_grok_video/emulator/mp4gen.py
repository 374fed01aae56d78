"""Playable H.264 MP4 files of any length, written in pure Python for the emulator's results.

A committed asset (`assets/gop.json` + `assets/gop.h264`, made once by
`scripts/make_emulator_asset.py` with PyAV) holds one closed group of pictures: one second of
160x90 video at 10 fps that starts with an IDR frame and has no B-frames. Repeating it gives a
valid H.264 stream of any whole number of seconds; a fractional length ends with a prefix of the
GOP whose last frame is shortened in `stts`. The file is ftyp + free (a per-file tag, so every
job's bytes differ) + moov + mdat, with one chunk holding every sample.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass
from importlib import resources

__all__ = ["TIMESCALE", "Gop", "load_gop", "make_mp4"]

#: Ticks per second of the movie and the media timelines (milliseconds).
TIMESCALE = 1000
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


@dataclass(frozen=True)
class Gop:
    """One pre-encoded closed GOP: geometry, frame rate, avcC record and length-prefixed samples."""

    width: int
    height: int
    fps: int
    avcc: bytes
    samples: tuple[bytes, ...]


@functools.lru_cache(maxsize=1)
def load_gop() -> Gop:
    """Read the committed GOP asset once."""
    assets = resources.files("prefect_grok_video.emulator") / "assets"
    meta = json.loads((assets / "gop.json").read_text())
    data = (assets / "gop.h264").read_bytes()
    samples, offset = [], 0
    for size in meta["sample_sizes"]:
        samples.append(data[offset : offset + size])
        offset += size
    if offset != len(data) or len(samples) != meta["fps"]:
        raise RuntimeError("corrupt emulator asset gop.h264: run scripts/make_emulator_asset.py")
    return Gop(
        meta["width"], meta["height"], meta["fps"], bytes.fromhex(meta["avcC"]), tuple(samples)
    )


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _stbl(gop: Gop, deltas: list[int], sizes: list[int], chunk_offset: int) -> bytes:
    avc1 = _box(
        b"avc1",
        b"\x00" * 6,
        struct.pack(">H", 1),  # data reference index
        b"\x00" * 16,
        struct.pack(">HHIIIH", gop.width, gop.height, 0x00480000, 0x00480000, 0, 1),
        bytes([18]) + b"grok-video emulator".ljust(31, b"\x00"),  # compressor name, Pascal string
        struct.pack(">Hh", 0x0018, -1),
        _box(b"avcC", gop.avcc),
    )
    runs: list[list[int]] = []
    for delta in deltas:
        if runs and runs[-1][1] == delta:
            runs[-1][0] += 1
        else:
            runs.append([1, delta])
    sync = [i + 1 for i in range(len(sizes)) if i % gop.fps == 0]
    return _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full_box(
            b"stts",
            0,
            0,
            struct.pack(f">I{2 * len(runs)}I", len(runs), *(n for run in runs for n in run)),
        ),
        _full_box(b"stss", 0, 0, struct.pack(f">I{len(sync)}I", len(sync), *sync)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        _full_box(b"stsz", 0, 0, struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes)),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
    )


def _moov(gop: Gop, duration: int, deltas: list[int], sizes: list[int], chunk_offset: int) -> bytes:
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH", 0, 0, TIMESCALE, duration, 0x00010000, 0x0100),
        b"\x00" * 10, _MATRIX, b"\x00" * 24, struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 0x000003,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration),
        b"\x00" * 8, struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", gop.width << 16, gop.height << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"VideoHandler\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    minf = _box(
        b"minf",
        _full_box(b"vmhd", 0, 1, b"\x00" * 8),
        dinf,
        _stbl(gop, deltas, sizes, chunk_offset),
    )
    return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))


def make_mp4(seconds: float, *, tag: str = "") -> bytes:
    """An H.264 MP4 of `seconds` (rounded to the millisecond) whose `free` box carries `tag`."""
    gop = load_gop()
    duration = round(seconds * TIMESCALE)
    if duration <= 0:
        raise ValueError(f"an MP4 needs a positive duration, got {seconds!r} s")
    frame = TIMESCALE // gop.fps
    count = math.ceil(duration / frame)
    deltas = [frame] * (count - 1) + [duration - frame * (count - 1)]
    samples = [gop.samples[i % gop.fps] for i in range(count)]
    sizes = [len(sample) for sample in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    free = _box(b"free", b"grok-video emulator; " + tag.encode("utf-8"))
    head = len(ftyp) + len(free)
    moov_size = len(_moov(gop, duration, deltas, sizes, 0))
    moov = _moov(gop, duration, deltas, sizes, head + moov_size + 8)
    return b"".join([ftyp, free, moov, struct.pack(">I4s", 8 + sum(sizes), b"mdat"), *samples])
