"""Make the demo's small H.264 clips in `examples/clips/` and its still in `examples/stills/`:
`python scripts/make_example_clips.py`.

Each clip is drawn frame by frame in pure Python (no numpy) and encoded with PyAV's libx264:
320x180, 3 to 6 seconds, a few tens of KB, and accepted by the service's input rules. The still
(for image-to-video) is a 320x180 PNG written with zlib.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

WIDTH, HEIGHT = 320, 180
CLIPS = Path(__file__).resolve().parents[1] / "examples" / "clips"
STILLS = CLIPS.parent / "stills"

#: A frame as three planes (Y at full size, U and V at half size), each a list of byte rows.
Planes = tuple[list[bytes], list[bytes], list[bytes]]


def _rgb_to_yuv(r: float, g: float, b: float) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of an RGB colour (0-255 components)."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return tuple(max(0, min(255, round(c))) for c in (y, u, v))  # type: ignore[return-value]


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, ...]:
    t = max(0.0, min(1.0, t))
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


def _planes(pixel: Callable[[int, int], tuple[int, int, int]]) -> Planes:
    """Sample `pixel(x, y)` -> (Y, U, V) over the frame; chroma is taken at even positions."""
    ys, us, vs = [], [], []
    for y in range(HEIGHT):
        row = [pixel(x, y) for x in range(WIDTH)]
        ys.append(bytes(p[0] for p in row))
        if y % 2 == 0:
            us.append(bytes(p[1] for p in row[::2]))
            vs.append(bytes(p[2] for p in row[::2]))
    return ys, us, vs


def sunrise(t: float) -> Planes:
    """A sky brightening from night blue to orange as a sun rises over a dark horizon."""
    horizon = HEIGHT * 3 // 4
    sun_x, sun_y, radius = WIDTH * 0.6, horizon + 20 - 28 * t, 16
    night, dawn, glow = (20, 30, 90), (250, 140, 60), (255, 220, 120)
    sky_rows = []
    for y in range(HEIGHT):
        sky = _mix(night, dawn, (y / horizon) * (0.4 + 0.25 * t))
        sky_rows.append(_rgb_to_yuv(*sky))
    ground, sun = _rgb_to_yuv(25, 20, 15), _rgb_to_yuv(*glow)

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        if y >= horizon:
            return ground
        if (x - sun_x) ** 2 + (y - sun_y) ** 2 <= radius**2:
            return sun
        return sky_rows[y]

    return _planes(pixel)


def _skyline_heights(width: int) -> list[int]:
    heights, x, seed = [], 0, 7
    while x < width:
        seed = (seed * 1103515245 + 12345) % 2**31
        building, height = 14 + seed % 30, 30 + (seed >> 8) % 90
        heights.extend([height] * building)
        heights.extend([max(0, height - 60)] * 3)
        x += building + 3
    return heights[:width]


_SKYLINE = _skyline_heights(WIDTH * 3)


def skyline(t: float) -> Planes:
    """City silhouettes with lit windows, panning right to left under a dusk gradient."""
    shift = round(t * WIDTH * 0.8)
    top, bottom = (60, 40, 120), (240, 120, 90)
    sky_rows = [_rgb_to_yuv(*_mix(top, bottom, y / HEIGHT)) for y in range(HEIGHT)]
    wall, window = _rgb_to_yuv(15, 15, 30), _rgb_to_yuv(255, 210, 90)

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        column = x + shift
        if HEIGHT - y <= _SKYLINE[column]:
            lit = column % 7 in (2, 3) and y % 9 in (3, 4) and (column // 7 + y // 9) % 3 != 0
            return window if lit else wall
        return sky_rows[y]

    return _planes(pixel)


def ocean(t: float) -> Planes:
    """Rolling sine-wave swells in blues and greens, with a brightening crest line."""
    deep, shallow, foam = (10, 40, 90), (30, 150, 160), (230, 240, 245)
    phase = t * 2 * math.pi

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        wave = math.sin(x / 23 + phase * 1.5 + y / 11) + 0.5 * math.sin(x / 9 - phase * 2)
        depth = y / HEIGHT + 0.15 * wave
        colour = _mix(shallow, deep, depth)
        if abs(wave - 1.2) < 0.08:
            colour = _mix(colour, foam, 0.7)
        return _rgb_to_yuv(*colour)

    return _planes(pixel)


def aurora(t: float) -> Planes:
    """Green and violet curtains drifting across a starry night sky."""
    night, green, violet = (5, 10, 30), (60, 230, 140), (170, 80, 220)

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        centre = HEIGHT * 0.4 + 25 * math.sin(x / 40 + t * 3) + 10 * math.sin(x / 13 - t * 5)
        band = math.exp(-(((y - centre) / 18) ** 2))
        colour = _mix(night, _mix(green, violet, x / WIDTH + 0.3 * math.sin(t * 2)), band)
        if band < 0.05 and (x * 7919 + y * 104729) % 997 == 0:
            colour = (230, 230, 255)
        return _rgb_to_yuv(*colour)

    return _planes(pixel)


#: name -> (drawing function of t in 0..1, seconds, frames per second)
SCENES: dict[str, tuple[Callable[[float], Planes], float, int]] = {
    "sunrise": (sunrise, 4.0, 12),
    "skyline": (skyline, 5.0, 12),
    "ocean": (ocean, 4.0, 15),
    "aurora": (aurora, 3.0, 10),
}


def _frame(planes: Planes) -> av.VideoFrame:
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for plane, rows in zip(frame.planes, planes, strict=True):
        width = plane.line_size
        plane.update(b"".join(row.ljust(width, row[-1:]) for row in rows))
    return frame


def make_clip(path: Path, draw: Callable[[float], Planes], seconds: float, fps: int) -> Path:
    """Encode `seconds` of `draw(t)` frames at `fps` to an H.264 MP4 at `path`."""
    count = round(seconds * fps)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as output:
        stream = output.add_stream(
            "libx264", rate=fps, options={"crf": "30", "preset": "slow", "threads": "1"}
        )
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(count):
            frame = _frame(draw(index / max(1, count - 1)))
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def harbour(x: int, y: int) -> tuple[int, int, int]:
    """A harbour at dusk, as RGB: sky, a jetty, two hulls on the water."""
    horizon = HEIGHT * 0.55
    if y < horizon:
        r, g, b = _mix((40, 50, 110), (250, 160, 90), y / horizon)
    else:
        shimmer = 12 * math.sin(x / 9 + y / 3)
        r, g, b = _mix((30, 60, 100), (10, 25, 50), (y - horizon) / (HEIGHT - horizon))
        r, g, b = r + shimmer, g + shimmer, b + shimmer
    for left, right in ((70, 130), (190, 260)):  # two hulls, riding on the horizon
        if left <= x <= right and horizon - 10 <= y <= horizon + 4:
            r, g, b = (60, 35, 25)
    if 0 <= x <= 40 and horizon - 4 <= y <= horizon:  # the jetty
        r, g, b = (90, 70, 50)
    return tuple(max(0, min(255, round(c))) for c in (r, g, b))  # type: ignore[return-value]


def make_png(path: Path, pixel: Callable[[int, int], tuple[int, int, int]]) -> Path:
    """Write an 8-bit RGB PNG of `pixel(x, y)` over the frame."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(c for x in range(WIDTH) for c in pixel(x, y)) for y in range(HEIGHT)
    )
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    return path


def main() -> None:
    """Write every scene to `examples/clips/<name>.mp4`, the still, and print their sizes."""
    CLIPS.mkdir(exist_ok=True)
    for name, (draw, seconds, fps) in SCENES.items():
        path = make_clip(CLIPS / f"{name}.mp4", draw, seconds, fps)
        print(f"{path.relative_to(CLIPS.parent)}: {seconds:g} s, {path.stat().st_size:,} bytes")
    STILLS.mkdir(exist_ok=True)
    path = make_png(STILLS / "harbour.png", harbour)
    print(f"{path.relative_to(CLIPS.parent)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
