"""The public client against `IndependentAPI`: a server written from API.md alone, not by the
project, that makes other (legitimate) choices: `/v1` prefix, UUID request ids, OpenAI-style
error bodies, HTTP-date `Retry-After`, extra fields, unknown statuses, a chunked signed CDN."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fixtures_emulator import FAST_POLL, FAST_RETRY
from independent_api import IndependentAPI, make_h264_mp4

from prefect_grok_video import AsyncGrokVideoClient, GrokVideoClient, RetryPolicy, VideoJob
from prefect_grok_video.errors import (
    APIConnectionError,
    AuthenticationError,
    DownloadError,
    GrokVideoError,
    JobFailedError,
    NotFoundError,
    RateLimitError,
    UnknownModelError,
)

URL_VIDEO = "https://media.example.org/clips/in.mp4?token=abc"
WRONG_KEY = "sk-indep-wrong-canary-5c1d9e"


@pytest.fixture
def api() -> Iterator[IndependentAPI]:
    """An independent server with short jobs and no rate limiting in the way."""
    with IndependentAPI(latency=0.2) as server:
        yield server


def client_for(api: IndependentAPI, key: str | None = None, **options) -> AsyncGrokVideoClient:
    """An async client of `api` with fast polling and retries."""
    options = {"poll": FAST_POLL, "retry": FAST_RETRY, **options}
    return AsyncGrokVideoClient(key or api.api_key, base_url=api.base_url, **options)


def write_clip(folder: Path, *, seconds: float = 3.0, shade: int = 40) -> Path:
    """Write an H.264 MP4 made with PyAV into `folder` and return its path."""
    path = folder / f"input-{shade}.mp4"
    path.write_bytes(make_h264_mp4(seconds, shade=shade))
    return path


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_text(error: BaseException) -> str:
    """Everything an error shows: str, repr, args and the formatted chain."""
    parts = [str(error), repr(error), *map(str, error.args)]
    parts += traceback.format_exception(type(error), error, error.__traceback__)
    return "\n".join(parts)


# -- submit -----------------------------------------------------------------------------------


async def test_submit_url_input_returns_the_servers_uuid_request_id(api: IndependentAPI) -> None:
    """A URL input is sent by reference and the UUID request_id comes back as given."""
    async with client_for(api) as client:
        request_id = await client.submit_extension(
            video=URL_VIDEO, prompt="the kite climbs", duration=4
        )
    assert uuid.UUID(request_id)
    assert api.accepted == 1
    sent = api.submissions[0]
    assert sent.request_id == request_id
    assert (sent.video_kind, sent.video_reference) == ("reference", URL_VIDEO)
    assert (sent.model, sent.prompt, sent.duration) == ("grok-imagine-video", "the kite climbs", 4)


async def test_local_mp4_goes_as_a_base64_data_url_with_an_exact_length(
    api: IndependentAPI, tmp_path: Path
) -> None:
    """The server decodes the streamed data URL to the file's exact bytes, within Content-Length."""
    clip = write_clip(tmp_path)
    async with client_for(api) as client:
        request_id = await client.submit_extension(video=str(clip), prompt="snow starts to fall")
        # Same connection next: a body longer than its Content-Length would garble this request.
        job = await client.get_video(request_id)
    sent = api.submissions[0]
    assert sent.video_kind == "data_url"
    assert sent.video_sha256 == sha256(clip)
    assert sent.video_size == clip.stat().st_size
    assert sent.content_length > 4 * sent.video_size // 3  # the content went inline
    assert job.request_id == request_id and job.status in ("pending", "done")


@pytest.mark.slow
async def test_a_large_input_is_streamed_and_arrives_intact(
    api: IndependentAPI, tmp_path: Path
) -> None:
    """A 48 MiB input (sparse padding after the media) arrives byte-exact."""
    clip = write_clip(tmp_path, shade=90)
    content = clip.stat().st_size
    padding = 48 * 1024 * 1024 - content
    with clip.open("r+b") as f:
        f.seek(content)
        f.write(struct.pack(">I4s", padding, b"free"))
        f.truncate(content + padding)
    async with client_for(api, timeout=30.0) as client:
        await client.submit_extension(video=str(clip), prompt="the tide comes in")
    assert api.submissions[0].video_size == 48 * 1024 * 1024
    assert api.submissions[0].video_sha256 == sha256(clip)


# -- wait and download ------------------------------------------------------------------------


async def test_done_job_downloads_chunked_without_the_key(
    api: IndependentAPI, tmp_path: Path
) -> None:
    """done → the signed chunked CDN URL is fetched keyless and the sha256 matches."""
    async with client_for(api) as client:
        request_id = await client.submit_extension(video=URL_VIDEO, prompt="a door opens")
        job = await client.wait_for_video(request_id, timeout=10)
        assert job.outcome == "succeeded"
        assert job.video is not None and job.video.url.startswith(f"{api.origin}/cdn/")
        assert job.video.duration == 9.0
        assert job.cost_usd == pytest.approx(0.3)
        result = await client.download(job.raise_for_status().video.url, tmp_path / "out.mp4")
    assert (api.downloads, api.cdn_refused) == (1, 0)
    assert result.sha256 == api.result_sha256
    assert result.size == len(api.result)
    assert (tmp_path / "out.mp4").read_bytes() == api.result


def test_the_cdn_really_is_chunked_and_refuses_a_key(api: IndependentAPI) -> None:
    """The server side of the download test: no Content-Length, and 400 when a key is sent."""
    with httpx.Client(base_url=api.base_url) as http:
        auth = {"Authorization": f"Bearer {api.api_key}"}
        body = {"model": "grok-imagine-video", "prompt": "p", "video": URL_VIDEO}
        request_id = http.post("videos/extensions", json=body, headers=auth).json()["request_id"]
        time.sleep(api.latency)
        url = http.get(f"videos/{request_id}", headers=auth).json()["video"]["url"]
        plain = http.get(url)
        keyed = http.get(url, headers=auth)
        forged = http.get(url.replace("sig=", "sig=0"))
    assert plain.status_code == 200 and plain.content == api.result
    assert plain.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in plain.headers
    assert keyed.status_code == 400 and forged.status_code == 403
    assert api.cdn_refused == 1


@pytest.mark.parametrize(
    ("prompt", "outcome", "code", "retryable"),
    [
        ("MODERATE the crowd cheers", "moderated", "moderated", False),
        ("FAIL:service_unavailable rain", "failed", "service_unavailable", True),
        ("FAIL:invalid_argument rain", "failed", "invalid_argument", False),
        ("EXPIRE the lights dim", "expired", "expired", False),
    ],
    ids=["moderated", "failed-retryable", "failed-final", "expired"],
)
async def test_unfinished_jobs_are_returned_as_data(
    api: IndependentAPI, prompt: str, outcome: str, code: str, retryable: bool
) -> None:
    """Moderated, failed and expired jobs come back from the wait; raising is the caller's call."""
    async with client_for(api) as client:
        request_id = await client.submit_extension(video=URL_VIDEO, prompt=prompt)
        job = await client.wait_for_video(request_id, timeout=10)
    assert job.outcome == outcome and job.request_id == request_id
    if outcome == "moderated":
        assert job.video is not None and job.video.url == ""
    if outcome == "failed":
        assert job.error is not None and job.error.code == code
    with pytest.raises(JobFailedError) as caught:
        job.raise_for_status()
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert api.downloads == 0


async def test_progress_may_be_a_float_or_absent_and_usage_may_be_missing() -> None:
    """Pending answers with float progress, without progress, and done without usage all parse."""
    seen: dict[str, list[VideoJob]] = {"PROGRESS": [], "NOPROGRESS NOUSAGE": []}
    # Jobs long enough that a poll sees them pending even on a loaded machine.
    with IndependentAPI(latency=1.0) as api:
        async with client_for(api) as client:
            for prompt, updates in seen.items():
                request_id = await client.submit_extension(video=URL_VIDEO, prompt=prompt)
                job = await client.wait_for_video(request_id, timeout=10, on_update=updates.append)
                assert job.outcome == "succeeded"
    with_progress, without = seen["PROGRESS"], seen["NOPROGRESS NOUSAGE"]
    pending = [j.progress for j in with_progress if j.status == "pending"]
    assert pending and all(isinstance(p, float) and 0 < p < 100 for p in pending)
    assert any(j.status == "pending" for j in without)
    assert all(j.progress is None for j in without)
    assert with_progress[-1].cost_usd == pytest.approx(0.3)
    assert without[-1].usage is None and without[-1].cost_usd is None


async def test_an_unknown_status_is_ridden_through_as_pending(
    api: IndependentAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A first poll saying "queued" is logged and polled past, not a crash or an end."""
    caplog.set_level(logging.WARNING, logger="prefect_grok_video")
    statuses: list[str] = []
    async with client_for(api) as client:
        request_id = await client.submit_extension(video=URL_VIDEO, prompt="QUEUED a bird lands")
        job = await client.wait_for_video(
            request_id, timeout=10, on_update=lambda j: statuses.append(j.status)
        )
    assert statuses[0] == "queued" and statuses[-1] == "done"
    assert job.outcome == "succeeded"
    assert any("queued" in r.getMessage() for r in caplog.records)


# -- rate limiting ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["seconds", "date"])
async def test_a_submit_429_waits_for_retry_after(style: str) -> None:
    """A 429 with `Retry-After` (seconds or HTTP date) is waited out, then the submit succeeds."""
    with IndependentAPI(rate_capacity=1, rate_per_second=1.0, retry_after=style) as api:
        async with client_for(api) as client:
            await client.submit_extension(video=URL_VIDEO, prompt="first")
            start = time.monotonic()
            await client.submit_extension(video=URL_VIDEO, prompt="second")
            elapsed = time.monotonic() - start
    assert (api.accepted, api.rate_limited) == (2, 1)
    header = api.retry_after_sent[0]
    assert header.endswith(" GMT") if style == "date" else header.isdigit()
    assert 0.9 <= elapsed < 3.0


async def test_concurrent_submits_share_the_limit_with_mixed_retry_after() -> None:
    """Three submits at once against one token: each waits its turn, both header styles seen."""
    with IndependentAPI(rate_capacity=1, rate_per_second=2.0, retry_after="alternate") as api:
        async with client_for(api) as client:
            ids = await asyncio.gather(
                *(client.submit_extension(video=URL_VIDEO, prompt=f"n{i}") for i in range(3))
            )
    assert len(set(ids)) == 3 and api.accepted == 3
    assert any(h.endswith(" GMT") for h in api.retry_after_sent)
    assert any(h.isdigit() for h in api.retry_after_sent)


async def test_a_poll_429_with_an_http_date_is_waited_out() -> None:
    """A poll refused with an HTTP-date `Retry-After` is retried after it, and the wait ends."""
    with IndependentAPI(latency=0.1, retry_after="date") as api:
        async with client_for(api) as client:
            request_id = await client.submit_extension(video=URL_VIDEO, prompt="POLL429 waves")
            start = time.monotonic()
            job = await client.wait_for_video(request_id, timeout=10)
            elapsed = time.monotonic() - start
    assert job.outcome == "succeeded"
    assert api.rate_limited == 1 and api.retry_after_sent[0].endswith(" GMT")
    assert elapsed >= 0.9


async def test_rate_limit_that_outlasts_the_retries_raises_rate_limit_error() -> None:
    """When every attempt is refused, the 429 surfaces as `RateLimitError` with its delay."""
    with IndependentAPI(rate_capacity=1, rate_per_second=0.01, retry_after="seconds") as api:
        async with client_for(api, retry=RetryPolicy(max_attempts=1)) as client:
            await client.submit_extension(video=URL_VIDEO, prompt="first")
            with pytest.raises(RateLimitError) as caught:
                await client.submit_extension(video=URL_VIDEO, prompt="second")
    assert caught.value.retry_after is not None and caught.value.retry_after >= 99
    assert api.accepted == 1


# -- synchronous errors -----------------------------------------------------------------------


async def test_a_wrong_key_is_an_authentication_error_and_is_never_echoed(
    api: IndependentAPI,
) -> None:
    """401 (whose body echoes the key) → `AuthenticationError` without the key, and no retry."""
    async with client_for(api) as good:
        request_id = await good.submit_extension(video=URL_VIDEO, prompt="a boat sails")
    async with client_for(api, key=WRONG_KEY) as client:
        with pytest.raises(AuthenticationError) as on_submit:
            await client.submit_extension(video=URL_VIDEO, prompt="a boat sails")
        with pytest.raises(AuthenticationError) as on_poll:
            await client.get_video(request_id)
    assert api.unauthorized == 2 and api.accepted == 1
    assert all(WRONG_KEY in body["error"]["message"] for body in api.error_bodies)
    for caught in (on_submit, on_poll):
        assert caught.value.status_code == 401
        assert WRONG_KEY not in error_text(caught.value)


async def test_an_unknown_model_is_an_unknown_model_error(api: IndependentAPI) -> None:
    """400 naming the model → `UnknownModelError`, sent once, no job."""
    async with client_for(api) as client:
        with pytest.raises(UnknownModelError) as caught:
            await client.submit_extension(
                video=URL_VIDEO, prompt="a cat yawns", model="grok-imagine-video-xl"
            )
    assert "grok-imagine-video-xl" in str(caught.value)
    assert caught.value.status_code == 400
    assert (api.submit_attempts, api.accepted) == (1, 0)


async def test_the_api_key_never_appears_in_errors_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every error path (auth, model, 404, 429, CDN, connection) keeps the key out of its text."""
    caplog.set_level(logging.DEBUG)
    errors: list[GrokVideoError] = []
    with IndependentAPI(
        latency=0.05, rate_capacity=2, rate_per_second=0.01, retry_after="date"
    ) as api:
        key = api.api_key
        async with client_for(api, retry=RetryPolicy(max_attempts=1)) as client:
            request_id = await client.submit_extension(video=URL_VIDEO, prompt="bees hum")
            job = await client.wait_for_video(request_id, timeout=10)
            assert job.video is not None
            attempts = [
                client.submit_extension(video=URL_VIDEO, prompt="m", model=f"model-{key}"),
                client.submit_extension(video=URL_VIDEO, prompt="throttled"),
                client.get_video(str(uuid.uuid4())),
                client.download(job.video.url.replace("sig=", "sig=0"), tmp_path / "x.mp4"),
            ]
            for attempt in attempts:
                with pytest.raises(GrokVideoError) as caught:
                    await attempt
                errors.append(caught.value)
        async with client_for(api, key=key[:-1]) as wrong:
            with pytest.raises(GrokVideoError) as caught:
                await wrong.get_video(request_id)
            errors.append(caught.value)
        base_url = api.base_url
    async with AsyncGrokVideoClient(key, base_url=base_url, retry=FAST_RETRY) as gone:
        with pytest.raises(APIConnectionError) as caught:
            await gone.get_video(request_id)
        errors.append(caught.value)
    kinds = [type(e) for e in errors]
    expected = [UnknownModelError, RateLimitError, NotFoundError, DownloadError]
    assert kinds[:4] == expected
    assert kinds[4:] == [AuthenticationError, APIConnectionError]
    for error in errors:
        assert key not in error_text(error)
        assert key[:-1] not in error_text(error)
    assert key not in caplog.text and key[:-1] not in caplog.text


# -- the sync facade --------------------------------------------------------------------------


def test_sync_client_end_to_end(api: IndependentAPI, tmp_path: Path) -> None:
    """`GrokVideoClient`: local file in, wait, download, same bytes as served."""
    clip = write_clip(tmp_path, shade=170)
    with GrokVideoClient(
        api.api_key, base_url=api.base_url, poll=FAST_POLL, retry=FAST_RETRY
    ) as client:
        request_id = client.submit_extension(video=str(clip), prompt="QUEUED night falls")
        job = client.wait_for_video(request_id, timeout=10)
        result = client.download(job.raise_for_status().video.url, tmp_path / "out" / "r.mp4")
    assert api.submissions[0].video_sha256 == sha256(clip)
    assert api.jobs[request_id].statuses[0] == "queued"
    assert result.sha256 == api.result_sha256 == sha256(tmp_path / "out" / "r.mp4")
    assert (api.accepted, api.downloads, api.cdn_refused) == (1, 1, 0)
