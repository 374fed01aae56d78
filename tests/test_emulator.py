"""The emulator over real loopback HTTP, driven with plain httpx (not the project's client)."""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json
import math
import re
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fixtures_cli import cli_command
from fixtures_media import data_url, jpeg, png, sha256_key

from prefect_grok_video.cli import _emulator_config, build_parser, main
from prefect_grok_video.emulator import (
    DEFAULT_EMULATOR_API_KEY,
    EmulatorConfig,
    EmulatorServer,
    EmulatorState,
    create_app,
)
from prefect_grok_video.emulator.app import retry_after_value
from prefect_grok_video.emulator.jobs import DRAWN_SIZE
from prefect_grok_video.emulator.mp4gen import flat_gop, load_gop, make_mp4
from prefect_grok_video.errors import PreflightError
from prefect_grok_video.mp4 import preflight, probe
from prefect_grok_video.operations import MODELS

Factory = Callable[..., EmulatorServer]
JOB_CODES = [
    "invalid_argument",
    "permission_denied",
    "failed_precondition",
    "service_unavailable",
    "internal_error",
]


# -- helpers --------------------------------------------------------------------------------


@functools.cache
def clip(seconds: float = 3.0) -> bytes:
    """A tiny real H.264 MP4 (64x64, 10 fps) encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index in range(round(seconds * 10)):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for number, plane in enumerate(frame.planes):
                plane.update(bytes([(index * 7 + number * 50) % 256]) * plane.buffer_size)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def decode(data: bytes) -> tuple[float, int]:
    """(duration in seconds, decoded frame count) of an MP4, decoding every frame strictly."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode"}
        frames = sum(1 for _ in container.decode(stream))
        return container.duration / 1e6, frames


def api(server: EmulatorServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=server.headers, timeout=10, **kwargs)


ROUTES = {"generate": "videos/generations", "edit": "videos/edits", "extend": "videos/extensions"}


def send(client: httpx.Client, action: str, **fields: Any) -> httpx.Response:
    """Submit `action` with a default body (a `video` URL but to generate); `...` drops a field."""
    body = {"model": "grok-imagine-video", "prompt": "the camera pans left"}
    if action != "generate":
        body["video"] = URL
    body.update(fields)
    return client.post(f"/{ROUTES[action]}", json={k: v for k, v in body.items() if v is not ...})


def submit(client: httpx.Client, **fields: Any) -> httpx.Response:
    return send(client, "extend", **fields)


def submit_id(client: httpx.Client, action: str = "extend", **fields: Any) -> str:
    response = send(client, action, **fields)
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    assert re.fullmatch(r"req_[0-9a-f]+", request_id)
    return request_id


def wait(client: httpx.Client, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """Poll until the job leaves `pending`; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/videos/{request_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] != "pending" or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


URL = "https://example.com/clip.mp4"
STILL_URL = "https://example.com/still.jpg"


def frame_size_of(client: httpx.Client, url: str) -> tuple[int | None, int | None, float | None]:
    """(width, height, seconds) of the MP4 at `url`, from its headers."""
    info = probe(io.BytesIO(client.get(url).content))
    return info.width, info.height, info.duration


# -- results: mp4gen ------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [2, 2.35, 7.5, 15])
def test_generated_mp4_decodes_with_duration_and_frames(seconds: float) -> None:
    data = make_mp4(seconds, tag="req_test")
    duration, frames = decode(data)
    assert duration == pytest.approx(seconds, abs=0.1)
    assert frames == math.ceil(seconds * 10)
    info = preflight(io.BytesIO(data), len(data))
    assert info.codec == "avc1" and info.duration == pytest.approx(seconds, abs=0.001)
    assert (info.width, info.height) == (160, 90)


def test_generated_mp4_longer_than_input_limit_still_decodes() -> None:
    data = make_mp4(25)
    assert decode(data) == (pytest.approx(25, abs=0.1), 250)
    with pytest.raises(PreflightError):  # results can exceed the 15 s input limit
        preflight(io.BytesIO(data), len(data))


def test_generated_mp4_bytes_differ_per_tag_and_asset_is_small() -> None:
    assert make_mp4(3, tag="req_a") != make_mp4(3, tag="req_b")
    assert b"req_a" in make_mp4(3, tag="req_a")
    assets = Path(__file__).parent.parent / "prefect_grok_video" / "emulator" / "assets"
    assert sum(p.stat().st_size for p in assets.iterdir()) < 50_000
    assert load_gop().fps == 10
    with pytest.raises(ValueError):
        make_mp4(0)


@pytest.mark.parametrize(("width", "height"), [(854, 480), (480, 854), (1920, 1080), (64, 64)])
def test_flat_mp4_of_any_frame_size_decodes_strictly(width: int, height: int) -> None:
    data = make_mp4(2.5, tag="req_size", size=(width, height))
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode"}
        frames = list(container.decode(stream))
    assert len(frames) == 25 and {(f.width, f.height) for f in frames} == {(width, height)}
    info = preflight(io.BytesIO(data), len(data))
    assert (info.width, info.height, info.duration) == (width, height, 2.5)
    assert len(data) < 30_000  # a flat frame is about a byte a macroblock
    assert make_mp4(3, size=(160, 90)) == make_mp4(3)  # the asset's own size: the test card
    with pytest.raises(ValueError):
        flat_gop(853, 480)


# -- authentication -------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401_and_never_echoed(emulator: EmulatorServer) -> None:
    secret = "xai-very-secret-key-0123456789"
    with httpx.Client(base_url=emulator.base_url) as client:
        missing = client.post("/videos/extensions", json={"prompt": "p", "video": URL})
        wrong = client.post(
            "/videos/extensions",
            json={"prompt": "p", "video": URL},
            headers={"Authorization": f"Bearer {secret}"},
        )
        poll = client.get("/videos/req_x", headers={"Authorization": f"Bearer {secret}"})
        stats = client.get("/_emulator/stats", headers={"Authorization": "Basic abc"})
    for response in (missing, wrong, poll, stats):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "unauthenticated" and body["error"]
        assert secret not in response.text and secret not in str(response.headers)
    assert emulator.state.accepted == 0
    assert emulator.state.errors_by_status == {401: 4}


def test_forbidden_key_is_403(emulator_factory: Factory) -> None:
    server = emulator_factory(forbidden_keys={"read-only-key"})
    with httpx.Client(base_url=server.base_url) as client:
        response = client.post(
            "/videos/extensions",
            json={"prompt": "p", "video": URL},
            headers={"Authorization": "Bearer read-only-key"},
        )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "read-only-key" not in response.text


# -- synchronous errors ---------------------------------------------------------------------


def test_unknown_model_is_404_model_not_found(emulator: EmulatorServer) -> None:
    with api(emulator) as client:
        response = submit(client, model="grok-imagine-vidoe")
    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"
    assert "grok-imagine-vidoe" in response.json()["error"]
    assert emulator.state.accepted == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"prompt": "p"}).encode(), "`video`"),
        (json.dumps({"video": URL}).encode(), "`prompt`"),
        (json.dumps({"prompt": 5, "video": URL}).encode(), "`prompt` must be a string"),
        (json.dumps({"prompt": "p", "video": ["x"]}).encode(), "`video` must be a string"),
        (json.dumps({"prompt": "p", "video": URL, "duration": "6"}).encode(), "`duration`"),
        (json.dumps({"prompt": "p", "video": URL, "duration": True}).encode(), "`duration`"),
        (json.dumps({"prompt": "p", "video": URL, "model": 3}).encode(), "`model`"),
        (b'{"prompt": "p", "video": "file-1", "duration": NaN}', "not valid JSON"),
    ],
)
def test_malformed_requests_are_400_without_a_job(
    emulator: EmulatorServer, content: bytes, fragment: str
) -> None:
    with api(emulator) as client:
        response = client.post("/videos/extensions", content=content)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "error"} and fragment in body["error"]
    assert emulator.state.accepted == 0


def test_chunked_upload_is_411(emulator: EmulatorServer) -> None:
    payload = json.dumps({"prompt": "p", "video": URL}).encode()
    with api(emulator) as client:
        response = client.post("/videos/extensions", content=iter([payload]))
        assert response.status_code == 411
        assert response.json()["code"] == "length_required"
        assert submit(client).status_code == 200  # the client recovers on a new connection
    assert emulator.state.accepted == 1


def test_chunked_upload_accepted_when_allowed(emulator_factory: Factory) -> None:
    server = emulator_factory(require_content_length=False)
    payload = json.dumps({"prompt": "p", "video": URL}).encode()
    with api(server) as client:
        response = client.post("/videos/extensions", content=iter([payload]))
    assert response.status_code == 200 and server.state.accepted == 1


def test_body_over_limit_is_413(emulator_factory: Factory) -> None:
    server = emulator_factory(max_body_bytes=200)
    with api(server) as client:
        response = submit(client, prompt="x" * 300)
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert submit(client).status_code == 200
    assert server.state.accepted == 1


def test_unknown_request_id_is_404_json(emulator: EmulatorServer) -> None:
    with api(emulator) as client:
        response = client.get("/videos/req_doesnotexist")
        other = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "error": "No video request with id "
                               "'req_doesnotexist'."}  # fmt: skip
    assert other.status_code == 404 and other.json()["code"] == "not_found"


# -- rate limiting --------------------------------------------------------------------------


def test_token_bucket_429_with_whole_retry_after(emulator_factory: Factory) -> None:
    server = emulator_factory(submit_rate=1.0)
    with api(server) as client:
        first = submit(client)
        second = submit(client)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    assert second.json()["code"] == "rate_limit_exceeded"
    assert server.state.accepted == 1 and server.state.rate_limited == 1


def test_the_rate_limit_counts_a_submission_as_it_arrives_not_when_a_slow_answer_ends(
    emulator_factory: Factory,
) -> None:
    """Submissions sent evenly at the rate pass, whichever of them are answered slowly: a slow
    answer taking its token late would squeeze in right before the next one (a 429)."""
    server = emulator_factory(submit_rate=5.0, submit_tolerance=0.05, p_slow=0.5,
                              slow_response_seconds=0.5, seed=3)  # fmt: skip

    async def evenly() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=server.headers,
                                     timeout=10) as client:  # fmt: skip

            async def one(n: int) -> int:
                await asyncio.sleep(n * 0.21)
                body = {"model": "grok-imagine-video", "prompt": f"row {n}", "video": URL}
                return (await client.post(ROUTES["extend"], json=body)).status_code

            return list(await asyncio.gather(*(one(n) for n in range(10))))

    statuses = asyncio.run(evenly())
    assert server.state.slow_answers >= 2  # some were slow, some not
    assert statuses == [200] * 10, server.state.stats()["bucket_refusals"]
    assert server.state.bucket_refused == 0


def test_token_bucket_burst_and_fractional_retry_after(emulator_factory: Factory) -> None:
    server = emulator_factory(submit_rate=4.0, submit_burst=3, fractional_retry_after=True)
    with api(server) as client:
        statuses = [submit(client).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        retry = submit(client)
        assert retry.status_code == 429
        value = float(retry.headers["Retry-After"])
        assert 0 < value <= 0.25 and retry.headers["Retry-After"] != "1"
        time.sleep(value)
        assert submit(client).status_code == 200
    assert server.state.accepted == 4


def test_paced_submissions_respect_the_rate(emulator_factory: Factory) -> None:
    server = emulator_factory(submit_rate=10.0, submit_burst=1, fractional_retry_after=True)
    with api(server) as client:
        deadline = time.monotonic() + 0.55
        while time.monotonic() < deadline:
            response = submit(client)
            if response.status_code == 429:
                time.sleep(float(response.headers["Retry-After"]))
    times = [record.monotonic for record in server.state.submissions]
    assert len(times) >= 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.1 - 1e-6
    assert server.state.peak_accepted_per_second() <= 10
    assert server.state.peak_accepted_per_second(window=0.25) <= 3


@pytest.mark.parametrize(
    ("seconds", "fractional", "expected"),
    [(0.2, False, "1"), (1.2, False, "2"), (3.0, False, "3"), (0.05, True, "0.05"),
     (0.0001, True, "0.001"), (1.25, True, "1.25")],
)  # fmt: skip
def test_retry_after_formatting(seconds: float, fractional: bool, expected: str) -> None:
    assert retry_after_value(seconds, fractional) == expected


# -- lifecycle and results ------------------------------------------------------------------


def test_submit_pending_done_and_real_mp4_download(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0.5)
    with api(server) as client:
        request_id = submit_id(client, video=data_url(clip(3.0)), duration=4)
        first = client.get(f"/videos/{request_id}").json()
        time.sleep(0.25)
        second = client.get(f"/videos/{request_id}").json()
        done = wait(client, request_id)
        other_id = submit_id(client, video=data_url(clip(3.0)), duration=4, prompt="#latency=0")
        other = wait(client, other_id)
    for pending in (first, second):
        assert pending["status"] == "pending" and pending["model"] == "grok-imagine-video"
        assert isinstance(pending["progress"], int) and 0 <= pending["progress"] < 100
    assert second["progress"] > first["progress"]
    assert done["status"] == "done" and done["progress"] == 100
    assert done["model"] == "grok-imagine-video"
    assert done["video"]["duration"] == 7  # 3 s input + 4 s continuation
    assert done["video"]["respect_moderation"] is True
    assert done["usage"] == {"cost_in_usd_ticks": round(7 * 0.05 / 1e-10)}
    response = httpx.get(done["video"]["url"])  # no bearer: a presigned-like URL
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    duration, frames = decode(response.content)
    assert duration == pytest.approx(7, abs=0.1) and frames == 70
    assert preflight(io.BytesIO(response.content)).duration == pytest.approx(7)
    assert httpx.get(other["video"]["url"]).content != response.content
    assert httpx.head(done["video"]["url"]).status_code == 200
    assert server.state.downloads == {request_id: 1, other_id: 1}


def test_progress_can_be_left_out_of_pending_answers(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0.5, report_progress=False)
    with api(server) as client:
        request_id = submit_id(client, video=data_url(clip(3.0)), duration=4)
        pending = client.get(f"/videos/{request_id}").json()
        done = wait(client, request_id)
    assert pending == {"status": "pending", "model": "grok-imagine-video"}
    assert done["status"] == "done"


def test_url_and_file_id_inputs_assume_five_seconds(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        by_url = wait(client, submit_id(client, video="http://example.com/a.mp4"))
        by_file = wait(client, submit_id(client, video="file-abc123", duration=2))
        by_file2 = wait(client, submit_id(client, video="file_XYZ-9", duration=10))
    assert by_url["video"]["duration"] == 11  # default duration 6
    assert by_file["video"]["duration"] == 7
    assert by_file2["video"]["duration"] == 15


def test_fractional_input_duration_adds_up(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        done = wait(client, submit_id(client, video=data_url(clip(2.5)), duration=2))
        data = httpx.get(done["video"]["url"]).content
    assert done["video"]["duration"] == 4.5
    assert decode(data) == (pytest.approx(4.5, abs=0.1), 45)


# -- directives -----------------------------------------------------------------------------


def test_moderated_directive(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        request_id = submit_id(client, prompt="a riot breaks out #moderated")
        body = wait(client, request_id)
        file_status = httpx.get(f"{server.url}/files/{request_id}.mp4").status_code
    assert body["status"] == "done"
    assert body["video"]["respect_moderation"] is False and body["video"]["url"] == ""
    assert file_status == 404


def test_expired_directive(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        body = wait(client, submit_id(client, prompt="#expired and then"))
    assert body == {"status": "expired", "model": "grok-imagine-video"}


@pytest.mark.parametrize("code", JOB_CODES)
def test_fail_directive(emulator_factory: Factory, code: str) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        first = wait(client, submit_id(client, prompt=f"go #fail={code}"))
        again = wait(client, submit_id(client, prompt=f"go #fail={code}"))
    assert first["status"] == again["status"] == "failed"
    assert first["error"]["code"] == code and len(first["error"]["message"]) > 20
    assert first["model"] == "grok-imagine-video"


def test_fail_first_directive_fails_only_the_first_of_a_pair(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    prompt = "storm #fail-first=service_unavailable"
    with api(server) as client:
        first = wait(client, submit_id(client, prompt=prompt))
        second = wait(client, submit_id(client, prompt=prompt))
        other_input = wait(client, submit_id(client, prompt=prompt, video="file-other"))
    assert first["status"] == "failed" and first["error"]["code"] == "service_unavailable"
    assert second["status"] == "done"
    assert other_input["status"] == "failed"


def test_latency_directive_overrides_config(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=30)
    with api(server) as client:
        fast = submit_id(client, prompt="quick #latency=0.1")
        slow = submit_id(client, prompt="slow")
        assert client.get(f"/videos/{fast}").json()["status"] == "pending"
        assert wait(client, fast, timeout=2)["status"] == "done"
        assert client.get(f"/videos/{slow}").json()["status"] == "pending"


def test_malformed_directive_fails_invalid_argument(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    with api(server) as client:
        body = wait(client, submit_id(client, prompt="go #latency=soon"))
        hashtag = wait(client, submit_id(client, prompt="a #sunset over the sea"))
    assert body["error"]["code"] == "invalid_argument" and "#latency" in body["error"]["message"]
    assert hashtag["status"] == "done"  # ordinary hashtags are not directives


# -- asynchronous validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"prompt": "   "}, "Prompt cannot be empty"),
        ({"prompt": "x" * 4097}, "too long"),
        ({"duration": 11}, "Invalid duration 11"),
        ({"duration": 1}, "Invalid duration 1"),
        ({"duration": 6.5}, "Invalid duration 6.5"),
        ({"video": data_url(b"hello, this is not a video at all")}, "not an MP4"),
        ({"video": "data:video/mp4;base64,!!!not-base64!!!"}, "not valid base64"),
        ({"video": "data:video/mp4,AAAA"}, "base64-encoded"),
        ({"video": "data:video/mp4;base64"}, "malformed data URL"),
        ({"video": "my-holiday.mp4"}, "expected a public http(s) URL"),
        ({"aspect_ratio": "16:9"}, "aspect_ratio"),
    ],
)
def test_invalid_arguments_fail_asynchronously(
    emulator: EmulatorServer, fields: dict[str, Any], fragment: str
) -> None:
    with api(emulator) as client:
        request_id = submit_id(client, **fields)
        body = wait(client, request_id)
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "invalid_argument"
    assert fragment in body["error"]["message"]
    assert emulator.state.accepted == 1
    assert emulator.state.submissions[0].outcome == "failed"


# -- three operations -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared() -> Iterator[EmulatorServer]:
    """One quick emulator for the many small tests that look only at their own requests."""
    with EmulatorServer(EmulatorConfig(latency=0, submit_rate=None)) as server:
        yield server


@pytest.fixture(scope="module")
def client(shared: EmulatorServer) -> Iterator[httpx.Client]:
    """A client of `shared` (one connection pool: making a client costs tens of ms)."""
    with api(shared) as client:
        yield client


def test_every_route_takes_media_as_a_string_or_an_object_and_records_it(
    emulator_factory: Factory,
) -> None:
    server = emulator_factory(latency=0)
    cases = [
        ("generate", {}, {}),
        ("generate", {"image": STILL_URL}, {"image": "string"}),
        ("generate", {"image": {"url": STILL_URL, "detail": "high"}}, {"image": "object"}),
        ("edit", {"video": URL}, {"video": "string"}),
        ("edit", {"video": {"url": URL}}, {"video": "object"}),
        ("extend", {"video": URL, "duration": 2}, {"video": "string"}),
        ("extend", {"video": {"url": URL, "name": "clip"}, "duration": 2}, {"video": "object"}),
    ]
    with api(server) as client:
        ids = [submit_id(client, action, **fields) for action, fields, _ in cases]
        answers = [wait(client, request_id) for request_id in ids]
        stats = client.get("/_emulator/stats").json()
    assert [a["status"] for a in answers] == ["done"] * len(cases), answers
    records = server.state.submissions
    for (action, fields, media), record, sent in zip(
        cases, records, stats["submissions"], strict=True
    ):
        assert (record.action, record.route, record.media) == (action, ROUTES[action], media)
        expected = {"model": "grok-imagine-video", "prompt": "the camera pans left"}
        expected.update({k: v for k, v in fields.items() if k not in ("video", "image")})
        assert record.fields == expected
        assert sent == {**vars(record), "fields": expected, "media": media}
    assert [a["video"]["duration"] for a in answers] == [8, 8, 8, 5, 5, 7, 7]
    assert [r.duration for r in records] == [8, 8, 8, None, None, 2, 2]
    assert records[0].input_key.startswith("prompt:sha256:")
    assert records[1].input_key == records[2].input_key == STILL_URL
    assert server.state.accepted_by_input[URL] == 4


@pytest.mark.parametrize("route", ROUTES.values())
@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"video": ["x"]}, "`video` must be a string or an object with a string `url`"),
        ({"video": {"uri": URL}}, "`video` must be a string"),
        ({"video": {"url": 5}}, "`video` must be a string"),
        ({"image": 5}, "`image` must be a string"),
        ({"image": [{"url": STILL_URL}]}, "`image` must be a string"),
        ({"prompt": ...}, "Missing required field `prompt`"),
    ],
)
def test_other_media_shapes_and_missing_fields_are_400_on_every_route(
    shared: EmulatorServer,
    client: httpx.Client,
    route: str,
    fields: dict[str, Any],
    fragment: str,
) -> None:
    body = {"prompt": "p", "video": URL, **fields}
    accepted = shared.state.accepted
    response = client.post(f"/{route}", json={k: v for k, v in body.items() if v is not ...})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request" and fragment in response.json()["error"]
    assert shared.state.accepted == accepted


@pytest.mark.parametrize("action", ["edit", "extend"])
def test_edit_and_extend_without_video_are_400(
    shared: EmulatorServer, client: httpx.Client, action: str
) -> None:
    accepted = shared.state.accepted
    response = send(client, action, video=...)
    null = send(client, action, video=None)
    for answer in (response, null):
        assert answer.status_code == 400 and "Missing required field `video`" in answer.text
    assert shared.state.accepted == accepted


@pytest.mark.parametrize(
    ("action", "fields", "code", "fragment"),
    [
        ("extend", {"resolution": "720p"}, "invalid_argument", "does not accept resolution"),
        ("edit", {"duration": 5}, "invalid_argument", "Video editing does not accept duration"),
        ("edit", {"aspect_ratio": "1:1"}, "invalid_argument", "does not accept aspect_ratio"),
        ("edit", {"resolution": "480p"}, "invalid_argument", "does not accept resolution"),
        ("edit", {"image": STILL_URL}, "invalid_argument", "does not accept image"),
        ("extend", {"image": STILL_URL}, "invalid_argument", "does not accept image"),
        ("generate", {"video": URL}, "invalid_argument", "Video generation does not accept video"),
        ("generate", {"duration": 0}, "invalid_argument", "Invalid duration 0: it must be a whole "
         "number of seconds from 1 to 15"),
        ("generate", {"duration": 16}, "invalid_argument", "Invalid duration 16"),
        ("generate", {"duration": 2.5}, "invalid_argument", "Invalid duration 2.5"),
        ("extend", {"duration": 1}, "invalid_argument", "from 2 to 10"),
        ("generate", {"aspect_ratio": "5:4"}, "invalid_argument", "Invalid aspect_ratio '5:4'"),
        ("generate", {"resolution": "4k"}, "invalid_argument", "Invalid resolution '4k'"),
        ("generate", {"resolution": "1080p"}, "failed_precondition",
         "The model 'grok-imagine-video' does not support resolution '1080p'; it offers "
         "480p, 720p"),
        ("generate", {"prompt": " "}, "invalid_argument", "Prompt cannot be empty"),
        ("generate", {"image": data_url(b"GIF89a" + bytes(20), "image/gif")}, "invalid_argument",
         "Invalid image: the still is GIF; the service takes PNG or JPEG"),
        ("generate", {"image": {"url": data_url(b"just some text", "image/png")}},
         "invalid_argument", "the still is not an image"),
        ("generate", {"image": data_url(clip(3.0), "image/png")}, "invalid_argument",
         "a video, not a still"),
        ("generate", {"image": "data:image/png;base64,@@"}, "invalid_argument", "not valid base64"),
        ("generate", {"image": "file-abc123"}, "invalid_argument", "expected a public http(s) URL"),
        ("edit", {"video": data_url(clip(10.0))}, "invalid_argument",
         "the video is 10 s long; the service accepts 1 to 8.7 s"),
        ("edit", {"video": {"url": data_url(b"not a video")}}, "invalid_argument", "not an MP4"),
    ],
)  # fmt: skip
def test_what_the_service_refuses_fails_the_job(
    shared: EmulatorServer,
    client: httpx.Client,
    action: str,
    fields: dict[str, Any],
    code: str,
    fragment: str,
) -> None:
    request_id = submit_id(client, action, **fields)
    body = wait(client, request_id)
    assert body["status"] == "failed", body
    assert body["error"]["code"] == code and fragment in body["error"]["message"]
    assert shared.state.get_job(request_id).error_code == code


def test_stills_are_told_apart_by_content(shared: EmulatorServer, client: httpx.Client) -> None:
    still_png, still_jpeg = png(), jpeg()
    # The declared media type does not matter: the bytes do.
    by_png = submit_id(client, "generate", image=data_url(still_png, "image/jpeg"))
    by_jpeg = submit_id(client, "generate", image={"url": data_url(still_jpeg, "image/png")})
    answers = [wait(client, request_id) for request_id in (by_png, by_jpeg)]
    assert [a["status"] for a in answers] == ["done", "done"], answers
    keys = [shared.state.get_job(request_id).input_key for request_id in (by_png, by_jpeg)]
    assert keys == [sha256_key(d) for d in (still_png, still_jpeg)]
    assert "base64" not in json.dumps(shared.state.stats())


@pytest.mark.parametrize(
    ("fields", "size", "seconds"),
    [
        ({}, (854, 480), 8),
        ({"duration": 3, "aspect_ratio": "16:9", "resolution": "480p"}, (854, 480), 3),
        ({"duration": 2, "aspect_ratio": "9:16", "resolution": "720p"}, (720, 1280), 2),
        ({"duration": 1, "aspect_ratio": "4:3", "image": STILL_URL}, (640, 480), 1),
        ({"duration": 1, "aspect_ratio": "2:3", "resolution": "1080p",
          "model": "grok-imagine-video-1.5"}, (1080, 1620), 1),
    ],
)  # fmt: skip
def test_generation_lasts_its_duration_in_the_frame_size_asked(
    client: httpx.Client, fields: dict[str, Any], size: tuple[int, int], seconds: int
) -> None:
    done = wait(client, submit_id(client, "generate", **fields))
    assert done["status"] == "done" and done["model"] == fields.get("model", "grok-imagine-video")
    assert done["video"]["duration"] == seconds
    assert done["usage"] == {"cost_in_usd_ticks": round(seconds * 0.05 / 1e-10)}
    assert frame_size_of(client, done["video"]["url"]) == (*size, seconds)


def test_edit_keeps_the_input_length_and_size(client: httpx.Client) -> None:
    by_data = wait(client, submit_id(client, "edit", video={"url": data_url(clip(2.5))}))
    by_url = wait(client, submit_id(client, "edit", video=URL))
    data = client.get(by_data["video"]["url"]).content
    assert by_data["video"]["duration"] == 2.5 and by_url["video"]["duration"] == 5
    assert decode(data) == (pytest.approx(2.5, abs=0.1), 25)
    assert probe(io.BytesIO(data)).width == 64  # the input's 64x64
    assert frame_size_of(client, by_url["video"]["url"]) == (*DRAWN_SIZE, 5)  # size unknown
    assert by_data["usage"] == {"cost_in_usd_ticks": round(2.5 * 0.05 / 1e-10)}


def test_chains_read_the_length_of_the_emulators_own_results(client: httpx.Client) -> None:
    generated = wait(client, submit_id(client, "generate", duration=4))["video"]["url"]
    long = wait(client, submit_id(client, "generate", duration=10, aspect_ratio="1:1"))
    extended = wait(client, submit_id(client, video=generated, duration=3))
    edited = wait(client, submit_id(client, "edit", video={"url": generated}))
    long_extended = wait(client, submit_id(client, video=long["video"]["url"], duration=5))
    too_long = wait(client, submit_id(client, "edit", video=long["video"]["url"]))
    longest = wait(client, submit_id(client, video=long_extended["video"]["url"]))
    past_the_cap = wait(client, submit_id(client, video=longest["video"]["url"]))
    assert extended["video"]["duration"] == 7  # 4 s generated + 3 s, not the assumed 5 s + 3
    assert frame_size_of(client, extended["video"]["url"]) == (854, 480, 7)
    assert edited["video"]["duration"] == 4
    assert long_extended["video"]["duration"] == 15 and longest["video"]["duration"] == 21
    assert frame_size_of(client, long_extended["video"]["url"]) == (480, 480, 15)
    for refused, fragment in (
        (too_long, "the video is 10 s long; the service accepts 1 to 8.7 s"),
        (past_the_cap, "the video is 21 s long; the service accepts 2 to 15 s"),
    ):
        assert refused["error"]["code"] == "invalid_argument", refused
        assert fragment in refused["error"]["message"]


def test_a_result_url_that_cannot_be_fetched_fails_the_chain(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0, url_ttl=0.3)
    with api(server) as client:
        url = wait(client, submit_id(client, "generate", duration=3))["video"]["url"]
        pending = submit_id(client, "generate", prompt="slow #latency=30")
        base = url.split("?")[0]
        inputs = [
            base + "?token=guess",
            f"{server.url}/files/req_unknown.mp4?token=x",
            f"{server.url}/files/{pending}.mp4",
        ]
        refused = [wait(client, submit_id(client, video=video)) for video in inputs]
        time.sleep(0.35)
        expired = wait(client, submit_id(client, "edit", video=url))
    for body in (*refused, expired):
        assert body["status"] == "failed" and body["error"]["code"] == "invalid_argument"
        assert "the video URL cannot be fetched" in body["error"]["message"]
    assert "expired" in expired["error"]["message"]
    assert server.state.downloads == {}  # reading a result as an input is not a download


@pytest.mark.parametrize("action", ["generate", "edit"])
def test_seeded_faults_are_the_same_on_the_new_routes(
    emulator_factory: Factory, action: str
) -> None:
    knobs = {"p_submit_5xx": 0.4, "p_first_attempt_unavailable": 0.5, "latency": 0, "seed": 7}
    runs = []
    for _ in range(2):
        server = emulator_factory(**knobs)
        with api(server) as client:
            statuses = [send(client, action, prompt=f"p{i}").status_code for i in range(16)]
            outcomes = [record.error_code for record in server.state.submissions]
        runs.append((statuses, outcomes))
    assert runs[0] == runs[1]
    statuses, outcomes = runs[0]
    assert {200, *(s for s in statuses if s >= 500)} == set(statuses) and len(set(statuses)) > 1
    assert {None, "service_unavailable"} == set(outcomes)


def test_too_short_and_wrong_container_inputs_say_what_was_found(emulator: EmulatorServer) -> None:
    webm_like = b"\x1a\x45\xdf\xa3" + b"\x00" * 60
    with api(emulator) as client:
        short = wait(client, submit_id(client, video=data_url(clip(1.0))))
        webm = wait(client, submit_id(client, video=data_url(webm_like, "video/webm")))
    assert short["error"]["code"] == "invalid_argument"
    assert "1 s long" in short["error"]["message"]
    assert "WebM" in webm["error"]["message"]


def test_large_data_url_is_decoded_off_the_event_loop(emulator: EmulatorServer) -> None:
    padding = 100_000  # a trailing `free` box keeps the MP4 valid and makes it large
    padded = clip(3.0) + struct.pack(">I4s", 8 + padding, b"free") + bytes(padding)
    video = data_url(padded)
    assert len(video) > 128_000
    with api(emulator) as client:
        body = wait(client, submit_id(client, video=video, duration=2))
    assert body["status"] == "done" and body["video"]["duration"] == 5


# -- seeded knobs ---------------------------------------------------------------------------


def _submit_statuses(server: EmulatorServer, count: int) -> list[int]:
    with api(server) as client:
        return [submit(client).status_code for _ in range(count)]


def test_p_submit_5xx_is_seeded_and_creates_no_job(emulator_factory: Factory) -> None:
    runs = [_submit_statuses(emulator_factory(p_submit_5xx=0.5, seed=7), 30) for _ in range(2)]
    other = _submit_statuses(emulator_factory(p_submit_5xx=0.5, seed=8), 30)
    assert runs[0] == runs[1] != other
    assert set(runs[0]) - {200} <= {500, 502, 503} and len(set(runs[0])) >= 3


def test_p_submit_5xx_counters(emulator_factory: Factory) -> None:
    server = emulator_factory(p_submit_5xx=0.5, seed=3)
    statuses = _submit_statuses(server, 20)
    assert server.state.accepted == statuses.count(200) > 0
    assert server.state.server_errors == sum(s >= 500 for s in statuses) > 0


def test_p_submit_429_storm_is_seeded_with_retry_after(emulator_factory: Factory) -> None:
    server = emulator_factory(p_submit_429=0.5, seed=1)
    twin = emulator_factory(p_submit_429=0.5, seed=1)
    with api(server) as client:
        responses = [submit(client) for _ in range(20)]
    statuses = [r.status_code for r in responses]
    assert statuses == _submit_statuses(twin, 20)
    limited = [r for r in responses if r.status_code == 429]
    assert limited and all(r.headers["Retry-After"] == "1" for r in limited)
    assert server.state.accepted == statuses.count(200)
    assert server.state.rate_limited == len(limited)


@pytest.mark.parametrize(
    ("knob", "statuses"), [("p_poll_5xx", {500, 502, 503}), ("p_poll_429", {429})]
)
def test_poll_faults_are_seeded(emulator_factory: Factory, knob: str, statuses: set[int]) -> None:
    sequences = []
    for _ in range(2):
        server = emulator_factory(**{knob: 0.4, "seed": 5})
        with api(server) as client:
            request_id = submit_id(client)
            sequences.append([client.get(f"/videos/{request_id}").status_code for _ in range(25)])
        assert server.state.polls[request_id] == sequences[-1].count(200)
    assert sequences[0] == sequences[1]
    assert set(sequences[0]) - {200} <= statuses and set(sequences[0]) & statuses
    assert 200 in sequences[0]


def test_drop_after_accept_counts_a_job_the_client_never_heard_of(
    emulator_factory: Factory,
) -> None:
    server = emulator_factory(p_drop_after_accept=1.0, latency=0)
    with api(server) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            submit(client)
        assert server.state.accepted == 1 and server.state.drops == 1
        record = server.state.submissions[0]
        assert record.dropped is True
        assert wait(client, record.request_id)["status"] == "done"  # the job exists and is billed
        stats = client.get("/_emulator/stats").json()
    assert stats["drops"] == 1 and stats["accepted"] == 1


def test_p_drop_after_accept_is_seeded(emulator_factory: Factory) -> None:
    outcomes = []
    for _ in range(2):
        server = emulator_factory(p_drop_after_accept=0.5, seed=11)
        with api(server) as client:
            run = []
            for _ in range(12):
                try:
                    run.append(submit(client).status_code)
                except httpx.RemoteProtocolError:
                    run.append("drop")
        outcomes.append(run)
        assert server.state.accepted == 12 and server.state.drops == run.count("drop")
    assert outcomes[0] == outcomes[1] and "drop" in outcomes[0] and 200 in outcomes[0]


def test_p_first_attempt_unavailable(emulator_factory: Factory) -> None:
    server = emulator_factory(p_first_attempt_unavailable=1.0, latency=0)
    with api(server) as client:
        first = wait(client, submit_id(client))
        second = wait(client, submit_id(client))
        other = wait(client, submit_id(client, prompt="another prompt"))
    assert first["status"] == "failed" and first["error"]["code"] == "service_unavailable"
    assert second["status"] == "done"
    assert other["status"] == "failed"


def test_p_first_attempt_unavailable_is_seeded(emulator_factory: Factory) -> None:
    runs = []
    for _ in range(2):
        server = emulator_factory(p_first_attempt_unavailable=0.5, seed=2, latency=0)
        with api(server) as client:
            ids = [submit_id(client, prompt=f"prompt {i}") for i in range(12)]
            runs.append([wait(client, i)["status"] for i in ids])
    assert runs[0] == runs[1] and {"failed", "done"} <= set(runs[0])


def test_slow_responses(emulator_factory: Factory) -> None:
    server = emulator_factory(p_slow=1.0, slow_response_seconds=0.3)
    with api(server) as client:
        started = time.monotonic()
        request_id = submit_id(client)
        submit_time = time.monotonic() - started
        started = time.monotonic()
        client.get(f"/videos/{request_id}")
        poll_time = time.monotonic() - started
    assert submit_time >= 0.3 and poll_time >= 0.3


def test_p_slow_is_seeded(emulator_factory: Factory) -> None:
    runs = []
    for _ in range(2):
        # Slow = half a second: far more than a loaded machine adds to a fast answer.
        server = emulator_factory(p_slow=0.5, slow_response_seconds=0.5, seed=4)
        with api(server) as client:
            run = []
            for _ in range(8):
                started = time.monotonic()
                submit(client)
                run.append(time.monotonic() - started >= 0.45)
        runs.append(run)
        assert server.state.slow_answers == sum(run)
    assert runs[0] == runs[1] and True in runs[0] and False in runs[0]


def test_latency_jitter_is_seeded(emulator_factory: Factory) -> None:
    latencies = []
    for seed in (9, 9, 10):
        server = emulator_factory(latency=10, latency_jitter=0.5, seed=seed)
        with api(server) as client:
            ids = [submit_id(client) for _ in range(5)]
        latencies.append([server.state.get_job(i).latency for i in ids])
    assert latencies[0] == latencies[1] != latencies[2]
    assert all(5 <= value <= 15 for value in latencies[0]) and len(set(latencies[0])) == 5


# -- result URLs and job expiry -------------------------------------------------------------


def test_result_url_expires_and_needs_its_token(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0, url_ttl=0.3)
    with api(server) as client:
        request_id = submit_id(client)
        url = wait(client, request_id)["video"]["url"]
    assert httpx.get(url).status_code == 200
    wrong = httpx.get(url.split("?")[0] + "?token=guess")
    assert wrong.status_code == 403 and wrong.json()["code"] == "access_denied"
    assert httpx.get(url.split("?")[0]).status_code == 403
    assert httpx.get(f"{server.url}/files/req_unknown.mp4").status_code == 404
    time.sleep(0.35)
    expired = httpx.get(url)
    assert expired.status_code == 403 and expired.json()["code"] == "url_expired"
    assert server.state.downloads == {request_id: 1}


def test_no_file_while_pending(emulator: EmulatorServer) -> None:
    with api(emulator) as client:
        request_id = submit_id(client, prompt="#latency=5")
    assert httpx.get(f"{emulator.url}/files/{request_id}.mp4").status_code == 404


def test_job_ttl_expires_jobs_not_polled_to_completion(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0.1, job_ttl=0.3)
    with api(server) as client:
        seen = submit_id(client)
        forgotten = submit_id(client)
        assert wait(client, seen)["status"] == "done"
        time.sleep(0.35)
        assert client.get(f"/videos/{forgotten}").json()["status"] == "expired"
        assert client.get(f"/videos/{seen}").json()["status"] == "done"


# -- counters and stats ---------------------------------------------------------------------


def test_counters_per_input_polls_and_downloads(emulator_factory: Factory) -> None:
    server = emulator_factory(latency=0)
    video = clip(3.0)
    with api(server) as client:
        a = submit_id(client, video=data_url(video))
        b = submit_id(client, video=data_url(video), prompt="another")
        c = submit_id(client, video=URL)
        for request_id in (a, b, c):
            wait(client, request_id)
        client.get(f"/videos/{a}")
        url = client.get(f"/videos/{c}").json()["video"]["url"]
        httpx.get(url)
        httpx.get(url)
        stats = client.get("/_emulator/stats").json()
    key = sha256_key(video)
    state = server.state
    assert state.accepted == 3
    assert state.accepted_by_input == {key: 2, URL: 1}
    assert state.polls == {a: 2, b: 1, c: 2}
    assert state.downloads == {c: 2}
    assert stats["accepted"] == 3 and stats["accepted_by_input"] == {key: 2, URL: 1}
    assert stats["polls"] == state.polls and stats["downloads"] == {c: 2}
    assert [s["request_id"] for s in stats["submissions"]] == [a, b, c]
    first = stats["submissions"][0]
    assert first["input_key"] == key and first["prompt"] == "the camera pans left"
    assert first["duration"] == 6 and first["outcome"] == "done" and first["dropped"] is False
    assert first["wall_time"] == pytest.approx(time.time(), abs=30)
    assert "base64" not in json.dumps(stats)  # never the video data


def test_stats_and_reset_over_http(emulator_factory: Factory) -> None:
    server = emulator_factory(submit_rate=1.0)
    with api(server) as client:
        submit_id(client)
        assert submit(client).status_code == 429
        stats = client.get("/_emulator/stats").json()
        assert set(stats) >= {
            "accepted", "accepted_by_input", "peak_accepted_per_second", "rate_limited",
            "server_errors", "drops", "errors_by_status", "polls", "downloads", "submissions",
        }  # fmt: skip
        assert stats["accepted"] == 1 and stats["rate_limited"] == 1
        assert stats["errors_by_status"] == {"429": 1}
        assert stats["peak_accepted_per_second"] == 1
        assert httpx.post(f"{server.base_url}/_emulator/reset").status_code == 401
        after = client.post("/_emulator/reset").json()
        assert after["accepted"] == 0 and after["submissions"] == [] and after["rate_limited"] == 0
        assert submit(client).status_code == 200  # the bucket is full again
    assert server.state.accepted == 1


def test_reconfigure_while_running(emulator: EmulatorServer) -> None:
    with api(emulator) as client:
        assert submit(client).status_code == 200
        emulator.reconfigure(p_submit_5xx=1.0)
        assert submit(client).status_code in (500, 502, 503)
    assert emulator.config.p_submit_5xx == 1.0


# -- server and configuration ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(host=host)


def test_localhost_server_properties_and_fast_start() -> None:
    started = time.monotonic()
    with EmulatorServer(EmulatorConfig(latency=0), host="localhost") as server:
        elapsed = time.monotonic() - started
        assert server.base_url == f"http://127.0.0.1:{server.port}/grok/v1"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.api_key == DEFAULT_EMULATOR_API_KEY
        assert isinstance(server.state, EmulatorState)
        assert httpx.get(f"{server.base_url}/videos/x", headers=server.headers).status_code == 404
    assert elapsed < 0.3
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/videos/x")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(p_poll_5xx=1.5)
    with pytest.raises(ValueError):
        EmulatorConfig(latncy=1)  # typo: unknown knobs are refused
    config = EmulatorConfig()
    assert (config.latency, config.submit_rate, config.submit_burst) == (3.0, 1.0, 1)
    assert config.url_ttl == 86400 and config.max_body_bytes == 1024**3
    assert config.models == tuple(MODELS) and config.models[0] == "grok-imagine-video"
    assert (config.default_aspect_ratio, config.default_resolution) == ("16:9", "480p")
    with pytest.raises(ValueError):
        EmulatorConfig(default_aspect_ratio="5:4")
    with pytest.raises(ValueError):
        EmulatorConfig(default_resolution="4k")
    assert config.replace(latency=1).latency == 1


def test_create_app_builds_state_from_config() -> None:
    app = create_app(config=EmulatorConfig(seed=3))
    assert app.state.emulator.config.seed == 3


# -- CLI ------------------------------------------------------------------------------------


def test_cli_config_file_flags_and_set(tmp_path: Path) -> None:
    config_file = tmp_path / "emulator.json"
    config_file.write_text(json.dumps({"latency": 9, "seed": 4, "p_poll_5xx": 0.2}))
    args = build_parser().parse_args(
        ["emulator", "--config", str(config_file), "--latency", "0.5", "--no-rate-limit",
         "--set", "job_ttl=60", "--set", "models=[\"m1\", \"m2\"]", "--fractional-retry-after"]
    )  # fmt: skip
    config = _emulator_config(args)
    assert config.latency == 0.5 and config.seed == 4 and config.p_poll_5xx == 0.2
    assert config.submit_rate is None and config.job_ttl == 60
    assert config.models == ("m1", "m2") and config.fractional_retry_after is True


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "emulator" in capsys.readouterr().out


def test_cli_emulator_help_lists_the_routes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    text = capsys.readouterr().out
    assert all(route in text for route in ROUTES.values()) and "videos/{request_id}" in text


def test_cli_invalid_config_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--set", "latncy=1"]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_cli_serves_in_a_subprocess() -> None:
    process = subprocess.Popen(
        cli_command("emulator", "--port", "0", "--latency", "0", "--api-key", "cli-key",
                    "--no-rate-limit"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        match = re.search(r"GROK_VIDEO_BASE_URL=(\S+) GROK_VIDEO_API_KEY=(\S+)", "".join(lines))
        assert match, lines
        base_url, key = match.groups()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/grok/v1")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=5) as client:
            request_id = submit_id(client)
            assert wait(client, request_id)["status"] == "done"
            assert client.get("/_emulator/stats").json()["accepted"] == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "emulator stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
