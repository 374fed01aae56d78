"""Exact edge answers the emulator can't easily give, through respx: every error class,
Retry-After, malformed bodies, unknown fields and statuses, timeouts, and the key never shown."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import respx

from prefect_grok_video import AsyncGrokVideoClient, GrokVideoClient, PollPolicy, RetryPolicy
from prefect_grok_video.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    GrokVideoError,
    InputError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    PollTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServiceError,
    SubmitOutcomeUnknownError,
    UnknownModelError,
)

BASE = "https://api.test/grok/v1"
KEY = "sk-canary-7f3e9a1b2c"
#: Mock transports answer at once: instant retries and polls (not `FAST_RETRY`/`FAST_POLL`,
#: which fit the emulator's 0.2 s jobs); the tests count `INSTANT_RETRY.max_attempts` calls.
INSTANT_RETRY = RetryPolicy(max_attempts=3, backoff_initial=0.001, backoff_max=0.01, jitter=0)
INSTANT_POLL = PollPolicy(first_poll=0, min_interval=0.001, max_interval=0.01)
URL_VIDEO = "https://cdn.test/in.mp4"


@pytest.fixture
async def client():
    async with AsyncGrokVideoClient(
        KEY, base_url=BASE, retry=INSTANT_RETRY, poll=INSTANT_POLL
    ) as client:
        yield client


@pytest.fixture
def api():
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def submit(client, **overrides):
    return client.submit_extension(
        **{"video": URL_VIDEO, "prompt": "the camera pans up", **overrides}
    )


def _assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error), error.args[0] if error.args else ""):
        assert KEY not in text


async def test_submit_sends_the_contract_and_returns_the_request_id(client, api):
    route = api.post("/videos/extensions").respond(200, json={"request_id": "req_1"})
    assert await submit(client, duration=8, model="grok-x") == "req_1"
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert int(request.headers["Content-Length"]) == len(request.content)
    assert "transfer-encoding" not in request.headers
    assert json.loads(request.content) == {
        "model": "grok-x",
        "prompt": "the camera pans up",
        "duration": 8,
        "video": URL_VIDEO,
    }


async def test_file_id_is_sent_without_its_prefix(client, api):
    route = api.post("/videos/extensions").respond(200, json={"request_id": "req_1"})
    await submit(client, video="file_id:file-abc123")
    assert json.loads(route.calls.last.request.content)["video"] == "file-abc123"


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (401, {"code": "unauthenticated", "error": f"Incorrect API key provided: {KEY}"},
         AuthenticationError),
        (403, {"code": "permission_denied", "error": "no video access"}, AuthenticationError),
        (404, {"code": "model_not_found", "error": "The model grok-x does not exist"},
         UnknownModelError),
        (400, {"code": "invalid_argument", "error": "Model grok-x not found"}, UnknownModelError),
        (400, {"error": {"code": "bad", "message": "prompt missing"}}, InvalidRequestError),
        (413, "too large", InvalidRequestError),
        (422, {"detail": "duration must be int"}, InvalidRequestError),
    ],
)  # fmt: skip
async def test_sync_refusals_are_typed_final_and_sent_once(client, api, status, body, error_type):
    content = {"json": body} if isinstance(body, dict) else {"text": body}
    route = api.post("/videos/extensions").respond(status, **content)
    with pytest.raises(error_type) as caught:
        await submit(client, model="grok-x")
    assert route.call_count == 1
    assert caught.value.status_code == status
    assert not caught.value.retryable
    _assert_no_secret(caught.value)


async def test_429_waits_retry_after_then_succeeds(client, api):
    route = api.post("/videos/extensions").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.05"}, json={"error": "slow down"}),
            httpx.Response(200, json={"request_id": "req_2"}),
        ]
    )
    assert await submit(client) == "req_2"
    assert route.call_count == 2


async def test_429_retry_after_is_honoured_as_a_minimum_wait(api):
    api.post("/videos/extensions").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.3"}),
            httpx.Response(200, json={"request_id": "req_2"}),
        ]
    )
    async with AsyncGrokVideoClient(KEY, base_url=BASE, retry=INSTANT_RETRY) as client:
        loop = __import__("asyncio").get_running_loop()
        start = loop.time()
        await submit(client)
        assert loop.time() - start >= 0.3


async def test_rate_limit_error_carries_retry_after_when_attempts_run_out(client, api):
    route = api.post("/videos/extensions").respond(429, headers={"Retry-After": "0.01"})
    with pytest.raises(RateLimitError) as caught:
        await submit(client)
    assert route.call_count == INSTANT_RETRY.max_attempts
    assert caught.value.retry_after == pytest.approx(0.01)
    assert caught.value.retryable


async def test_http_date_retry_after_is_understood(client, api):
    api.post("/videos/extensions").respond(
        429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    with pytest.raises(RateLimitError) as caught:
        await submit(client)
    assert caught.value.retry_after == 0.0  # a date in the past: retry now


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_on_submit_is_retried(client, api, status):
    route = api.post("/videos/extensions").mock(
        side_effect=[httpx.Response(status), httpx.Response(200, json={"request_id": "req_3"})]
    )
    assert await submit(client) == "req_3"
    assert route.call_count == 2


async def test_5xx_on_submit_gives_up_as_a_retryable_service_error(client, api):
    route = api.post("/videos/extensions").respond(503, json={"error": "overloaded"})
    with pytest.raises(ServiceError) as caught:
        await submit(client)
    assert route.call_count == INSTANT_RETRY.max_attempts
    assert caught.value.retryable


async def test_504_on_submit_is_an_unknown_outcome_never_retried(client, api):
    route = api.post("/videos/extensions").respond(504)
    with pytest.raises(SubmitOutcomeUnknownError) as caught:
        await submit(client)
    assert route.call_count == 1
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("peer closed"),
     httpx.ReadError("reset")],
)  # fmt: skip
async def test_no_answer_to_a_sent_submit_is_unknown_and_sent_once(client, api, exc):
    route = api.post("/videos/extensions").mock(side_effect=exc)
    with pytest.raises(SubmitOutcomeUnknownError) as caught:
        await submit(client)
    assert route.call_count == 1
    assert not caught.value.retryable
    assert "billed" in str(caught.value)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.WriteError("x")]
)
async def test_request_not_sent_is_retried(client, api, exc):
    route = api.post("/videos/extensions").mock(
        side_effect=[exc, httpx.Response(200, json={"request_id": "req_4"})]
    )
    assert await submit(client) == "req_4"
    assert route.call_count == 2


async def test_unreachable_service_is_a_retryable_connection_error(client, api):
    api.post("/videos/extensions").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as caught:
        await submit(client)
    assert caught.value.retryable


@pytest.mark.parametrize("body", [b"<html>ok</html>", b'{"id": "x"}', b'{"request_id": ""}'])
async def test_2xx_without_request_id_is_an_unknown_outcome(client, api, body):
    route = api.post("/videos/extensions").respond(200, content=body)
    with pytest.raises(SubmitOutcomeUnknownError):
        await submit(client)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt", ""), ("prompt", "   "), ("prompt", "x" * 5000), ("duration", 1),
     ("duration", 11), ("duration", 6.5), ("duration", "six"), ("video", "no/such/file.mp4"),
     ("video", "ftp://host/clip.mp4"), ("video", "file_id:")],
)  # fmt: skip
async def test_bad_input_is_refused_before_any_request(client, api, field, value):
    route = api.post("/videos/extensions").respond(200, json={"request_id": "req_x"})
    with pytest.raises(InputError) as caught:
        await submit(client, **{field: value})
    assert caught.value.field == field
    assert route.call_count == 0


async def test_poll_tolerates_unknown_fields(client, api):
    api.get("/videos/req_1").respond(
        200,
        json={
            "status": "done",
            "model": "grok-imagine-video",
            "video": {"url": "https://v.test/1.mp4", "duration": 10, "respect_moderation": True,
                      "fps": 24},
            "usage": {"cost_in_usd_ticks": 2_500_000_000, "tokens": 3},
            "brand_new_field": {"nested": [1, 2]},
        },
    )  # fmt: skip
    job = await client.get_video("req_1")
    assert job.request_id == "req_1"
    assert job.outcome == "succeeded"
    assert job.video.duration == 10
    assert job.cost_usd == pytest.approx(0.25)


async def test_poll_retries_malformed_json_then_succeeds(client, api):
    route = api.get("/videos/req_1").mock(
        side_effect=[
            httpx.Response(200, content=b"{not json"),
            httpx.Response(200, json=[1, 2]),
            httpx.Response(200, json={"status": "pending"}),
        ]
    )
    assert (await client.get_video("req_1")).status == "pending"
    assert route.call_count == 3


async def test_poll_of_an_unknown_request_is_not_found(client, api):
    api.get("/videos/req_gone").respond(404, json={"error": "no such request"})
    with pytest.raises(NotFoundError) as caught:
        await client.get_video("req_gone")
    assert caught.value.request_id == "req_gone"


async def test_poll_that_keeps_failing_to_parse_says_so(client, api):
    api.get("/videos/req_1").respond(200, content=b"garbage")
    with pytest.raises(ResponseFormatError) as caught:
        await client.get_video("req_1")
    assert caught.value.request_id == "req_1"


async def test_unknown_status_is_returned_and_waited_through(client, api, caplog):
    api.get("/videos/req_1").mock(
        side_effect=[
            httpx.Response(200, json={"status": "queued"}),
            httpx.Response(200, json={"status": "pending", "progress": 50}),
            httpx.Response(200, json={"status": "done", "video": {"url": "https://v.test/1"}}),
        ]
    )
    assert (await client.get_video("req_1")).status == "queued"
    caplog.set_level(logging.WARNING, logger="prefect_grok_video")
    api.get("/videos/req_2").mock(
        side_effect=[
            httpx.Response(200, json={"status": "queued"}),
            httpx.Response(200, json={"status": "done", "video": {"url": "https://v.test/2"}}),
        ]
    )
    assert (await client.wait_for_video("req_2")).outcome == "succeeded"
    assert "unknown status 'queued'" in caplog.text


async def test_wait_rides_out_transient_poll_errors(client, api):
    route = api.get("/videos/req_1").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(503),
            httpx.Response(503),  # the first get_video gives up here: the wait goes on
            httpx.ReadTimeout("slow"),
            httpx.Response(429, headers={"Retry-After": "0.01"}),
            httpx.Response(200, json={"status": "pending"}),
            httpx.Response(200, json={"status": "done", "video": {"url": "https://v.test/1"}}),
        ]
    )
    job = await client.wait_for_video("req_1", timeout=10)
    assert job.outcome == "succeeded"
    assert route.call_count == 7


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"status": "failed", "error": {"code": "internal_error", "message": "boom"}}, "failed"),
        ({"status": "expired"}, "expired"),
        ({"status": "done", "video": {"url": "", "respect_moderation": False}}, "moderated"),
    ],
)
async def test_unsuccessful_jobs_are_returned_as_data(client, api, body, outcome):
    api.get("/videos/req_1").respond(200, json=body)
    job = await client.wait_for_video("req_1")
    assert job.outcome == outcome
    with pytest.raises(JobFailedError) as caught:
        job.raise_for_status()
    assert caught.value.request_id == "req_1"
    assert caught.value.retryable is (outcome == "failed")  # internal_error is retryable


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("service_unavailable", True), ("internal_error", True), ("invalid_argument", False),
     ("permission_denied", False), ("failed_precondition", False)],
)  # fmt: skip
async def test_job_failure_is_retryable_exactly_for_two_codes(client, api, code, retryable):
    api.get("/videos/req_1").respond(
        200, json={"status": "failed", "error": {"code": code, "message": "m"}}
    )
    with pytest.raises(JobFailedError) as caught:
        (await client.get_video("req_1")).raise_for_status()
    assert caught.value.code == code
    assert caught.value.retryable is retryable


async def test_wait_times_out_naming_the_request(client, api):
    api.get("/videos/req_slow").respond(200, json={"status": "pending", "progress": 10})
    with pytest.raises(PollTimeoutError) as caught:
        await client.wait_for_video("req_slow", timeout=0.2)
    assert caught.value.request_id == "req_slow"
    assert "req_slow" in str(caught.value)
    assert caught.value.last_status == "pending"
    assert caught.value.elapsed >= 0.2


async def test_wait_stops_on_a_final_poll_error(client, api):
    api.get("/videos/req_1").respond(401, json={"error": "bad key"})
    with pytest.raises(AuthenticationError):
        await client.wait_for_video("req_1", timeout=5)


async def test_wait_reports_every_poll(client, api):
    api.get("/videos/req_1").mock(
        side_effect=[
            httpx.Response(200, json={"status": "pending", "progress": 10}),
            httpx.Response(200, json={"status": "done", "video": {"url": "https://v.test/1"}}),
        ]
    )
    seen = []

    async def on_update(job):
        seen.append(job.status)

    await client.wait_for_video("req_1", on_update=on_update)
    assert seen == ["pending", "done"]


# -- downloads --------------------------------------------------------------------------------


async def test_download_never_sends_the_key_to_the_result_host(client, api, tmp_path):
    route = api.get("https://videos.test/r.mp4").respond(200, content=b"v" * 1000)
    result = await client.download("https://videos.test/r.mp4", tmp_path / "r.mp4")
    assert "authorization" not in route.calls.last.request.headers
    assert result.size == 1000
    assert (tmp_path / "r.mp4").read_bytes() == b"v" * 1000


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y.mp4", "/local/path.mp4"])
async def test_download_refuses_non_http_urls(client, tmp_path, url):
    with pytest.raises(DownloadError) as caught:
        await client.download(url, tmp_path / "x.mp4")
    assert not caught.value.retryable
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("declare_length", [True, False])
async def test_download_caps_the_size_and_leaves_nothing(client, api, tmp_path, declare_length):
    async def stream():
        yield b"x" * 600
        yield b"x" * 600

    headers = {"Content-Length": "1200"} if declare_length else {}
    api.get("https://videos.test/big.mp4").mock(
        return_value=httpx.Response(200, headers=headers, content=stream())
    )
    with pytest.raises(DownloadError) as caught:
        await client.download("https://videos.test/big.mp4", tmp_path / "b.mp4", max_bytes=1000)
    assert not caught.value.retryable
    assert list(tmp_path.iterdir()) == []


async def test_download_cut_short_is_retried_and_never_left_partial(client, api, tmp_path):
    route = api.get("https://videos.test/r.mp4").mock(
        side_effect=[
            httpx.Response(200, headers={"Content-Length": "2000"}, content=b"x" * 1000),
            httpx.Response(200, content=b"y" * 2000),
        ]
    )
    result = await client.download("https://videos.test/r.mp4", tmp_path / "r.mp4")
    assert route.call_count == 2
    assert result.size == 2000
    assert [p.name for p in tmp_path.iterdir()] == ["r.mp4"]


async def test_expired_result_url_is_a_final_download_error(client, api, tmp_path):
    route = api.get("https://videos.test/old.mp4").respond(403)
    with pytest.raises(DownloadError) as caught:
        await client.download("https://videos.test/old.mp4", tmp_path / "o.mp4")
    assert route.call_count == 1
    assert "expired" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# -- configuration and secrets --------------------------------------------------------------


def test_client_without_a_key_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv("GROK_VIDEO_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="GROK_VIDEO_API_KEY"):
        AsyncGrokVideoClient.from_settings()


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "platform.dataeyes.ai/grok/v1"])
def test_bad_base_url_is_refused(url):
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncGrokVideoClient(KEY, base_url=url)


def test_from_settings_reads_the_environment(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_API_KEY", KEY)
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("GROK_VIDEO_MODEL", "grok-y")
    client = AsyncGrokVideoClient.from_settings()
    assert client.base_url == "http://127.0.0.1:9/v1"
    assert client.model == "grok-y"
    assert KEY not in repr(client)


async def test_no_error_or_log_line_ever_shows_the_key(api, caplog):
    """Drive every failure path with a service that echoes the key back; scan all text."""
    caplog.set_level(logging.DEBUG)
    echo = {"error": f"bad key {KEY}", "code": KEY}
    api.post("/videos/extensions").mock(
        side_effect=[
            httpx.Response(429, json=echo),
            httpx.Response(500, json=echo),
            httpx.ConnectError(f"refused {KEY}"),
            httpx.Response(401, json=echo),
        ]
    )
    api.get("/videos/req_1").mock(
        side_effect=[httpx.Response(503, json=echo)] * 3 + [httpx.Response(404, json=echo)]
    )
    errors: list[GrokVideoError] = []
    retry = RetryPolicy(max_attempts=5, backoff_initial=0.001, jitter=0)
    async with AsyncGrokVideoClient(KEY, base_url=BASE, retry=retry, poll=INSTANT_POLL) as client:
        for call in (submit(client), client.wait_for_video("req_1")):
            with pytest.raises(GrokVideoError) as caught:
                await call
            errors.append(caught.value)
        assert KEY not in repr(client)
    assert [type(e) for e in errors] == [AuthenticationError, NotFoundError]
    for error in errors:
        _assert_no_secret(error)
        assert KEY not in str(error.code)
    assert caplog.records, "the retries should have been logged"
    assert KEY not in caplog.text


def test_sync_client_has_the_same_methods_and_works(api, tmp_path):
    api.post("/videos/extensions").respond(200, json={"request_id": "req_9"})
    api.get("/videos/req_9").respond(
        200, json={"status": "done", "video": {"url": "https://videos.test/9.mp4"}}
    )
    api.get("https://videos.test/9.mp4").respond(200, content=b"m" * 10)
    with GrokVideoClient(KEY, base_url=BASE, poll=INSTANT_POLL) as client:
        assert KEY not in repr(client)
        request_id = client.submit_extension(video=URL_VIDEO, prompt="go")
        job = client.wait_for_video(request_id, timeout=5)
        result = client.download(job.video.url, tmp_path / "9.mp4")
    assert result.size == 10
    public = {n for n in dir(AsyncGrokVideoClient) if not n.startswith("_")}
    assert {"submit_extension", "get_video", "wait_for_video", "download"} <= public
    assert {"submit_extension", "get_video", "wait_for_video", "download"} <= set(
        dir(GrokVideoClient)
    )


async def test_sync_client_works_inside_a_running_event_loop(api):
    api.get("/videos/req_9").respond(200, json={"status": "pending"})
    with GrokVideoClient(KEY, base_url=BASE) as client:
        assert client.get_video("req_9").status == "pending"


async def test_leftovers_of_a_killed_download_are_removed_by_the_next(client, api, tmp_path):
    import os
    import socket

    host = socket.gethostname().replace("-", "_")
    dead = subprocess_pid_that_exited()
    stale = tmp_path / f".r.mp4.{host}-{dead}-0123abcd.part"
    alive = tmp_path / f".r.mp4.{host}-{os.getpid()}-4567abcd.part"  # a download in progress
    other_host = tmp_path / ".r.mp4.elsewhere-1-89abcdef.part"  # recent, on a shared folder
    for part in (stale, alive, other_host):
        part.write_bytes(b"partial")
    api.get("https://videos.test/r.mp4").respond(200, content=b"v" * 10)
    await client.download("https://videos.test/r.mp4", tmp_path / "r.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["r.mp4", alive.name, other_host.name]
    )


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


async def test_a_malformed_poll_echoing_the_key_shows_none_of_it(client, api):
    """Pydantic's messages quote the bad value; a poll error names fields and rules only."""
    api.get("/videos/req_1").respond(200, json={"status": ["x" + KEY], "video": KEY})
    with pytest.raises(ResponseFormatError) as caught:
        await client.get_video("req_1")
    text = f"{caught.value} {caught.value!r}"
    assert "status" in text
    assert not any(KEY[i : i + 6] in text for i in range(len(KEY) - 5))
    assert caught.value.__context__ is None or KEY not in str(caught.value.__context__)


async def test_transport_errors_carry_no_unredacted_context(client, api):
    api.post("/videos/extensions").mock(side_effect=httpx.ReadError(f"reset by {KEY}"))
    with pytest.raises(SubmitOutcomeUnknownError) as caught:
        await submit(client)
    assert caught.value.__context__ is None
    assert KEY not in str(caught.value)
