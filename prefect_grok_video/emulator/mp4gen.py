"""Playable H.264 MP4 files of any length and frame size, written in pure Python for the
emulator's results.

A committed asset (`assets/gop.json` + `assets/gop.h264`, made once by
`scripts/make_emulator_asset.py` with PyAV) holds one closed group of pictures: one second of
160x90 video at 10 fps that starts with an IDR frame and has no B-frames. Repeating it gives a
valid H.264 stream of any whole number of seconds; a fractional length ends with a prefix of the
GOP whose last frame is shortened in `stts`. The file is ftyp + free (a per-file tag, so every
job's bytes differ) + moov + mdat, with one chunk holding every sample.

Other frame sizes (a generation's 854x480, an input's own size) use a GOP written here bit by
bit (`flat_gop`): an IDR picture whose every macroblock is intra 16x16 DC-predicted with no
residual (a flat mid-grey frame, one byte per macroblock) and P pictures that skip every
macroblock, so even 1080p costs about 8 KB a second and no encoder.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass
from importlib import resources

__all__ = ["TIMESCALE", "Gop", "flat_gop", "load_gop", "make_mp4"]

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


class _Bits:
    """An H.264 RBSP writer: fixed-width and Exp-Golomb fields, then the trailing bits."""

    def __init__(self) -> None:
        self._bits: list[str] = []

    def u(self, width: int, value: int) -> _Bits:
        self._bits.append(format(value, f"0{width}b"))
        return self

    def ue(self, value: int) -> _Bits:
        code = format(value + 1, "b")
        self._bits.append("0" * (len(code) - 1) + code)
        return self

    def raw(self, bits: str) -> _Bits:
        self._bits.append(bits)
        return self

    def nal(self, ref_idc: int, unit_type: int) -> bytes:
        """The NAL unit: header, then the RBSP with its stop bit and emulation prevention."""
        bits = "".join(self._bits) + "1"
        bits += "0" * (-len(bits) % 8)
        rbsp = int(bits, 2).to_bytes(len(bits) // 8, "big")
        escaped, zeros = bytearray([(ref_idc << 5) | unit_type]), 0
        for byte in rbsp:
            if zeros >= 2 and byte <= 3:
                escaped.append(3)
                zeros = 0
            escaped.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(escaped)


#: One macroblock of the IDR picture: mb_type I_16x16_2_0_0 (DC prediction, no coded block),
#: intra_chroma_pred_mode DC, mb_qp_delta 0 and an empty DC block (coeff_token, nC = 0).
_GREY_MACROBLOCK = "00100111"
_LOG2_MAX_FRAME_NUM = 4


@functools.lru_cache(maxsize=32)
def flat_gop(width: int, height: int, fps: int = 10) -> Gop:
    """One second of flat grey H.264 (Baseline) at `width` x `height` (even), written directly."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"frame size must be positive and even, got {width}x{height}")
    if fps > 1 << _LOG2_MAX_FRAME_NUM:
        raise ValueError(f"at most {1 << _LOG2_MAX_FRAME_NUM} frames a GOP, got {fps}")
    columns, rows = -(-width // 16), -(-height // 16)
    crop_right, crop_bottom = (columns * 16 - width) // 2, (rows * 16 - height) // 2
    sps = _Bits().u(8, 66).u(8, 0xC0).u(8, 40)  # Baseline (constraint sets 0 and 1), level 4
    sps.ue(0).ue(_LOG2_MAX_FRAME_NUM - 4).ue(2).ue(1).u(1, 0)  # POC type 2, one reference frame
    sps.ue(columns - 1).ue(rows - 1).u(1, 1).u(1, 1)  # frames only, direct 8x8 inference
    if crop_right or crop_bottom:
        sps.u(1, 1).ue(0).ue(crop_right).ue(0).ue(crop_bottom)
    else:
        sps.u(1, 0)
    sps.u(1, 0)  # no VUI
    pps = _Bits().ue(0).ue(0).u(1, 0).u(1, 0).ue(0).ue(0).ue(0).u(1, 0).u(2, 0)
    pps.ue(0).ue(0).ue(0).u(1, 0).u(1, 0).u(1, 0)  # QP 26, no deblocking/constrained/redundant
    sps_nal, pps_nal = sps.nal(3, 7), pps.nal(3, 8)
    avcc = bytes([1, 66, 0xC0, 40, 0xFF, 0xE1]) + struct.pack(">H", len(sps_nal)) + sps_nal
    avcc += b"\x01" + struct.pack(">H", len(pps_nal)) + pps_nal
    # I slice: first_mb 0, type I (7), PPS 0, frame_num 0, idr_pic_id 0, marking flags, QP delta 0.
    idr = _Bits().ue(0).ue(7).ue(0).u(_LOG2_MAX_FRAME_NUM, 0).ue(0).u(2, 0).ue(0)
    idr.raw(_GREY_MACROBLOCK * (columns * rows))
    samples = [idr.nal(3, 5)]
    for frame_num in range(1, fps):
        # P slice: type P (5), no overrides or reordering, sliding window, every macroblock skipped.
        p = _Bits().ue(0).ue(5).ue(0).u(_LOG2_MAX_FRAME_NUM, frame_num).u(3, 0).ue(0)
        samples.append(p.ue(columns * rows).nal(2, 1))
    samples = [struct.pack(">I", len(nal)) + nal for nal in samples]
    return Gop(width, height, fps, avcc, tuple(samples))


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


def make_mp4(seconds: float, *, tag: str = "", size: tuple[int, int] | None = None) -> bytes:
    """An H.264 MP4 of `seconds` (rounded to the millisecond) whose `free` box carries `tag`:
    the asset's 160x90 test card, or flat grey frames of `size` (width, height; even)."""
    gop = load_gop()
    if size is not None and size != (gop.width, gop.height):
        gop = flat_gop(*size, fps=gop.fps)
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
