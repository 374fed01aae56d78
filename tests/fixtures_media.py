"""Real media made at test time with PyAV (never downloaded): MP4 clips and files that are not.

`make_mp4` encodes a tiny clip (64x64 by default, so it takes milliseconds); `mp4_factory` caches
clips per parameters for the session; the named fixtures below are the usual cases. The files are
shared by the whole session: copy one before changing it.

`data_url` turns bytes or a file into a base64 data URL, the form a manifest or a submit takes
inline, and `sha256_key` names that content as the services count it; `write_csv` writes rows
as a CSV manifest.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import os
import random
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import av
import pytest

__all__ = ["data_url", "make_audio_mp4", "make_large_mp4", "make_mp4", "sha256_key", "write_csv"]

#: codec argument -> (PyAV encoder, encoder options)
_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast"}),
    "h265": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
    "av1": ("libsvtav1", {"preset": "12"}),
    "mpeg4": ("mpeg4", {}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
}
#: container argument -> FFmpeg muxer
_MUXERS = {
    "mp4": "mp4",
    "mov": "mov",
    "webm": "webm",
    "matroska": "matroska",
    "mkv": "matroska",
    "ismv": "ismv",
    "mpegts": "mpegts",
}
_FOUR_GIB = 1 << 32


def _fill(frame: av.VideoFrame, index: int, rng: random.Random | None) -> None:
    """Paint frame `index`: a moving diagonal gradient in luma and a shifting tint (or noise)."""
    for number, plane in enumerate(frame.planes):
        if rng is not None:
            plane.update(rng.randbytes(plane.buffer_size))
        elif number == 0:
            rows = (
                bytes((x * 4 + y * 2 + index * 9) % 256 for x in range(plane.line_size))
                for y in range(plane.height)
            )
            plane.update(b"".join(rows))
        else:
            plane.update(
                bytes([(index * (5 + 6 * number) + 60 * number) % 256]) * plane.buffer_size
            )


def make_mp4(
    path: str | os.PathLike[str],
    *,
    codec: str = "h264",
    seconds: float = 3.0,
    fps: int = 10,
    width: int = 64,
    height: int = 64,
    container: str = "mp4",
    faststart: bool = False,
    fragmented: bool = False,
    movflags: str | None = None,
    gop: int | None = None,
    noise: bool = False,
    audio_seconds: float | None = None,
) -> Path:
    """Encode a `seconds`-long clip of moving colours to `path` and return the path.

    `fragmented` writes `frag_keyframe+empty_moov` (mvhd duration 0); `movflags` replaces the
    flags outright; `gop` sets the keyframe interval; `noise` fills frames with random bytes so the
    clip compresses badly (a large `mdat`); `audio_seconds` adds an AAC track of that length.
    """
    path = Path(path)
    encoder, encoder_options = _ENCODERS[codec]
    if codec == "av1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise
    options = dict(encoder_options)
    if gop is not None:
        options["g"] = str(gop)
    flags = [*(["faststart"] if faststart else []), *(["frag_keyframe", "empty_moov"] * fragmented)]
    if movflags is not None:
        flags = [movflags]
    muxer_options = {"movflags": "+".join(flags)} if flags else {}
    rng = random.Random(f"{codec}-{seconds}-{width}x{height}") if noise else None
    with av.open(str(path), "w", format=_MUXERS[container], options=muxer_options) as output:
        stream = output.add_stream(encoder, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio = output.add_stream("aac", rate=44100, layout="mono") if audio_seconds else None
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame(width, height, "yuv420p")
            _fill(frame, index, rng)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
        if audio is not None:
            _tone(output, audio, audio_seconds or 0.0)
    return path


def _tone(output: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    """Encode and mux `seconds` of a quiet square-wave tone into the mono AAC `stream`."""
    rate, samples = stream.rate, 1024
    for index in range(round(seconds * rate / samples)):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
        level = struct.pack("<f", 0.1 if index % 2 else -0.1)
        frame.planes[0].update(level * samples + bytes(frame.planes[0].buffer_size - 4 * samples))
        frame.sample_rate, frame.pts, frame.time_base = rate, index * samples, Fraction(1, rate)
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def make_audio_mp4(path: str | os.PathLike[str], *, seconds: float = 3.0) -> Path:
    """Encode an MP4 holding only an AAC audio track (a quiet tone) and return its path."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as output:
        _tone(output, output.add_stream("aac", rate=44100, layout="mono"), seconds)
    return path


def make_large_mp4(
    path: str | os.PathLike[str], size_bytes: int, *, largesize: bool | None = None
) -> Path:
    """Write a valid 3 s H.264 MP4 padded to `size_bytes` with a trailing sparse `free` box.

    The padding box uses a 64-bit (largesize) header when it exceeds 4 GiB, or when `largesize`
    says so; nothing but the header is written, so even gigabytes take no time or disk.
    """
    path = make_mp4(path)
    content = path.stat().st_size
    if largesize is None:
        largesize = size_bytes - content >= _FOUR_GIB
    header_size = 16 if largesize else 8
    box = max(size_bytes - content, header_size)
    if largesize:
        header = struct.pack(">I4sQ", 1, b"free", box)
    else:
        header = struct.pack(">I4s", box, b"free")
    with path.open("r+b") as f:
        f.seek(content)
        f.write(header)
        f.truncate(content + box)
    return path


def data_url(data: bytes | os.PathLike[str], media_type: str = "video/mp4") -> str:
    """`data` (bytes, or a file's path) as a `data:<media_type>;base64,<body>` URL."""
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def sha256_key(data: bytes | os.PathLike[str]) -> str:
    """`sha256:<hex>` of `data` (bytes, or a file's content): the key the emulator and the
    independent API count an inline or local input under, and a local video's fingerprint."""
    if not isinstance(data, bytes):
        data = Path(data).read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_csv(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, object]],
    fields: Iterable[str] | None = None,
) -> Path:
    """Write `rows` as a CSV manifest at `path` (UTF-8, a header line of `fields`, by default
    every key of the rows in the order first seen; a missing value is an empty cell)."""
    path, rows = Path(path), list(rows)
    if fields is None:
        fields = dict.fromkeys(key for row in rows for key in row)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def mp4_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A callable taking `make_mp4`'s keyword arguments and returning a cached clip's path."""
    folder = tmp_path_factory.mktemp("media")
    cache: dict[tuple, Path] = {}

    def factory(**kwargs) -> Path:
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            container = kwargs.get("container", "mp4")
            suffix = {"matroska": "mkv", "mpegts": "ts"}.get(container, container)
            cache[key] = make_mp4(folder / f"clip{len(cache)}.{suffix}", **kwargs)
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def h264_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s 64x64 H.264 MP4 (accepted by preflight)."""
    return mp4_factory(codec="h264")


@pytest.fixture(scope="session")
def h265_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s 64x64 H.265 MP4 (accepted)."""
    return mp4_factory(codec="h265")


@pytest.fixture(scope="session")
def av1_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s 64x64 AV1 MP4 (accepted)."""
    return mp4_factory(codec="av1")


@pytest.fixture(scope="session")
def short_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 1 s H.264 MP4 (too short)."""
    return mp4_factory(seconds=1.0)


@pytest.fixture(scope="session")
def long_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 20 s H.264 MP4 (too long)."""
    return mp4_factory(seconds=20.0)


@pytest.fixture(scope="session")
def mpeg4_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s MPEG-4 Part 2 (`mp4v`) MP4 (refused codec)."""
    return mp4_factory(codec="mpeg4")


@pytest.fixture(scope="session")
def vp9_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s VP9 (`vp09`) clip in an MP4 container (refused codec)."""
    return mp4_factory(codec="vp9")


@pytest.fixture(scope="session")
def webm_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s VP9 WebM file (not an MP4)."""
    return mp4_factory(codec="vp9", container="webm")


@pytest.fixture(scope="session")
def mov_clip(mp4_factory: Callable[..., Path]) -> Path:
    """A 3 s H.264 QuickTime MOV (brand `qt  `, not an MP4)."""
    return mp4_factory(container="mov")


@pytest.fixture(scope="session")
def truncated_clip(h264_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The H.264 clip cut in half (its `mdat` runs past the end of the file)."""
    data = h264_clip.read_bytes()
    path = tmp_path_factory.mktemp("truncated") / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="session")
def not_mp4_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text file named like an MP4."""
    path = tmp_path_factory.mktemp("text") / "notes.mp4"
    path.write_text("these are notes, not a video\n")
    return path


@pytest.fixture(scope="session")
def empty_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty file named like an MP4."""
    path = tmp_path_factory.mktemp("empty") / "empty.mp4"
    path.touch()
    return path


@pytest.fixture(scope="session")
def audio_only_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s MP4 with an AAC audio track and no video track."""
    return make_audio_mp4(tmp_path_factory.mktemp("audio") / "audio.mp4")


def png(width: int = 8, height: int = 6) -> bytes:
    """A tiny real RGB PNG, written with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes([40, 120, 200]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


@functools.cache
def jpeg(width: int = 32, height: int = 24) -> bytes:
    """A tiny real JPEG, encoded with PyAV's MJPEG encoder."""
    context = av.CodecContext.create("mjpeg", "w")
    context.width, context.height, context.pix_fmt = width, height, "yuvj420p"
    context.time_base = Fraction(1, 25)
    frame = av.VideoFrame(width, height, "yuvj420p")
    for plane in frame.planes:
        plane.update(bytes([100]) * plane.buffer_size)
    return b"".join(bytes(packet) for packet in context.encode(frame) + context.encode(None))
