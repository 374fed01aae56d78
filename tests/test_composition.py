"""Every public flow and task, called from a sync flow, an async flow, a sync task and a plain
script, returns its result there (never an unawaited coroutine), and called again pays for
nothing twice. Against the emulator, on the session's Prefect server."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_emulator import credentials_for
from fixtures_media import make_mp4
from prefect import flow, task

from prefect_grok_video import GrokVideoClient
from prefect_grok_video.flows import (
    Finished,
    Submission,
    download_video,
    edit_video,
    extend_video,
    finish_video,
    generate_video,
    make_videos,
    submit_edit,
    submit_extension,
    submit_generation,
    wait_for_video,
)
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.report import ItemResult, RunReport

pytestmark = pytest.mark.slow

CALLERS = ("sync flow", "async flow", "sync task", "plain script")
TARGETS = ("make_videos", "generate_video", "edit_video", "extend_video", "submit_generation",
           "submit_edit", "submit_extension", "wait_for_video", "download_video",
           "finish_video")  # fmt: skip


def _call_from(caller: str, call: Callable[[], Any]) -> Any:
    """`call()` made from inside `caller`; what the caller got back."""
    if caller == "plain script":
        return call()
    if caller == "sync flow":
        return flow(name="sync-caller")(call)()
    if caller == "sync task":
        return flow(name="sync-task-caller")(lambda: task(name="sync-task")(call)())()

    async def awaiting() -> Any:
        return await call()

    return asyncio.run(flow(name="async-caller")(awaiting)())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp4(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("caller", CALLERS)
def test_every_flow_and_task_returns_its_result_to_every_caller_and_pays_once(
    caller: str, target: str, emulator: Any, prefect_server: str, clip: Path, tmp_path: Path
) -> None:
    creds = credentials_for(emulator)
    prompt = f"{target} called from a {caller}"
    out = str(tmp_path / "out")
    made: dict[str, Any] = {}

    def a_job() -> VideoJob:
        """A finished job made outside Prefect, for the tasks that take a request_id."""
        if "job" not in made:
            with GrokVideoClient(emulator.api_key, base_url=emulator.base_url) as client:
                request_id = client.submit_generation(prompt=prompt, duration=2)
                made["job"] = client.wait_for_video(request_id)
        return made["job"]

    calls: dict[str, tuple[Callable[[], Any], type]] = {
        "make_videos": (lambda: make_videos(
            [{"id": "m", "action": "generate", "prompt": prompt, "duration": 2}],
            output=out, credentials=creds, submit_rate=50.0), RunReport),
        "generate_video": (lambda: generate_video(
            prompt, duration=2, output=out, credentials=creds, submit_rate=50.0), ItemResult),
        "edit_video": (lambda: edit_video(
            str(clip), prompt, output=out, credentials=creds, submit_rate=50.0), ItemResult),
        "extend_video": (lambda: extend_video(
            clip, prompt, duration=2, output=out, credentials=creds, submit_rate=50.0),
            ItemResult),
        "submit_generation": (lambda: submit_generation(
            prompt, duration=2, credentials=creds), Submission),
        "submit_edit": (lambda: submit_edit(str(clip), prompt, credentials=creds), Submission),
        "submit_extension": (lambda: submit_extension(
            str(clip), prompt, duration=2, credentials=creds), Submission),
        "wait_for_video": (lambda: wait_for_video(a_job().request_id, credentials=creds),
                           VideoJob),
        "download_video": (lambda: download_video(
            a_job().video.url, f"{out}/d.mp4", credentials=creds), DownloadResult),
        "finish_video": (lambda: finish_video(
            a_job().request_id, f"{out}/f.mp4", credentials=creds), Finished),
    }  # fmt: skip
    call, expected = calls[target]
    if target in ("wait_for_video", "download_video", "finish_video"):
        a_job()
    paid_before = emulator.state.accepted

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... was never awaited"
        first = _call_from(caller, call)
        again = _call_from(caller, call)

    for result in (first, again):
        assert isinstance(result, expected), f"{caller} got {type(result).__name__}"
    paid = emulator.state.accepted - paid_before
    assert paid == (1 if target.startswith(("make", "generate", "edit", "extend", "submit"))
                    else 0), f"{paid} jobs paid for two identical calls"  # fmt: skip
    if isinstance(first, RunReport):
        assert [item.status for item in first.items] == ["succeeded"]
        assert first.succeeded == first.items and not first.failed
    if isinstance(first, ItemResult):
        assert first.status == "succeeded" and Path(first.output).is_file()
        assert again.request_id == first.request_id
    if isinstance(first, Submission):
        assert again.request_id == first.request_id
    if isinstance(first, (DownloadResult, Finished)):
        saved = first.path if isinstance(first, DownloadResult) else first.download.path
        assert Path(saved).is_file()


def test_a_video_made_by_one_call_is_the_input_of_the_next(
    emulator: Any, prefect_server: str, tmp_path: Path
) -> None:
    """Chains across separate calls: an `ItemResult`, a path, bytes, or the future of a task
    (`download_video.submit`: Prefect resolves it to its `DownloadResult`)."""
    creds = credentials_for(emulator)
    out = tmp_path / "out"
    options = {"output": str(out), "credentials": creds, "submit_rate": 50.0}

    @flow
    def pipeline() -> list[ItemResult]:
        first = generate_video("a lighthouse at dusk", duration=2, id="lighthouse", **options)
        by_result = extend_video(first, "night falls", duration=2, **options)
        by_path = edit_video(Path(first.output), "in black and white", **options)
        by_bytes = edit_video(Path(first.output).read_bytes(), "in sepia", id="sepia", **options)
        copy = download_video.submit(first.video_url, str(tmp_path / "copy.mp4"), creds)
        by_future = edit_video(copy, "in watercolour", id="watercolour", **options)
        return [first, by_result, by_path, by_bytes, by_future]

    first, by_result, by_path, by_bytes, by_future = pipeline()
    assert all(item.status == "succeeded"
               for item in (first, by_result, by_path, by_bytes, by_future))  # fmt: skip
    # an input in the output folder never has its own result written over it
    assert [Path(item.output).name for item in (first, by_result, by_path, by_bytes)] == [
        "lighthouse.mp4",
        "lighthouse-extended.mp4",
        "lighthouse-edited.mp4",
        "sepia.mp4",
    ]
    assert by_result.video_seconds == first.video_seconds + 2
    jobs = {job.request_id: job for job in emulator.state.submissions}
    keys = {jobs[i.request_id].input_key for i in (by_result, by_path, by_bytes, by_future)}
    assert len(keys) == 1, "the same video, whichever way it was handed on"


def test_the_manifest_flow_takes_rows_from_an_upstream_task(
    emulator: Any, prefect_server: str, tmp_path: Path
) -> None:
    creds = credentials_for(emulator)

    @task
    def rows() -> list[dict[str, Any]]:
        return [{"id": f"r{n}", "action": "generate", "prompt": f"upstream row {n}",
                 "duration": 2} for n in range(3)]  # fmt: skip

    @flow
    def pipeline() -> RunReport:
        return make_videos(rows.submit(), output=str(tmp_path), credentials=creds,
                           submit_rate=50.0)  # fmt: skip

    report = pipeline()
    assert [item.id for item in report.succeeded] == ["r0", "r1", "r2"]
