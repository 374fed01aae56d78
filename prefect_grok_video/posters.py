"""Poster frames: a small JPEG strip of a video's first, middle and last frames.

Made from the downloaded file with PyAV alone (FFmpeg's decoders and its MJPEG encoder; no
Pillow, no numpy): the three frames are scaled to `width` pixels and laid side by side in one
JPEG (`<id>.jpg` beside `<id>.mp4`), and each is also kept as its own small JPEG for the Prefect
UI, which draws them inline as `data:` URLs. A video that cannot be decoded gets no poster and
a reason; it never fails its row.
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import fsspec

from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.outputs import write_whole

__all__ = ["POSTER_WIDTH", "Poster", "PosterError", "data_url", "make_poster", "read_poster"]

#: Width in pixels of each frame of a poster (its height keeps the video's aspect, even).
POSTER_WIDTH = 160
#: MJPEG quantiser scale: 2 (best) to 31; 5 keeps a 160x90 frame near 3 KB.
_QSCALE = 5


class PosterError(Exception):
    """No poster could be made (an undecodable or odd file): the reason, for the artifact."""


@dataclass(frozen=True)
class Poster:
    """A video's poster frames: where the strip was written, and each frame (encoded as its
    own JPEG only when asked for: a run shows the frames of a bounded number of rows)."""

    #: Where the strip was written (a path or a storage URL).
    path: str
    #: The first, middle and last frames, scaled (yuvj420p `av.VideoFrame`s).
    scaled: tuple[Any, ...]
    width: int
    height: int

    @functools.cached_property
    def frames(self) -> tuple[bytes, ...]:
        """JPEG bytes of the first, middle and last frames."""
        return tuple(_jpeg(frame) for frame in self.scaled)

    @property
    def middle(self) -> bytes:
        """The middle frame's JPEG: what a contact sheet shows of the video."""
        return self.frames[len(self.frames) // 2]


def data_url(jpeg: bytes) -> str:
    """`jpeg` as a `data:image/jpeg;base64,…` URL, which Prefect's UI draws in markdown."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def make_poster(video: str | os.PathLike[str], destination: str | os.PathLike[str],
                *, width: int = POSTER_WIDTH) -> Poster:  # fmt: skip
    """Decode `video`'s first, middle and last frames and write them as one JPEG strip to
    `destination` (a path or a storage URL, written whole or not at all). Raises
    `PosterError` with the reason."""
    import av

    source, target = os.fspath(video), os.fspath(destination)
    try:
        if is_storage_url(source):
            with fsspec.open(source, "rb") as file:
                frames = _decode(file)
        else:
            frames = _decode(source)
    except PosterError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise PosterError(f"the video could not be decoded: {exc}") from None
    first = frames[0]
    height = max(2, round(width * first.height / first.width / 2) * 2)
    scaled = tuple(f.reformat(width=width, height=height, format="yuvj420p") for f in frames)
    write_whole(target, _jpeg(_side_by_side(list(scaled), width, height)))
    return Poster(path=target, scaled=scaled, width=width, height=height)


def read_poster(strip: str | os.PathLike[str], *, frames: int = 3) -> Poster:
    """The poster written by `make_poster` at `strip` (a path or a storage URL), cut back into
    its frames (for a run that did not make it: a chunked run's parent, a gallery). Raises
    `PosterError` when it cannot be read."""
    import av

    source = os.fspath(strip)
    try:
        with fsspec.open(source, "rb") as file, av.open(file) as container:
            whole = next(container.decode(video=0)).reformat(format="yuvj420p")
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise PosterError(f"the poster could not be read: {exc}") from None
    width = whole.width // frames
    parts = tuple(_crop(whole, slot * width, width) for slot in range(frames))
    return Poster(path=source, scaled=parts, width=width, height=whole.height)


def _decode(source: object) -> list[Any]:
    """The first, middle and last frames of the file at `source` (a path or an open file)."""
    import av

    with av.open(source) as container:
        if not container.streams.video:
            raise PosterError("the file has no video track")
        frames = _three_frames(container)
    if not frames:
        raise PosterError("the video has no frame that decodes")
    return frames


def _three_frames(container: Any) -> list[Any]:
    """The first, middle and last decodable frames of the first video stream.

    The middle and the end are reached by seeking to the keyframe before them and decoding
    from there, so a long video costs a few groups of pictures, not all of its frames."""
    stream = container.streams.video[0]
    first = next(iter(container.decode(stream)), None)
    if first is None:
        return []
    span = _span(container, stream)
    if span is None:
        return [first, first, first]
    start, end = span
    middle = _frame_at(container, stream, start + (end - start) // 2) or first
    last = _frame_at(container, stream, end, last=True) or middle
    return [first, middle, last]


def _span(container: Any, stream: Any) -> tuple[int, int] | None:
    """The stream's first and last timestamps, in its time base (None when unknown)."""
    start = stream.start_time or 0
    if stream.duration:
        return start, start + stream.duration
    if container.duration and stream.time_base:
        seconds = container.duration / 1_000_000
        return start, start + int(seconds / stream.time_base)
    return None


def _frame_at(container: Any, stream: Any, pts: int, *, last: bool = False) -> Any:
    """The first frame at or after `pts` (with `last`, the stream's last frame), decoding
    from the keyframe before it; None when nothing decodes there."""
    container.seek(max(0, pts - 1), stream=stream, backward=True)
    found = None
    for frame in container.decode(stream):
        found = frame
        if not last and frame.pts is not None and frame.pts >= pts:
            break
    return found


def _jpeg(frame: Any) -> bytes:
    """One yuvj420p frame as JPEG bytes, through FFmpeg's MJPEG encoder."""
    import av

    codec = av.CodecContext.create("mjpeg", "w")
    codec.width = frame.width
    codec.height = frame.height
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": str(_QSCALE), "qmax": str(_QSCALE)}
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(packet) for packet in packets)


def _crop(frame: Any, left: int, width: int) -> Any:
    """Columns `left` to `left + width` of a yuvj420p `frame` (even numbers)."""
    import av

    part = av.VideoFrame(width, frame.height, "yuvj420p")
    for index, plane in enumerate(part.planes):
        shift = 0 if index == 0 else 1
        source = frame.planes[index]
        data = memoryview(source)
        start, size, rows = left >> shift, width >> shift, frame.height >> shift
        out = bytearray(plane.line_size * rows)
        for row in range(rows):
            at = row * source.line_size + start
            out[row * plane.line_size : row * plane.line_size + size] = data[at : at + size]
        plane.update(bytes(out))
    return part


def _side_by_side(frames: list[Any], width: int, height: int) -> Any:
    """The frames (all `width` x `height`, yuvj420p) laid left to right in one frame."""
    import av

    strip = av.VideoFrame(width * len(frames), height, "yuvj420p")
    for plane_index, plane in enumerate(strip.planes):
        part_width = width if plane_index == 0 else width // 2
        rows = height if plane_index == 0 else height // 2
        out = bytearray(plane.line_size * rows)
        for slot, frame in enumerate(frames):
            source = frame.planes[plane_index]
            data = memoryview(source)
            for row in range(rows):
                start = row * source.line_size
                at = row * plane.line_size + slot * part_width
                out[at : at + part_width] = data[start : start + part_width]
        plane.update(bytes(out))
    return strip
