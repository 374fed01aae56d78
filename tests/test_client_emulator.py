"""The client against the emulator over real loopback HTTP: the whole submit → wait → download
path, outcomes, rate limits and faults, counted on the emulator's side."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import pytest
from docs_pages import python_blocks
from fixtures_emulator import FAST_POLL, FAST_RETRY
from fixtures_media import data_url, sha256_key

from prefect_grok_video import AsyncGrokVideoClient, GrokVideoClient, PollPolicy, RetryPolicy
from prefect_grok_video.errors import (
    AuthenticationError,
    InputError,
    JobFailedError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    UnknownModelError,
)
from prefect_grok_video.mp4 import preflight


def _client(emulator, **options) -> AsyncGrokVideoClient:
    options = {"poll": FAST_POLL, "retry": FAST_RETRY, **options}
    return AsyncGrokVideoClient(emulator.api_key, base_url=emulator.base_url, **options)


async def test_submit_wait_download_a_local_file(emulator, h264_clip, tmp_path):
    async with _client(emulator) as client:
        request_id = await client.submit_extension(
            video=str(h264_clip), prompt="the camera pans up", duration=4
        )
        job = await client.wait_for_video(request_id, timeout=10)
        assert job.outcome == "succeeded"
        result = await client.download(job.video.url, tmp_path / "out" / "a.mp4")

    # the emulator received exactly the file's bytes, once
    assert emulator.state.accepted_by_input == {sha256_key(h264_clip): 1}
    # the result is a real, playable MP4 of input + requested seconds
    with open(result.path, "rb") as f:
        info = preflight(f)
    assert info.duration == pytest.approx(3.0 + 4, abs=0.1) == job.video.duration
    with av.open(result.path) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
    assert result.sha256 == hashlib.sha256(Path(result.path).read_bytes()).hexdigest()
    assert job.cost_usd == pytest.approx(7 * 0.05)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.mp4"]


def test_sync_client_with_a_data_url_and_a_url(emulator, h265_clip, tmp_path):
    with GrokVideoClient(
        emulator.api_key, base_url=emulator.base_url, poll=FAST_POLL, retry=FAST_RETRY
    ) as client:
        first = client.submit_extension(video=data_url(h265_clip), prompt="waves roll in")
        second = client.submit_extension(video="https://cdn.test/in.mp4", prompt="and out")
        for request_id in (first, second):
            job = client.wait_for_video(request_id, timeout=10)
            client.download(job.raise_for_status().video.url, tmp_path / f"{request_id}.mp4")
    assert emulator.state.accepted_by_input == {
        sha256_key(h265_clip): 1,
        "https://cdn.test/in.mp4": 1,
    }
    assert len(list(tmp_path.glob("*.mp4"))) == 2


@pytest.mark.parametrize(
    ("prompt", "outcome", "code"),
    [
        ("goes wrong #moderated", "moderated", "moderated"),
        ("goes wrong #fail=internal_error", "failed", "internal_error"),
        ("goes wrong #fail=invalid_argument", "failed", "invalid_argument"),
        ("goes wrong #expired", "expired", "expired"),
    ],
)
async def test_unsuccessful_outcomes_come_back_as_data(emulator, prompt, outcome, code):
    async with _client(emulator) as client:
        request_id = await client.submit_extension(video="https://cdn.test/a.mp4", prompt=prompt)
        job = await client.wait_for_video(request_id, timeout=10)
    assert job.outcome == outcome
    with pytest.raises(JobFailedError) as caught:
        job.raise_for_status()
    assert caught.value.code == code


async def test_the_service_validates_what_the_client_was_told_not_to(emulator, short_clip):
    async with _client(emulator) as client:
        request_id = await client.submit_extension(
            video=str(short_clip), prompt="go", preflight=False
        )
        job = await client.wait_for_video(request_id, timeout=10)
    assert job.outcome == "failed"
    assert job.error.code == "invalid_argument"


async def test_bad_input_costs_nothing(emulator, short_clip):
    async with _client(emulator) as client:
        for kwargs in (
            {"video": str(short_clip), "prompt": "go"},
            {"video": "https://cdn.test/a.mp4", "prompt": " "},
            {"video": "https://cdn.test/a.mp4", "prompt": "go", "duration": 11},
        ):
            with pytest.raises(InputError) as caught:
                await client.submit_extension(**kwargs)
            assert caught.value.field in kwargs
    assert emulator.state.accepted == 0


async def test_wrong_key_and_unknown_model(emulator):
    async with AsyncGrokVideoClient("sk-wrong-key-123", base_url=emulator.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.submit_extension(video="https://cdn.test/a.mp4", prompt="go")
        assert "sk-wrong-key-123" not in str(caught.value)
    async with _client(emulator) as client:
        with pytest.raises(UnknownModelError):
            await client.submit_extension(
                video="https://cdn.test/a.mp4", prompt="go", model="grok-nope"
            )
    assert emulator.state.accepted == 0


async def test_rate_limit_is_honoured_with_retry_after(emulator_factory):
    emulator = emulator_factory(submit_rate=10.0, submit_burst=1, fractional_retry_after=True)
    retry = RetryPolicy(max_attempts=50, max_elapsed=30, backoff_initial=0.01, jitter=0)
    async with _client(emulator, retry=retry) as client:
        start = time.monotonic()
        for i in range(6):
            await client.submit_extension(video=f"https://cdn.test/{i}.mp4", prompt="go")
        elapsed = time.monotonic() - start
    assert emulator.state.accepted == 6
    assert emulator.state.rate_limited > 0  # it did hit the limit and waited it out
    assert elapsed >= 0.45  # 5 refills at 10/s
    assert emulator.state.peak_accepted_per_second() <= 10 + 1


async def test_rate_limit_error_when_patience_runs_out(emulator_factory):
    emulator = emulator_factory(submit_rate=0.01, submit_burst=1)
    retry = RetryPolicy(max_attempts=2, max_retry_after=0.01, backoff_initial=0.01)
    async with _client(emulator, retry=retry) as client:
        await client.submit_extension(video="https://cdn.test/1.mp4", prompt="go")
        with pytest.raises(RateLimitError) as caught:
            await client.submit_extension(video="https://cdn.test/2.mp4", prompt="go")
    assert caught.value.retry_after >= 1  # integer seconds from the emulator
    assert emulator.state.accepted == 1


async def test_5xx_storms_are_retried_without_paying_twice(emulator_factory):
    emulator = emulator_factory(p_submit_5xx=0.4, p_poll_5xx=0.4, seed=7)
    retry = RetryPolicy(max_attempts=20, backoff_initial=0.001, backoff_max=0.01, jitter=0)
    async with _client(emulator, retry=retry) as client:
        ids = [
            await client.submit_extension(video=f"https://cdn.test/{i}.mp4", prompt="go")
            for i in range(10)
        ]
        jobs = [await client.wait_for_video(i, timeout=20) for i in ids]
    assert emulator.state.server_errors > 0
    assert [j.outcome for j in jobs] == ["succeeded"] * 10
    assert sorted(emulator.state.accepted_by_input.values()) == [1] * 10


async def test_dropped_answer_after_acceptance_is_unknown_and_not_resent(emulator_factory):
    emulator = emulator_factory(p_drop_after_accept=1.0)
    async with _client(emulator) as client:
        with pytest.raises(SubmitOutcomeUnknownError) as caught:
            await client.submit_extension(video="https://cdn.test/a.mp4", prompt="go")
    assert not caught.value.retryable
    assert emulator.state.accepted == 1  # the service did make (and bill) the job
    assert emulator.state.drops == 1


async def test_slow_answer_past_the_read_timeout_is_unknown(emulator_factory):
    emulator = emulator_factory(p_slow=1.0, slow_response_seconds=1.0)
    async with _client(emulator, timeout=0.3) as client:
        with pytest.raises(SubmitOutcomeUnknownError):
            await client.submit_extension(video="https://cdn.test/a.mp4", prompt="go")


async def test_expired_result_url_fails_the_download_cleanly(emulator_factory, tmp_path):
    emulator = emulator_factory(url_ttl=0.3)
    async with _client(emulator) as client:
        request_id = await client.submit_extension(video="https://cdn.test/a.mp4", prompt="go")
        job = await client.wait_for_video(request_id, timeout=10)
        time.sleep(0.4)
        with pytest.raises(Exception, match="expired"):
            await client.download(job.video.url, tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


def test_the_client_example_runs_against_the_emulator(emulator, tmp_path):
    """docs/guides/client.md's example, verbatim, with the environment the page shows."""
    (example,) = python_blocks("guides/client.md")
    repo = Path(__file__).parents[1]
    env = {
        **os.environ,
        "GROK_VIDEO_BASE_URL": emulator.base_url,
        "GROK_VIDEO_API_KEY": emulator.api_key,
    }
    (tmp_path / "examples").symlink_to(repo / "examples")
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "succeeded"
    assert (tmp_path / "out" / "skyline-extended.mp4").stat().st_size > 0
    assert [r.action for r in emulator.state.submissions] == ["extend", "generate", "edit"]


@pytest.mark.slow
def test_uploading_a_200mb_file_keeps_memory_flat(tmp_path, emulator_process):
    """Stream a 220 MB file to an emulator in another process; the client's peak RSS must grow
    by less than 60 MB (the body is 293 MB of base64)."""
    from fixtures_media import make_large_mp4

    video = make_large_mp4(tmp_path / "big.mp4", 220 * 1024 * 1024)
    base_url = emulator_process("--latency", "0.1", "--no-rate-limit")
    script = textwrap.dedent(f"""
        import resource
        from prefect_grok_video import GrokVideoClient
        client = GrokVideoClient("emulator-key", base_url={base_url!r})
        client.submit_extension(video="https://warm.up/a.mp4", prompt="warm up")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        client.submit_extension(video={str(video)!r}, prompt="big one")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) / 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    growth_mb = float(done.stdout.strip())
    print(f"peak RSS growth while uploading 220 MB: {growth_mb:.1f} MB")
    assert growth_mb < 60


async def test_without_progress_later_jobs_are_polled_around_their_peers_latency(
    emulator_factory,
):
    emulator = emulator_factory(latency=2.0, report_progress=False, submit_rate=None)
    policy = PollPolicy(first_poll=0.05, min_interval=0.05, max_interval=2.0)

    async def one(client: AsyncGrokVideoClient, name: str) -> int:
        request_id = await client.submit_extension(video="https://cdn.test/a.mp4", prompt=name)
        job = await client.wait_for_video(request_id, submitted_at=time.monotonic(), poll=policy)
        assert job.outcome == "succeeded"
        return emulator.state.polls[request_id]

    async with _client(emulator, poll=policy) as client:
        first = await asyncio.gather(*(one(client, f"first {i}") for i in range(3)))
        later = await one(client, "later")
    # backoff alone from 0.05 s (x1.5) needs 9 polls to reach a 2 s job; the peers' latency
    # (known to within their last poll gap) puts the first poll shortly before 2 s
    assert min(first) >= 7, first
    assert later <= 5, later


async def test_a_slow_step_before_sending_never_lets_the_next_submission_overtake(
    emulator_factory,
):
    """What goes on between the pace and the wire (the flows write a claim file there, which
    can take tens of ms on a busy disk) counts as part of the submission: the next one is
    spaced from when it is done, so a strict limit at the same rate refuses nothing."""
    from prefect_grok_video.flows.engine.gate import SubmitGate
    from prefect_grok_video.operations import JobRequest

    rate = 10.0
    emulator = emulator_factory(submit_rate=rate, submit_burst=1, submit_tolerance=0.02)
    gate = SubmitGate(rate, limit_name=None)
    retry = RetryPolicy(max_attempts=1)

    async with AsyncGrokVideoClient(
        emulator.api_key, base_url=emulator.base_url, retry=retry, pace=gate.admit
    ) as client:

        async def one(n: int) -> str:
            async def slow_claim() -> None:  # every other one is slow to write its claim
                await asyncio.sleep(0.09 if n % 2 == 0 else 0.0)

            request = JobRequest("generate", f"row {n}", client.model, duration=2)
            return await client.submit(request, before_send=slow_claim)

        ids = await asyncio.gather(*(one(n) for n in range(12)))
    assert len(set(ids)) == 12
    assert emulator.state.bucket_refused == 0
