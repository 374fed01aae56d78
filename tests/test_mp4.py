"""Tests of the MP4 reader and the service's input rules, against real files made by encoders."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from fixtures_media import make_large_mp4

from prefect_grok_video.errors import PreflightError
from prefect_grok_video.mp4 import Mp4Info, check, preflight, probe


class CountingFile:
    """A read-only binary file wrapper that records the byte range of every read."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.reads: list[tuple[int, int]] = []

    def read(self, n: int = -1) -> bytes:
        start = self._f.tell()
        data = self._f.read(n)
        self.reads.append((start, start + len(data)))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    @property
    def bytes_read(self) -> int:
        return sum(end - start for start, end in self.reads)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[str, int, int, int]]:
    """(type, start, header size, end) of the boxes between two offsets of `data`."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        yield kind.decode("latin-1"), offset, header, offset + size
        offset += size


def _top_level(path: Path) -> list[tuple[str, int, int, int]]:
    """The top-level boxes of a file, reading only their headers."""
    boxes, size = [], path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box = next(_boxes(header.ljust(16, b"\0"), 0, 16))
            length = box[3] if struct.unpack_from(">I", header)[0] else size - offset
            boxes.append((box[0], offset, box[2], offset + length))
            offset += length
    return boxes


def _insert(data: bytes, path: tuple[str, ...], box: bytes) -> bytes:
    """`data` with `box` inserted first inside the box at `path` (ancestors' sizes grown)."""
    start, end, ancestors = 0, len(data), []
    for name in path:
        found = next(b for b in _boxes(data, start, end) if b[0] == name)
        assert found[2] == 8, "ancestors are expected to have 32-bit headers"
        ancestors.append(found[1])
        start, end = found[1] + found[2], found[3]
    out = bytearray(data[:start] + box + data[start:])
    for offset in ancestors:
        struct.pack_into(">I", out, offset, struct.unpack_from(">I", out, offset)[0] + len(box))
    return bytes(out)


def _widen(data: bytes, path: tuple[str, ...]) -> bytes:
    """`data` with the box at `path` given a 64-bit (largesize) header (ancestors' sizes grown)."""
    start, end, ancestors = 0, len(data), []
    for name in path:
        found = next(b for b in _boxes(data, start, end) if b[0] == name)
        ancestors.append(found[1])
        start, end = found[1] + found[2], found[3]
    offset = ancestors.pop()
    size, kind = struct.unpack_from(">I4s", data, offset)
    out = bytearray(data[:offset] + struct.pack(">I4sQ", 1, kind, size + 8) + data[offset + 8 :])
    for parent in ancestors:
        struct.pack_into(">I", out, parent, struct.unpack_from(">I", out, parent)[0] + 8)
    return bytes(out)


_CONTAINERS = {"moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf"}


def _rewrite(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    """`data` with each leaf box's payload replaced by `edit(type, payload)`, containers resized.

    Offsets into `mdat` (stco, trun data offsets) go stale: the reader never follows them.
    """
    out = []
    for kind, start, header, end in _boxes(data, 0, len(data)):
        assert header == 8, "boxes are expected to have 32-bit headers"
        payload = data[start + 8 : end]
        payload = _rewrite(payload, edit) if kind in _CONTAINERS else edit(kind, payload)
        out.append(struct.pack(">I4s", 8 + len(payload), kind.encode("latin-1")) + payload)
    return b"".join(out)


def _mvhd_seconds(data: bytes) -> float:
    """The movie duration `mvhd` gives (version 0), read independently of the reader."""
    _, start, header, end = next(b for b in _boxes(data, 0, len(data)) if b[0] == "moov")
    _, mvhd, *_ = next(b for b in _boxes(data, start + header, end) if b[0] == "mvhd")
    timescale, duration = struct.unpack_from(">II", data, mvhd + 8 + 12)
    return duration / timescale


def _mehd(duration: int, version: int) -> bytes:
    """A movie-extends-header box giving a fragmented movie's whole duration."""
    payload = struct.pack(">B3x", version) + struct.pack(">Q" if version else ">I", duration)
    return struct.pack(">I4s", 8 + len(payload), b"mehd") + payload


def _refusal(path: Path) -> PreflightError:
    with path.open("rb") as f, pytest.raises(PreflightError) as caught:
        preflight(f)
    return caught.value


def _probe(path: Path) -> Mp4Info:
    with path.open("rb") as f:
        return probe(f)


# --- accepted codecs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "codecs", "name"),
    [
        ("h264_clip", {"avc1", "avc3"}, "H.264"),
        ("h265_clip", {"hvc1", "hev1"}, "H.265"),
        ("av1_clip", {"av01"}, "AV1"),
    ],
)
def test_accepted_codecs(
    request: pytest.FixtureRequest, fixture: str, codecs: set[str], name: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    with path.open("rb") as f:
        info = preflight(f, path.stat().st_size)
    assert info.codec in codecs
    assert info.codec_name.startswith(name)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert (info.width, info.height) == (64, 64)
    assert info.major_brand == "isom"


@pytest.mark.parametrize("codec", ["h264", "h265", "av1"])
def test_width_and_height_are_not_swapped(mp4_factory: Callable[..., Path], codec: str) -> None:
    info = _probe(mp4_factory(codec=codec, width=96, height=48))
    assert (info.width, info.height) == (96, 48)


def test_size_is_found_when_not_given(h264_clip: Path) -> None:
    with h264_clip.open("rb") as f:
        f.seek(0, 2)  # the reader must not depend on the file's position
        assert probe(f) == probe(f, h264_clip.stat().st_size)


# --- refused codecs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "found"),
    [("mpeg4_clip", "MPEG-4 Part 2 (mp4v)"), ("vp9_clip", "VP9 (vp09)")],
)
def test_refused_codecs_are_named(request: pytest.FixtureRequest, fixture: str, found: str) -> None:
    error = _refusal(request.getfixturevalue(fixture))
    assert error.rule == "codec"
    assert error.found == found
    assert found in error.message
    assert "H.264, H.265 or AV1" in error.message  # what is accepted
    assert "libx264" in error.message  # and how to get there


def test_audio_only_mp4_has_no_video_track(audio_only_clip: Path) -> None:
    info = _probe(audio_only_clip)
    assert info.codec is None
    assert info.duration == pytest.approx(3.0, abs=0.05)
    error = _refusal(audio_only_clip)
    assert error.rule == "codec"
    assert error.found == "no video track"
    assert "no video track" in error.message


# --- duration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "found", "fix"),
    [("short_clip", "1 s", "longer clip"), ("long_clip", "20 s", "trim")],
)
def test_duration_out_of_range(
    request: pytest.FixtureRequest, fixture: str, found: str, fix: str
) -> None:
    error = _refusal(request.getfixturevalue(fixture))
    assert error.rule == "duration"
    assert error.found == found
    assert f"{found} long" in error.message
    assert "2 to 15 s" in error.message
    assert fix in error.message


@pytest.mark.parametrize("seconds", [2.0, 15.0])
def test_duration_boundaries_are_accepted(mp4_factory: Callable[..., Path], seconds: float) -> None:
    with mp4_factory(seconds=seconds).open("rb") as f:
        assert preflight(f).duration == pytest.approx(seconds, abs=0.001)


@pytest.mark.parametrize("seconds", [1.9, 15.1])
def test_duration_just_outside_is_refused(mp4_factory: Callable[..., Path], seconds: float) -> None:
    error = _refusal(mp4_factory(seconds=seconds))
    assert (error.rule, error.found) == ("duration", f"{seconds:g} s")


@pytest.mark.parametrize(("video", "audio"), [(3.0, 20.0), (20.0, 3.0)])
def test_duration_is_the_video_tracks_not_the_longest_tracks(
    mp4_factory: Callable[..., Path], video: float, audio: float
) -> None:
    """`mvhd` is the longest track; what the service takes is the video track (`mdhd`)."""
    path = mp4_factory(seconds=video, audio_seconds=audio)
    assert _mvhd_seconds(path.read_bytes()) == pytest.approx(max(video, audio), abs=0.1)
    assert _probe(path).duration == pytest.approx(video, abs=0.001)
    if video == 3.0:
        assert preflight(path.open("rb")).codec == "avc1"
    else:
        assert (_refusal(path).rule, _refusal(path).found) == ("duration", "20 s")


def test_movie_duration_is_used_when_the_track_gives_none(h264_clip: Path) -> None:
    def unknown_length(kind: str, payload: bytes) -> bytes:
        return payload[:16] + bytes(4) + payload[20:] if kind == "mdhd" else payload

    data = _rewrite(h264_clip.read_bytes(), unknown_length)
    assert preflight(io.BytesIO(data)).duration == pytest.approx(3.0, abs=0.05)


# --- container -------------------------------------------------------------------------------


def test_truncated_clip(truncated_clip: Path) -> None:
    error = _refusal(truncated_clip)
    assert error.rule == "container"
    assert "truncated" in error.message
    assert "cut short" in error.message


@pytest.mark.parametrize("faststart", [False, True])
def test_every_cut_is_refused(
    mp4_factory: Callable[..., Path], tmp_path: Path, faststart: bool
) -> None:
    """A clip cut anywhere, including exactly between two boxes, is refused as a container."""
    source = mp4_factory(faststart=faststart)
    data = source.read_bytes()
    cuts = {end for _, _, _, end in _top_level(source)[:-1]}
    cuts |= {end + delta for end in set(cuts) for delta in (-1, 1, 4, 9)}
    cuts |= set(range(1, len(data), 101))
    for cut in sorted(cuts):
        path = tmp_path / "cut.mp4"
        path.write_bytes(data[:cut])
        with path.open("rb") as f, pytest.raises(PreflightError) as caught:
            preflight(f)
        assert caught.value.rule == "container", (cut, caught.value)


@pytest.mark.parametrize(
    ("fixture", "found"),
    [
        ("not_mp4_file", "no MP4 'ftyp' box (starts with b'these ar')"),
        ("empty_file", "an empty file"),
        ("webm_clip", "WebM/Matroska"),
        ("mov_clip", "QuickTime MOV"),
    ],
)
def test_not_mp4_is_named(request: pytest.FixtureRequest, fixture: str, found: str) -> None:
    error = _refusal(request.getfixturevalue(fixture))
    assert error.rule == "container"
    assert error.found == found
    assert f"not an MP4 file (found {found})" in error.message
    assert "ffmpeg" in error.message
    assert ("in.mov" in error.message) == (found == "QuickTime MOV")


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"Generated by hand, not a video\n", "no MP4 'ftyp' box (starts with b'Generate')"),
        (b"G" + b"x" * 500, "no MP4 'ftyp' box (starts with b'Gxxxxxxx')"),
        (b"G" * 376 + b"x" * 10, "no MP4 'ftyp' box (starts with b'GGGGGGGG')"),
        (b"G" + b"x" * 187 + b"G", "MPEG transport stream"),  # too short for a third packet
        (b"G" * 400, "MPEG transport stream"),
    ],
)
def test_transport_stream_needs_sync_bytes_188_apart(data: bytes, found: str) -> None:
    with pytest.raises(PreflightError) as caught:
        preflight(io.BytesIO(data))
    assert (caught.value.rule, caught.value.found) == ("container", found)


def test_transport_stream_is_named(mp4_factory: Callable[..., Path]) -> None:
    error = _refusal(mp4_factory(container="mpegts"))
    assert (error.rule, error.found) == ("container", "MPEG transport stream")


def _ftyp_3gpp2(kind: str, payload: bytes) -> bytes:
    return b"3g2a" + bytes(4) + b"3g2a" if kind == "ftyp" else payload


@pytest.mark.parametrize("brand", ["isml", "3g2a"])
def test_unknown_brand_is_told_to_remux_without_a_mov_name(
    mp4_factory: Callable[..., Path], h264_clip: Path, tmp_path: Path, brand: str
) -> None:
    if brand == "isml":  # a real ISMV (Smooth Streaming) file: brands isml, piff
        path = mp4_factory(container="ismv")
    else:  # 3GPP2 with no ISO brand among its compatible ones
        path = tmp_path / "clip.3g2"
        path.write_bytes(_rewrite(h264_clip.read_bytes(), _ftyp_3gpp2))
    error = _refusal(path)
    assert (error.rule, error.found) == ("container", f"brand '{brand}'")
    assert "remux it, e.g. `ffmpeg -i input -c copy output.mp4`" in error.message
    assert "in.mov" not in error.message


@pytest.mark.parametrize(
    "tail",
    [b"\0", b"\0" * 4, b"\xff" * 7, b"\0\0\0\x10fre", struct.pack(">I4s", 1, b"free") + b"\0" * 7],
)
def test_trailing_bytes_shorter_than_a_box_header_are_a_truncation(
    h264_clip: Path, tail: bytes
) -> None:
    with pytest.raises(PreflightError) as caught:
        preflight(io.BytesIO(h264_clip.read_bytes() + tail))
    assert caught.value.rule == "container"
    assert "ends inside a box header" in caught.value.message


def test_matroska_with_h264_is_not_mp4(mp4_factory: Callable[..., Path]) -> None:
    error = _refusal(mp4_factory(container="matroska"))
    assert (error.rule, error.found) == ("container", "WebM/Matroska")


def test_faststart_moov_before_mdat(mp4_factory: Callable[..., Path]) -> None:
    path = mp4_factory(faststart=True)
    order = [kind for kind, *_ in _top_level(path) if kind in ("moov", "mdat")]
    assert order == ["moov", "mdat"]
    info = check(_probe(path))
    assert (info.codec, info.width) == ("avc1", 64)
    assert info.duration == pytest.approx(3.0, abs=0.05)


# --- fragmented MP4 --------------------------------------------------------------------------


def test_fragmented_clip_length_is_summed_from_its_fragments(
    mp4_factory: Callable[..., Path],
) -> None:
    """`frag_keyframe+empty_moov`: mvhd says 0 and there is no `mehd`; the `moof`s say 3 s."""
    path = mp4_factory(fragmented=True)
    kinds = [kind for kind, *_ in _top_level(path)]
    assert kinds.index("moov") < kinds.index("moof")
    assert _mvhd_seconds(path.read_bytes()) == 0
    info = check(_probe(path))
    assert (info.codec, info.width, info.height) == ("avc1", 64, 64)
    assert info.duration == pytest.approx(3.0, abs=0.001)


@pytest.mark.parametrize("seconds", [3.0, 20.0])
def test_fragmented_with_samples_in_moov_adds_the_fragments(
    mp4_factory: Callable[..., Path], seconds: float
) -> None:
    """`frag_keyframe` alone: moov holds the first fragment (mvhd says 1 s), the rest are moofs."""
    path = mp4_factory(seconds=seconds, movflags="frag_keyframe", gop=10)
    assert _mvhd_seconds(path.read_bytes()) == pytest.approx(1.0)
    info = _probe(path)
    assert info.codec == "avc1"
    assert info.duration == pytest.approx(seconds, abs=0.001)


def test_fragmented_20s_clip_with_5s_first_fragment_is_refused(
    mp4_factory: Callable[..., Path],
) -> None:
    error = _refusal(mp4_factory(seconds=20.0, movflags="frag_keyframe", gop=50))
    assert (error.rule, error.found) == ("duration", "20 s")


@pytest.mark.parametrize("movflags", ["frag_keyframe+empty_moov", "frag_keyframe"])
def test_fragmented_clips_are_checked_by_length(
    mp4_factory: Callable[..., Path], movflags: str
) -> None:
    accepted = mp4_factory(seconds=3.0, movflags=movflags, gop=10)
    with accepted.open("rb") as f:
        assert preflight(f).duration == pytest.approx(3.0, abs=0.001)
    error = _refusal(mp4_factory(seconds=20.0, movflags=movflags, gop=10))
    assert (error.rule, error.found) == ("duration", "20 s")


def test_fragmented_duration_is_the_video_tracks(mp4_factory: Callable[..., Path]) -> None:
    """The audio `traf`s (another track_ID) are not counted. FFmpeg stretches the first video
    sample by the AAC priming (about 23 ms), so the video `trun`s carry per-sample durations."""
    path = mp4_factory(fragmented=True, audio_seconds=20.0)
    with path.open("rb") as f:
        assert preflight(f).duration == pytest.approx(3.0, abs=0.05)
    longer = mp4_factory(seconds=20.0, fragmented=True, audio_seconds=3.0)
    assert (_refusal(longer).rule, _refusal(longer).found) == ("duration", "20 s")


def _trun_durations(kind: str, payload: bytes) -> bytes:
    """A `trun` payload given per-sample durations alternating 1024 and 3072 (2048 on average)."""
    if kind != "trun":
        return payload
    flags, count = struct.unpack_from(">II", payload)
    assert not flags & 0x100
    start = 8 + 4 * (flags & 0x1) + 4 * (flags >> 2 & 0x1)
    stride = 4 * bin(flags & 0xF00).count("1")
    entries = [
        struct.pack(">I", 3072 if i % 2 else 1024) + payload[start + i * stride :][:stride]
        for i in range(count)
    ]
    return struct.pack(">II", flags | 0x100, count) + payload[8:start] + b"".join(entries)


def _trex_default(duration: int) -> Callable[[str, bytes], bytes]:
    """An edit dropping `tfhd` default durations and setting the `trex` one to `duration`."""

    def edit(kind: str, payload: bytes) -> bytes:
        if kind == "trex":
            return payload[:12] + struct.pack(">I", duration) + payload[16:]
        if kind != "tfhd":
            return payload
        (flags,) = struct.unpack_from(">I", payload)
        assert flags & 0x8
        at = 8 + 8 * (flags & 0x1) + 4 * (flags >> 1 & 0x1)
        return struct.pack(">I", flags & ~0x8) + payload[4:at] + payload[at + 4 :]

    return edit


@pytest.mark.parametrize(
    ("edit", "seconds"),
    [(_trun_durations, 6.0), (_trex_default(2048), 6.0), (_trex_default(0), None)],
    ids=["trun", "trex", "none"],
)
def test_fragment_sample_durations(
    mp4_factory: Callable[..., Path], edit: Callable[[str, bytes], bytes], seconds: float | None
) -> None:
    """Per-sample `trun` durations win over `tfhd`'s default, which wins over `trex`'s; none
    at all leaves the length unknown (refused) rather than short."""
    data = _rewrite(mp4_factory(fragmented=True).read_bytes(), edit)  # 30 samples, 10240/s
    info = probe(io.BytesIO(data))
    assert info.duration == (seconds and pytest.approx(seconds))
    if seconds is None:
        with pytest.raises(PreflightError, match="does not say how long"):
            check(info)


def test_too_many_fragments_are_refused(mp4_factory: Callable[..., Path]) -> None:
    data = mp4_factory(fragmented=True).read_bytes()
    empty_moof = struct.pack(">I4s", 8, b"moof")
    count = sum(kind == "moof" for kind, *_ in _boxes(data, 0, len(data)))
    limit = data + empty_moof * (100_000 - count)
    assert preflight(io.BytesIO(limit)).duration == pytest.approx(3.0, abs=0.001)
    with pytest.raises(PreflightError) as caught:
        preflight(io.BytesIO(limit + empty_moof))
    assert (caught.value.rule, caught.value.found) == ("container", "too many fragments")


def test_large_fragment_header_is_refused_unread(mp4_factory: Callable[..., Path]) -> None:
    data = mp4_factory(fragmented=True).read_bytes()
    padding = struct.pack(">I4s", 8 + 2**20, b"free") + bytes(2**20)
    f = CountingFile(io.BytesIO(_insert(data, ("moof",), padding)))
    with pytest.raises(PreflightError) as caught:
        preflight(f)  # type: ignore[arg-type]
    assert (caught.value.rule, caught.value.found) == ("container", "moof")
    assert "implausibly large" in caught.value.message
    assert f.bytes_read < 8 * 1024


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("movflags", ["frag_keyframe+empty_moov", "frag_keyframe"])
def test_fragmented_duration_from_mehd(
    mp4_factory: Callable[..., Path], version: int, movflags: str
) -> None:
    """A `mehd` box (movie timescale 1000 here) is preferred to the sum of the fragments."""
    data = mp4_factory(seconds=3.0, movflags=movflags, gop=10).read_bytes()
    accepted = preflight(io.BytesIO(_insert(data, ("moov", "mvex"), _mehd(3000, version))))
    assert accepted.duration == pytest.approx(3.0)
    too_long = _insert(data, ("moov", "mvex"), _mehd(20000, version))
    with pytest.raises(PreflightError) as caught:
        preflight(io.BytesIO(too_long))
    assert (caught.value.rule, caught.value.found) == ("duration", "20 s")


@pytest.mark.parametrize("movflags", ["frag_keyframe+empty_moov", "frag_keyframe"])
def test_fragmented_duration_without_mehd(mp4_factory: Callable[..., Path], movflags: str) -> None:
    info = _probe(mp4_factory(movflags=movflags, gop=10))
    assert info.duration == pytest.approx(3.0, abs=0.05)


# --- large files and 64-bit boxes ------------------------------------------------------------


def test_large_file_is_probed_from_a_few_kb(tmp_path: Path) -> None:
    started = time.perf_counter()
    path = make_large_mp4(tmp_path / "large.mp4", 300_000_000)
    assert time.perf_counter() - started < 2.0
    assert path.stat().st_size == 300_000_000
    with path.open("rb") as raw:
        f = CountingFile(raw)
        started = time.perf_counter()
        info = preflight(f)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert f.bytes_read < 8 * 1024
    assert elapsed < 0.5


def test_probe_never_reads_the_media_data(mp4_factory: Callable[..., Path]) -> None:
    path = mp4_factory(noise=True, width=640, height=480)
    (mdat,) = [box for box in _top_level(path) if box[0] == "mdat"]
    _, start, header, end = mdat
    assert end - start > 5_000_000
    with path.open("rb") as raw:
        f = CountingFile(raw)
        assert preflight(f).codec == "avc1"  # type: ignore[arg-type]
    assert f.bytes_read < 8 * 1024
    assert not [r for r in f.reads if r[0] < end and r[1] > start + header], f.reads


def test_fragmented_probe_never_reads_the_media_data(mp4_factory: Callable[..., Path]) -> None:
    path = mp4_factory(noise=True, width=320, height=240, movflags="frag_keyframe", gop=10)
    boxes = _top_level(path)
    media = [(start + header, end) for kind, start, header, end in boxes if kind == "mdat"]
    assert len(media) == 3
    assert sum(end - start for start, end in media) > 1_000_000
    with path.open("rb") as raw:
        f = CountingFile(raw)
        assert preflight(f).duration == pytest.approx(3.0, abs=0.001)  # type: ignore[arg-type]
    assert f.bytes_read < 8 * 1024
    assert not [r for r in f.reads for s, e in media if r[0] < e and r[1] > s], f.reads


def test_64_bit_box_beyond_4_gib(tmp_path: Path) -> None:
    path = make_large_mp4(tmp_path / "huge.mp4", 5 * 2**30)  # sparse
    last = _top_level(path)[-1]
    assert (last[0], last[2], last[3]) == ("free", 16, 5 * 2**30)
    with path.open("rb") as raw:
        f = CountingFile(raw)
        assert preflight(f).codec == "avc1"  # type: ignore[arg-type]
    assert f.bytes_read < 8 * 1024


def test_small_64_bit_box(tmp_path: Path) -> None:
    path = make_large_mp4(tmp_path / "largesize.mp4", 100_000, largesize=True)
    kind, _, header, _ = _top_level(path)[-1]
    assert (kind, header) == ("free", 16)
    assert check(_probe(path)).duration == pytest.approx(3.0, abs=0.05)


def test_64_bit_box_inside_moov(h264_clip: Path) -> None:
    box = struct.pack(">I4sQ", 1, b"free", 16 + 5) + b"extra"
    data = _insert(h264_clip.read_bytes(), ("moov",), box)
    info = preflight(io.BytesIO(data))
    assert (info.codec, info.width, info.height) == ("avc1", 64, 64)
    assert info.duration == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(
    "path", [("moov",), ("moov", "trak"), ("moov", "trak", "mdia"), ("moov", "mvhd")]
)
def test_64_bit_headers_of_read_boxes(h264_clip: Path, path: tuple[str, ...]) -> None:
    """The moov (last in this file, so no offsets move) and boxes inside it with 64-bit headers."""
    data = _widen(h264_clip.read_bytes(), path)
    start, end = 0, len(data)
    for name in path:
        _, box_start, header, end = next(b for b in _boxes(data, start, end) if b[0] == name)
        start = box_start + header
    assert header == 16
    info = preflight(io.BytesIO(data))
    assert (info.codec, info.width, info.height) == ("avc1", 64, 64)
    assert info.duration == pytest.approx(3.0, abs=0.05)


def test_truncated_64_bit_box(h264_clip: Path) -> None:
    data = h264_clip.read_bytes() + struct.pack(">I4sQ", 1, b"free", 5 * 2**30)
    with pytest.raises(PreflightError) as caught:
        preflight(io.BytesIO(data))
    assert caught.value.rule == "container"
    assert "truncated" in caught.value.message


def test_check_refuses_an_unknown_duration() -> None:
    info = Mp4Info("isom", ("isom",), None, "avc1", 64, 64)
    with pytest.raises(PreflightError) as caught:
        check(info)
    assert caught.value.rule == "duration"
