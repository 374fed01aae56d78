"""The emulator's drawn results look like what was asked: an extension is its input then new
frames from its last, an edit its input recoloured, a generation its still or a sky seeded by
its prompt, each with the prompt written in, as H.264 MP4s of exactly the seconds asked.

Judged by decoding the results with PyAV, against a real emulator on 127.0.0.1."""

from __future__ import annotations

import io
import logging
import math
import statistics
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fixtures_media import data_url, make_mp4

from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
from prefect_grok_video.emulator.jobs import Job
from prefect_grok_video.emulator.pictures import FPS
from prefect_grok_video.mp4 import preflight

STILL = Path(__file__).parent.parent / "examples" / "stills" / "harbour.png"
ROUTES = {"generate": "videos/generations", "edit": "videos/edits", "extend": "videos/extensions"}
#: Frames are compared at this size, above the prompt's band and below the time.
SMALL = (80, 45)
PICTURE_ROWS = range(3, 36)


@pytest.fixture(scope="module")
def client() -> Any:
    config = EmulatorConfig(latency=0, submit_rate=None, pictures="drawn")
    with (
        EmulatorServer(config) as server,
        httpx.Client(base_url=server.base_url, headers=server.headers, timeout=30) as client,
    ):
        yield client


def _result(client: httpx.Client, action: str, prompt: str, **fields: Any) -> tuple[dict, bytes]:
    """Submit, wait, download: the done answer and the file."""
    body = {"model": "grok-imagine-video", "prompt": prompt, **fields}
    response = client.post(f"/{ROUTES[action]}", json=body)
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    for _ in range(200):
        answer = client.get(f"/videos/{request_id}").json()
        if answer["status"] != "pending":
            break
    assert answer["status"] == "done", answer
    download = client.get(answer["video"]["url"])
    assert download.status_code == 200
    return answer, download.content


def _frames(data: bytes, fmt: str = "gray", size: tuple[int, int] = SMALL) -> list[bytes]:
    """Every frame, decoded strictly and scaled to `size`, as tight `fmt` bytes."""
    frames = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode"}
        for frame in container.decode(stream):
            plane = frame.reformat(width=size[0], height=size[1], format=fmt).planes[0]
            across = size[0] * (3 if fmt == "rgb24" else 1)
            view = memoryview(plane)
            frames.append(b"".join(
                view[row * plane.line_size : row * plane.line_size + across]
                for row in range(size[1])
            ))  # fmt: skip
    return frames


def _picture(frame: bytes, width: int = SMALL[0], channels: int = 1) -> list[int]:
    """The rows of a small frame between the time and the prompt's band."""
    across = width * channels
    return [value for row in PICTURE_ROWS for value in frame[row * across : (row + 1) * across]]


def _correlation(first: bytes, second: bytes) -> float:
    return statistics.correlation(_picture(first), _picture(second))


def _mean_rgb(frame: bytes) -> tuple[float, float, float]:
    values = _picture(frame, channels=3)
    return tuple(statistics.fmean(values[channel::3]) for channel in range(3))  # type: ignore[return-value]


def _lasts(data: bytes, seconds: float, size: tuple[int, int]) -> None:
    info = preflight(io.BytesIO(data), len(data), (0.0, math.inf))
    assert (info.duration, info.width, info.height) == (seconds, *size)
    assert len(_frames(data)) == math.ceil(seconds * FPS)


def test_a_generation_is_a_sky_seeded_by_its_prompt_with_the_prompt_written_in(client) -> None:
    prompt = "a lighthouse on a cliff at dusk as its beam begins to turn"
    answer, video = _result(client, "generate", prompt, duration=3, resolution="480p")
    _, again = _result(client, "generate", prompt, duration=3, resolution="480p")
    _, other = _result(client, "generate", "a field of red poppies at noon", duration=3)
    assert answer["video"]["duration"] == 3
    _lasts(video, 3.0, (854, 480))

    frames, colours = _frames(video), _frames(video, "rgb24")
    assert _frames(again) == frames, "the same prompt draws the same video"
    assert _mean_rgb(_frames(other, "rgb24")[0]) != pytest.approx(_mean_rgb(colours[0]), abs=8)
    assert frames[0] != frames[len(frames) // 2] != frames[-1], "nothing moves"
    # The prompt is written in a dark band along the bottom: light text on it.
    band = _frames(video, size=(854, 480))[0][440 * 854 :]
    assert statistics.fmean(band) < 90 and max(band) > 200


def test_a_generation_from_a_still_is_made_of_the_still(client) -> None:
    still = STILL.read_bytes()
    _, video = _result(client, "generate", "the boats rock as the lights come on",
                       image={"url": data_url(still, "image/png")}, duration=2)  # fmt: skip
    _lasts(video, 2.0, (854, 480))
    frames = _frames(video, "rgb24")
    (expected,) = _frames(still, "rgb24")
    for frame in (frames[0], frames[-1]):  # panned sideways: the same colours, moved
        assert _mean_rgb(frame) == pytest.approx(_mean_rgb(expected), abs=6)
    assert frames[0] != frames[-1]


def test_an_edit_is_its_input_recoloured(client, tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "in.mp4", seconds=2.0, width=320, height=180)
    _, video = _result(client, "edit", "the same scene under a purple sky",
                       video={"url": data_url(clip)})  # fmt: skip
    _lasts(video, 2.0, (320, 180))
    edited, original = _frames(video), _frames(clip.read_bytes())
    assert len(edited) == len(original) == 20
    for mine, theirs in zip(edited, original, strict=True):
        assert _correlation(mine, theirs) > 0.9  # the same picture...
    colour = [_mean_rgb(frame) for frame in _frames(video, "rgb24")]
    before = [_mean_rgb(frame) for frame in _frames(clip.read_bytes(), "rgb24")]
    assert colour[0] != pytest.approx(before[0], abs=10)  # ...in other colours


def test_an_extension_is_its_input_then_new_frames_grown_from_its_last(client, tmp_path) -> None:
    clip = make_mp4(tmp_path / "in.mp4", seconds=2.0, width=320, height=180)
    answer, video = _result(client, "extend", "the sky turns gold", duration=2,
                            video={"url": data_url(clip)})  # fmt: skip
    assert answer["video"]["duration"] == 4
    _lasts(video, 4.0, (320, 180))
    frames, original = _frames(video), _frames(clip.read_bytes())
    for mine, theirs in zip(frames[:20], original, strict=True):
        assert _correlation(mine, theirs) > 0.9
    new = frames[20:]
    assert len(new) == 20 and len(set(new)) == 20, "the new frames move"
    last = statistics.fmean(_picture(original[-1]))
    for frame in new:  # the last input frame panned: the same light, moved
        assert statistics.fmean(_picture(frame)) == pytest.approx(last, abs=4)
    assert _correlation(new[0], original[-1]) > _correlation(new[0], original[0])


def test_a_chained_extension_starts_with_the_emulators_own_result(client) -> None:
    generated, first = _result(client, "generate", "a red balloon rises", duration=2)
    _, chained = _result(client, "extend", "it drifts over the town", duration=2,
                         video={"url": generated["video"]["url"]})  # fmt: skip
    _lasts(chained, 4.0, (854, 480))
    for mine, theirs in zip(_frames(chained)[:20], _frames(first), strict=True):
        assert _correlation(mine, theirs) > 0.9


def test_a_result_that_cannot_be_drawn_is_served_as_flat_frames(caplog) -> None:
    def unreadable() -> bytes:
        raise OSError("the input went away")

    job = Job(request_id="req_x", model="grok-imagine-video", prompt="p", duration=2,
              input_key="k", created=0, latency=0, outcome="done", token="t",
              output_seconds=2.0, action="extend", size=(320, 180), source=unreadable)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="prefect_grok_video.emulator"):
        data = job.mp4("drawn")
    assert "Could not draw req_x" in caplog.text
    _lasts(data, 2.0, (320, 180))
    assert len(set(_frames(data))) == 1, "flat frames"
