"""Regenerate the emulator's pre-encoded H.264 group of pictures with PyAV (a dev dependency).

The emulator synthesises result videos in pure Python by repeating one closed GOP: one second
of 160x90 video at 10 fps whose first frame is an IDR picture and which has no B-frames. This
script encodes that GOP with libx264, muxes it to an in-memory MP4, and copies out what the
emulator needs: the `avcC` decoder configuration record and the length-prefixed samples.

    python scripts/make_emulator_asset.py            # writes prefect_grok_video/emulator/assets/

Outputs `gop.json` (geometry, frame rate, sample sizes, avcC as hex) and `gop.h264` (the
samples, concatenated, in MP4 "AVCC" form: 4-byte big-endian length before each NAL unit).
"""

from __future__ import annotations

import argparse
import io
import json
import struct
from pathlib import Path

import av

WIDTH, HEIGHT, FPS = 160, 90, 10
ASSETS = Path(__file__).resolve().parent.parent / "prefect_grok_video" / "emulator" / "assets"


def _frame(index: int) -> av.VideoFrame:
    """A test-card frame: a horizontal luma gradient with a bright square moving across."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    y_plane, u_plane, v_plane = frame.planes
    square_x = 8 + index * (WIDTH - 40) // (FPS - 1)
    rows = []
    for y in range(y_plane.height):
        row = bytearray(40 + (x * 160) // WIDTH for x in range(y_plane.line_size))
        if 35 <= y < 59:
            row[square_x : square_x + 24] = b"\xeb" * 24
        rows.append(bytes(row))
    y_plane.update(b"".join(rows))
    u_plane.update(bytes([90]) * u_plane.buffer_size)
    v_plane.update(bytes([170]) * v_plane.buffer_size)
    frame.pts = index
    return frame


def _encode() -> bytes:
    """One closed GOP of FPS frames, as a complete MP4."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = FPS
        stream.options = {
            "preset": "veryslow",
            "tune": "zerolatency",  # no B-frames, no lookahead: decode order = display order
            "crf": "28",
            "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0:bframes=0:open-gop=0",
        }
        for index in range(FPS):
            container.mux(stream.encode(_frame(index)))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[str, tuple[int, int]]:
    """Children of a container box: type -> (payload start, end) of the first of each type."""
    end = len(data) if end is None else end
    found: dict[str, tuple[int, int]] = {}
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        found.setdefault(kind.decode("latin-1"), (offset + 8, offset + size))
        offset += size
    return found


def _extract(mp4: bytes) -> tuple[bytes, list[int], bytes]:
    """(avcC record, sample sizes, concatenated samples) of the only track of `mp4`."""
    moov = _boxes(mp4)["moov"]
    trak = _boxes(mp4, *moov)["trak"]
    mdia = _boxes(mp4, *trak)["mdia"]
    minf = _boxes(mp4, *mdia)["minf"]
    stbl = _boxes(mp4, *minf)["stbl"]
    parts = _boxes(mp4, *stbl)
    if "ctts" in parts:
        raise SystemExit("the encoder produced B-frames (ctts box); the GOP must have none")
    stsd_start, stsd_end = parts["stsd"]
    avc1_start = stsd_start + 8  # full box header + entry count
    avcc_start, avcc_end = _boxes(mp4, avc1_start + 8 + 78, stsd_end)["avcC"]
    avcc = mp4[avcc_start:avcc_end]

    stsz = mp4[parts["stsz"][0] : parts["stsz"][1]]
    uniform, count = struct.unpack_from(">II", stsz, 4)
    sizes = [uniform] * count if uniform else list(struct.unpack_from(f">{count}I", stsz, 12))
    stco = mp4[parts["stco"][0] : parts["stco"][1]]
    (chunks,) = struct.unpack_from(">I", stco, 4)
    offsets = struct.unpack_from(f">{chunks}I", stco, 8)
    stsc = mp4[parts["stsc"][0] : parts["stsc"][1]]
    (runs,) = struct.unpack_from(">I", stsc, 4)
    table = [struct.unpack_from(">III", stsc, 8 + 12 * i) for i in range(runs)]
    samples = bytearray()
    sample = 0
    for chunk_index, chunk_offset in enumerate(offsets, start=1):
        per_chunk = next(n for first, n, _ in reversed(table) if first <= chunk_index)
        position = chunk_offset
        for _ in range(per_chunk):
            samples += mp4[position : position + sizes[sample]]
            position += sizes[sample]
            sample += 1
    if sample != count or count != FPS:
        raise SystemExit(f"expected {FPS} samples, found {sample} of {count}")
    return avcc, sizes, bytes(samples)


def main(argv: list[str] | None = None) -> int:
    """Encode the GOP and write the two asset files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder to write to")
    args = parser.parse_args(argv)
    avcc, sizes, samples = _extract(_encode())
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "sample_sizes": sizes,
        "avcC": avcc.hex(),
        "made_by": "scripts/make_emulator_asset.py (libx264 via PyAV)",
    }
    (args.out / "gop.json").write_text(json.dumps(meta, indent=1) + "\n")
    (args.out / "gop.h264").write_bytes(samples)
    print(f"wrote {args.out}/gop.json and gop.h264 ({len(samples)} bytes, {len(sizes)} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
