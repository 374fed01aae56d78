"""The emulator's results drawn to look like what was asked (`EmulatorConfig.pictures`).

- a generation: the still, panning slowly, or (without one) a sky in colours seeded by the
  prompt with a sun on a path seeded by it;
- an edit: the input's frames, recoloured by the prompt;
- an extension: the input's frames, then new ones grown from its last frame (it pans on and
  takes the prompt's colour).

Every frame carries the prompt in a band at the bottom and its time at the top left, so the
first, middle and last frames of a result tell apart. Frames are built as YUV 4:2:0 planes
in bytes (no numpy) and encoded by PyAV's libx264 at `FPS` frames a second; the file lasts
exactly the seconds asked. Cost, measured on 2 cores: about 0.1 s a second of 854x480 video.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from prefect_grok_video.emulator.font import GLYPH_HEIGHT, GLYPH_WIDTH, text_runs

__all__ = ["FPS", "draw_video"]

FPS = 10
_MS_PER_FRAME = 1000 // FPS
#: Limited-range luma of the text and of the band behind it.
_WHITE, _BAND = 235, 28


@dataclass
class _Picture:
    """One frame as tight YUV 4:2:0 planes (width and height even)."""

    width: int
    height: int
    y: bytearray
    u: bytearray
    v: bytearray

    def copy(self) -> _Picture:
        return _Picture(self.width, self.height, self.y[:], self.u[:], self.v[:])


def draw_video(
    action: str,
    prompt: str,
    seconds: float,
    size: tuple[int, int],
    *,
    source: bytes | None = None,
    tag: str = "",
) -> bytes:
    """An H.264 MP4 of `seconds` at `size` for a job: `source` is the input clip of an edit or
    an extension, or the still of a generation (None: drawn from the prompt alone)."""
    width, height = size
    count = math.ceil(round(seconds * 1000) / _MS_PER_FRAME)
    seed = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    if action == "generate":
        first = _still(source, width, height) if source else None
        frames = _panned(first, count, seed) if first else _sky(width, height, count, seed)
    elif action == "edit":
        frames = _recoloured(_clip(source, width, height, count, seed), seed)
    else:
        frames = _extended(_clip(source, width, height, count, seed), count, seed)
    band = _Band(prompt, width, height)
    labelled = (band.on(frame, index) for index, frame in enumerate(_exactly(frames, count)))
    return _encode(labelled, width, height, seconds, tag)


def _exactly(frames: Iterable[_Picture], count: int) -> Iterator[_Picture]:
    """`count` frames: the first `count` of `frames`, the last one held when they run out."""
    made, last = 0, None
    for frame in frames:
        if made == count:
            return
        made, last = made + 1, frame.copy()  # kept as it was, before anything is drawn on it
        yield frame
    if last is None:
        raise ValueError("no frame to draw")
    for _ in range(count - made):
        yield last.copy()


def _colour(seed: bytes, at: int, lightness: float) -> tuple[int, int, int]:
    """A YUV colour of hue seeded by `seed[at]`, at `lightness` (0 to 1)."""
    red, green, blue = colorsys.hls_to_rgb(seed[at] / 255, lightness, 0.6)
    y = 16 + 65.481 * red + 128.553 * green + 24.966 * blue
    u = 128 - 37.797 * red - 74.203 * green + 112.0 * blue
    v = 128 + 112.0 * red - 93.786 * green - 18.214 * blue
    return round(y), round(u), round(v)


def _sky(width: int, height: int, count: int, seed: bytes) -> Iterator[_Picture]:
    """A gradient in two seeded colours, a sun crossing it on a seeded arc, light fading."""
    top, bottom = _colour(seed, 0, 0.25), _colour(seed, 1, 0.65)
    sun = _colour(seed, 2, 0.85)
    rows_y = [_mix(top[0], bottom[0], row / height) for row in range(height)]
    rows_u = [_mix(top[1], bottom[1], 2 * row / height) for row in range(height // 2)]
    rows_v = [_mix(top[2], bottom[2], 2 * row / height) for row in range(height // 2)]
    base = _Picture(
        width, height,
        bytearray(b"".join(bytes([value]) * width for value in rows_y)),
        bytearray(b"".join(bytes([value]) * (width // 2) for value in rows_u)),
        bytearray(b"".join(bytes([value]) * (width // 2) for value in rows_v)),
    )  # fmt: skip
    radius = max(4, height // 9)
    rise = 0.3 + seed[3] / 255 * 0.4  # how high the arc climbs, as a share of the height
    leftward = seed[4] % 2 == 1
    for index in range(count):
        progress = index / max(1, count - 1)
        frame = base.copy()
        across = (1 - progress) if leftward else progress
        cx = round(radius + across * (width - 2 * radius))
        cy = round(height * (0.75 - rise * math.sin(math.pi * progress)))
        _disc(frame, cx, cy, radius, sun)
        yield frame


def _disc(frame: _Picture, cx: int, cy: int, radius: int, colour: tuple[int, int, int]) -> None:
    """A filled circle, clipped to the frame."""
    y, u, v = colour
    for row in range(max(0, cy - radius), min(frame.height, cy + radius + 1)):
        half = int(math.sqrt(max(0, radius * radius - (row - cy) ** 2)))
        start, end = max(0, cx - half), min(frame.width, cx + half + 1)
        if start >= end:
            continue
        at = row * frame.width
        frame.y[at + start : at + end] = bytes([y]) * (end - start)
        if row % 2 == 0:
            at, start, end = (row // 2) * (frame.width // 2), start // 2, (end + 1) // 2
            frame.u[at + start : at + end] = bytes([u]) * (end - start)
            frame.v[at + start : at + end] = bytes([v]) * (end - start)


def _mix(low: int, high: int, share: float) -> int:
    return max(0, min(255, round(low + (high - low) * min(1.0, share))))


def _still(data: bytes, width: int, height: int) -> _Picture | None:
    """The still (PNG or JPEG) scaled to the frame; None when it cannot be decoded."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            for frame in container.decode(video=0):
                return _planes(frame.reformat(width=width, height=height, format="yuv420p"))
    except (av.FFmpegError, ValueError, IndexError):
        return None
    return None


def _clip(
    data: bytes | None, width: int, height: int, count: int, seed: bytes
) -> Iterator[_Picture]:
    """The input clip's frames at `FPS`, scaled to the frame (at most `count`); a drawn sky
    when there is no clip to read (a URL the emulator does not fetch) or it cannot be read."""
    if data:
        try:
            yield from _decoded(data, width, height, count)
            return
        except Exception:  # an odd codec or a broken file: draw instead, never fail the job
            pass
    yield from _sky(width, height, count, seed)


def _decoded(data: bytes, width: int, height: int, limit: int) -> Iterator[_Picture]:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        taken, latest = 0, None
        for frame in container.decode(stream):
            at = float(frame.time) if frame.time is not None else taken / FPS
            latest = frame
            while taken < limit and taken / FPS <= at + 1e-6:
                yield _planes(latest.reformat(width=width, height=height, format="yuv420p"))
                taken += 1
        if latest is None:
            raise ValueError("no frame")


def _planes(frame: Any) -> _Picture:
    """A PyAV yuv420p frame as tight planes (FFmpeg pads each row to its alignment)."""
    width, height = frame.width, frame.height
    planes = []
    for index, plane in enumerate(frame.planes):
        across, rows = (width, height) if index == 0 else (width // 2, height // 2)
        data = memoryview(plane)
        if plane.line_size == across:
            planes.append(bytearray(data[: across * rows]))
        else:
            planes.append(bytearray(b"".join(
                data[row * plane.line_size : row * plane.line_size + across] for row in range(rows)
            )))  # fmt: skip
    return _Picture(width, height, *planes)


def _recoloured(frames: Iterable[_Picture], seed: bytes) -> Iterator[_Picture]:
    """Each frame with its colours pushed toward a seeded tint and its contrast raised."""
    _, tint_u, tint_v = _colour(seed, 5, 0.5)
    luma = bytes(_mix(16, 235, 0.5 + (value - 128) * 1.25 / 219) for value in range(256))
    for frame in frames:
        frame.y = bytearray(frame.y.translate(luma))
        frame.u, frame.v = _toward(frame.u, tint_u, 0.6), _toward(frame.v, tint_v, 0.6)
        yield frame


def _toward(plane: bytearray, target: int, share: float) -> bytearray:
    """Every value of `plane` moved `share` of the way to `target`."""
    return bytearray(plane.translate(bytes(_mix(value, target, share) for value in range(256))))


def _extended(frames: Iterable[_Picture], count: int, seed: bytes) -> Iterator[_Picture]:
    """The input's frames, then new ones from its last: panning on and taking a seeded tint."""
    last, made = None, 0
    for frame in frames:
        last = frame.copy()
        made += 1
        yield frame
    if last is None:
        return
    yield from _panned(last, count - made, seed, tint=True)


def _panned(first: _Picture, count: int, seed: bytes, *, tint: bool = False) -> Iterator[_Picture]:
    """`count` frames of `first` sliding sideways (wrapping), by a seeded speed and direction;
    with `tint`, growing toward a seeded colour."""
    speed = (1 + seed[6] % 3) * max(1, first.width // 160) * (1 if seed[7] % 2 else -1)
    _, tint_u, tint_v = _colour(seed, 8, 0.5)
    for index in range(count):
        shift = (index + 1) * speed
        frame = _Picture(
            first.width, first.height,
            _rows_shifted(first.y, first.width, shift),
            _rows_shifted(first.u, first.width // 2, shift // 2),
            _rows_shifted(first.v, first.width // 2, shift // 2),
        )  # fmt: skip
        if tint:
            share = min(0.7, (index + 1) / max(1, count) * 0.7)
            frame.u, frame.v = _toward(frame.u, tint_u, share), _toward(frame.v, tint_v, share)
        yield frame


def _rows_shifted(plane: bytearray, width: int, shift: int) -> bytearray:
    shift %= width
    if not shift:
        return plane[:]
    rows = (plane[at : at + width] for at in range(0, len(plane), width))
    return bytearray(b"".join(row[-shift:] + row[:-shift] for row in rows))


class _Band:
    """The prompt in a dark band at the bottom (two lines at most) and the frame's time at the
    top left, in the emulator's pixel font."""

    def __init__(self, prompt: str, width: int, height: int) -> None:
        self.scale = max(1, height // 160)
        self.width = width
        per_line = max(1, (width - 4 * self.scale) // ((GLYPH_WIDTH + 1) * self.scale))
        words, lines, line = " ".join(prompt.split()).split(" "), [], ""
        for word in words:
            if line and len(line) + 1 + len(word) > per_line:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        if len(lines) > 2:
            lines = [lines[0], lines[1][: max(0, per_line - 3)] + "..."]
        lines = [text[:per_line] for text in lines]
        self.lines = lines
        line_height = (GLYPH_HEIGHT + 2) * self.scale
        self.top = max(0, height - line_height * len(lines) - 2 * self.scale)
        self.top -= self.top % 2

    def on(self, frame: _Picture, index: int) -> _Picture:
        width, scale = self.width, self.scale
        start = self.top * width
        frame.y[start:] = bytes([_BAND]) * (len(frame.y) - start)
        half = (self.top // 2) * (width // 2)
        frame.u[half:] = bytes([128]) * (len(frame.u) - half)
        frame.v[half:] = bytes([128]) * (len(frame.v) - half)
        for number, text in enumerate(self.lines):
            top = self.top + scale + number * (GLYPH_HEIGHT + 2) * scale
            _text(frame, text, scale, 2 * scale, top)
        _text(frame, f"{index / FPS:.1f} S", scale, 2 * scale, 2 * scale)
        return frame


def _text(frame: _Picture, text: str, scale: int, left: int, top: int) -> None:
    white = bytes([_WHITE])
    for offset, spans in enumerate(text_runs(text, scale)):
        row = top + offset
        if row >= frame.height:
            break
        at = row * frame.width + left
        for start, end in spans:
            end = min(end, frame.width - left)
            if start < end:
                frame.y[at + start : at + end] = white * (end - start)


def _encode(frames: Iterable[_Picture], width: int, height: int, seconds: float, tag: str) -> bytes:
    """The frames as H.264 in an MP4 (moov first, so a browser plays it while it loads) that
    lasts `seconds`: the last frame is shortened to end exactly there."""
    total = round(seconds * 1000)
    # A file, not memory: moving `moov` to the front (faststart) reads the file back.
    with tempfile.TemporaryDirectory(prefix="grok-video-emulator-") as folder:
        path = Path(folder, "result.mp4")
        _write(path, frames, width, height, total, tag)
        return path.read_bytes()


def _write(path: Path, frames: Iterable[_Picture], width: int, height: int, total: int,
           tag: str) -> None:  # fmt: skip
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        container.metadata["comment"] = f"grok-video emulator; {tag}"
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        context = stream.codec_context
        context.time_base = Fraction(1, 1000)
        context.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "30"}
        context.thread_count = 1

        def mux(packets: Iterable[Any]) -> None:
            for packet in packets:
                packet.duration = min(_MS_PER_FRAME, total - packet.pts)
                container.mux(packet)

        for index, picture in enumerate(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, data, across in zip(
                frame.planes, (picture.y, picture.u, picture.v), (width, width // 2, width // 2),
                strict=True,
            ):  # fmt: skip
                if plane.line_size == across:
                    plane.update(bytes(data))
                else:
                    padding = bytes(plane.line_size - across)
                    plane.update(b"".join(
                        bytes(data[at : at + across]) + padding
                        for at in range(0, len(data), across)
                    ))  # fmt: skip
            frame.pts = index * _MS_PER_FRAME
            frame.time_base = Fraction(1, 1000)
            mux(stream.encode(frame))
        mux(stream.encode(None))
