"""The flows on a real temporary Prefect server against the emulator over loopback: outcomes,
files, artifacts, reruns that pay nothing, limits, and the API key kept out of everything."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from pathlib import Path

import fsspec
import pytest
from fixtures_emulator import credentials_for
from fixtures_prefect import drain_prefect_workers, report_of
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)

from prefect_grok_video.errors import RunFailedError
from prefect_grok_video.flows import extend_video, make_videos
from prefect_grok_video.report import RunReport

URL = "https://cdn.test/{}.mp4"


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_POLL_FIRST", "0.05")
    monkeypatch.setenv("GROK_VIDEO_POLL_MIN_INTERVAL", "0.05")
    monkeypatch.setenv("GROK_VIDEO_POLL_MAX_INTERVAL", "0.3")


@pytest.fixture(autouse=True)
def fresh_rate_limit(prefect_server):
    """Each test creates the shared submit limit afresh, at its own rate."""


def write_manifest(folder: Path, rows: list[dict], name: str = "manifest.csv") -> Path:
    path = folder / name
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "video", "prompt", "duration"])
        writer.writeheader()
        writer.writerows(rows)
    return path


async def run(manifest, emulator, output, **options) -> tuple[str, RunReport]:
    """Run `make_videos`; return the final state's type and the report, whatever the state."""
    state = await make_videos(
        str(manifest) if isinstance(manifest, Path) else manifest,
        output=str(output),
        credentials=credentials_for(emulator),
        return_state=True,
        **{"submit_rate": 50.0, **options},
    )
    return state, await report_of(state)


@pytest.fixture
def mixed(tmp_path, h264_clip, short_clip):
    """A manifest with every outcome a run can give."""
    clip = tmp_path / "clips" / "a.mp4"
    clip.parent.mkdir()
    clip.write_bytes(h264_clip.read_bytes())
    return write_manifest(
        tmp_path,
        [
            {"id": "local", "video": "clips/a.mp4", "prompt": "the sun rises", "duration": 4},
            {"id": "url", "video": URL.format("b"), "prompt": "waves roll in", "duration": 6},
            {"id": "moderated", "video": URL.format("c"), "prompt": "x #moderated"},
            {"id": "failed", "video": URL.format("d"), "prompt": "x #fail=invalid_argument"},
            {"id": "expired", "video": URL.format("e"), "prompt": "x #expired"},
            {"id": "retried", "video": URL.format("f"),
             "prompt": "x #fail-first=service_unavailable"},
            {"id": "too-long", "video": URL.format("g"), "prompt": "x", "duration": 11},
            {"id": "too-short-clip", "video": str(short_clip), "prompt": "x"},
        ],
    )  # fmt: skip


async def test_mixed_manifest_gives_exactly_the_expected_report_files_and_artifacts(
    emulator, mixed, tmp_path
):
    output = tmp_path / "out"
    state, report = await run(mixed, emulator, output)

    statuses = {item.id: item.status for item in report.items}
    assert statuses == {
        "local": "succeeded", "url": "succeeded", "moderated": "moderated", "failed": "failed",
        "expired": "expired", "retried": "succeeded", "too-long": "invalid",
        "too-short-clip": "invalid",
    }  # fmt: skip
    assert state.is_failed()
    assert state.message == "3 of 8 rows succeeded; 1 failed, 1 moderated, 1 expired, 2 invalid"
    items = {item.id: item for item in report.items}
    assert [item.row for item in report.items] == list(range(1, 9))
    assert items["retried"].attempts == 2  # resubmitted once after service_unavailable
    assert items["failed"].attempts == 1  # invalid_argument is never resubmitted
    assert items["failed"].error.code == "invalid_argument"
    assert items["too-long"].error.field == "duration"
    assert "duration" in items["too-long"].error.message
    assert items["too-short-clip"].error.field == "video"
    assert items["local"].duration == 4 and items["local"].video_seconds == pytest.approx(7)
    assert items["local"].cost_usd == pytest.approx(0.35)
    assert report.total_cost_usd == pytest.approx(sum(i.cost_usd or 0 for i in report.items))
    assert report.totals["invalid"] == 2

    # one paid job per submitted row, plus the one resubmission; none for invalid rows
    assert emulator.state.accepted == 7
    assert URL.format("g") not in emulator.state.accepted_by_input

    files = sorted(p.name for p in output.iterdir())
    # each video with its poster beside it, and the gallery page
    assert files == ["index.html", "local.jpg", "local.mp4", "report.json", "retried.jpg",
                     "retried.mp4", "url.jpg", "url.mp4"]  # fmt: skip
    for name in ("local", "url", "retried"):
        item = items[name]
        data = Path(item.output).read_bytes()
        assert Path(item.output).parent == output.resolve()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (item.size, item.sha256)

    async with get_client() as client:
        flow_run_id = state.state_details.flow_run_id
        # Another process reads the failed run's result back (a deployment's caller, a
        # downstream flow): a RunFailedError saying what failed; the whole report is beside
        # the videos (result storage keeps only the error's message)
        stored = await (await client.read_flow_run(flow_run_id)).state.aresult(
            raise_on_failure=False
        )
        assert isinstance(stored, RunFailedError) and str(stored) == state.message
        assert RunReport.model_validate_json((output / "report.json").read_text()) == report
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        # Task runs reach the server as events, a moment after the run: wait for the last.
        for _ in range(50):
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            if {"finish-local", "finish-url", "finish-retried"} <= {run.name for run in task_runs}:
                break
            await asyncio.sleep(0.2)
    by_key = {a.key: a for a in artifacts}
    table = by_key["grok-video-results"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {row["id"]: row["status"] for row in rows} == statuses
    assert {row["id"]: row["request_id"] for row in rows}["url"] == items["url"].request_id
    summary = by_key["grok-video-summary"].data
    assert "3 of 8 rows succeeded" in summary and str(output.resolve()) in summary
    assert "| invalid | 2 |" in summary and "What to do" in summary
    progress = [a for a in artifacts if a.type == "progress"]
    assert [a.data for a in progress] == [100.0]
    links = {a.key: a.data for a in artifacts if a.type == "markdown" and a.key.startswith(
        "grok-video-video-")}  # fmt: skip
    assert set(links) == {"grok-video-video-local", "grok-video-video-url",
                          "grok-video-video-retried"}  # fmt: skip
    assert items["url"].video_url in links["grok-video-video-url"]
    assert "expires" in links["grok-video-video-url"]

    names = {run.name for run in task_runs}
    for row_id in ("local", "url", "retried", "moderated"):
        assert {f"extend-{row_id}", f"finish-{row_id}"} <= names
    assert {"finish-local", "finish-url", "finish-retried"} <= names
    assert not any(name.endswith("too-long") for name in names)


async def test_rerun_pays_nothing_and_redownloads_only_what_is_missing(emulator, mixed, tmp_path):
    output = tmp_path / "out"
    _, first = await run(mixed, emulator, output)
    accepted, downloads = emulator.state.accepted, dict(emulator.state.downloads)
    (output / "url.mp4").unlink()
    (output / "local.mp4").write_bytes(b"corrupted")

    _, second = await run(mixed, emulator, output)

    assert emulator.state.accepted == accepted  # not one new paid job
    assert [i.status for i in second.items] == [i.status for i in first.items]
    assert [i.request_id for i in second.items] == [i.request_id for i in first.items]
    redownloaded = {rid for rid, n in emulator.state.downloads.items() if n > downloads.get(rid, 0)}
    by_id = {i.id: i for i in second.items}
    assert redownloaded == {by_id["url"].request_id, by_id["local"].request_id}
    assert Path(by_id["local"].output).stat().st_size == by_id["local"].size


async def test_refresh_pays_for_every_valid_row_again(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [
        {"id": f"r{i}", "video": URL.format(i), "prompt": "go"} for i in range(3)
    ])  # fmt: skip
    _, first = await run(manifest, emulator, tmp_path / "out")
    _, again = await run(manifest, emulator, tmp_path / "out")
    _, fresh = await run(manifest, emulator, tmp_path / "out", refresh=True)
    assert emulator.state.accepted == 6
    assert {i.request_id for i in again.items} == {i.request_id for i in first.items}
    assert not {i.request_id for i in fresh.items} & {i.request_id for i in first.items}


async def test_rows_that_are_the_same_job_share_one_submission(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [
        {"id": "one", "video": URL.format("same"), "prompt": "go", "duration": 5},
        {"id": "two", "video": URL.format("same"), "prompt": "go", "duration": 5},
        {"id": "three", "video": URL.format("same"), "prompt": "go", "duration": 6},
    ])  # fmt: skip
    state, report = await run(manifest, emulator, tmp_path / "out")
    assert state.is_completed()
    assert emulator.state.accepted == 2
    one, two, three = report.items
    assert one.request_id == two.request_id != three.request_id
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == [
        "one.mp4", "three.mp4", "two.mp4"]  # fmt: skip


async def test_a_run_keeps_to_its_submit_rate(emulator, tmp_path):
    """End to end, with real time: a run's submissions reach the service no faster than its
    submit_rate. The bounds are loose (a loaded machine delays requests unevenly); the exact
    spacing and the shared limit's batches are tested on virtual time in test_gate.py."""
    manifest = write_manifest(tmp_path, [
        {"id": f"r{i}", "video": URL.format(i), "prompt": "go"} for i in range(8)
    ])  # fmt: skip
    state, _ = await run(manifest, emulator, tmp_path / "out", submit_rate=5.0)
    assert state.is_completed()
    times = sorted(s.monotonic for s in emulator.state.submissions)
    assert len(times) == 8
    # 7 intervals of 0.2 s at least; at most 5 a second, give or take one, never a burst.
    assert times[-1] - times[0] >= 0.9 * 7 * 0.2
    assert emulator.state.peak_accepted_per_second() <= 5 + 1


async def test_max_concurrency_bounds_jobs_in_flight(emulator_factory, tmp_path):
    emulator = emulator_factory(latency=0.5)
    manifest = write_manifest(tmp_path, [
        {"id": f"r{i}", "video": URL.format(i), "prompt": "go"} for i in range(6)
    ])  # fmt: skip
    state, _ = await run(manifest, emulator, tmp_path / "out", max_concurrency=2)
    assert state.is_completed()
    times = sorted(s.monotonic for s in emulator.state.submissions)
    # a third job can only start once one of the first two has finished (0.5 s)
    assert all(later - earlier >= 0.45 for earlier, later in zip(times, times[2:], strict=False))


async def test_429s_from_the_service_are_waited_out(emulator_factory, tmp_path):
    emulator = emulator_factory(submit_rate=4.0, submit_burst=1, fractional_retry_after=True)
    manifest = write_manifest(tmp_path, [
        {"id": f"r{i}", "video": URL.format(i), "prompt": "go"} for i in range(6)
    ])  # fmt: skip
    state, report = await run(manifest, emulator, tmp_path / "out", submit_rate=20.0)
    assert state.is_completed()
    assert emulator.state.rate_limited > 0
    assert emulator.state.accepted == 6
    assert all(item.attempts == 1 for item in report.items)


async def test_outputs_to_a_storage_url(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [{"id": "m", "video": URL.format("m"), "prompt": "go"}])
    state, report = await run(manifest, emulator, "memory://grok-out/run1")
    assert state.is_completed()
    item = report.items[0]
    assert item.output == "memory://grok-out/run1/m.mp4"
    fs = fsspec.filesystem("memory")
    assert fs.size("/grok-out/run1/m.mp4") == item.size
    # the poster, the report and the gallery page go to the bucket too
    assert sorted(fs.ls("/grok-out/run1", detail=False)) == [
        "/grok-out/run1/index.html", "/grok-out/run1/m.jpg", "/grok-out/run1/m.mp4",
        "/grok-out/run1/report.json"]  # fmt: skip
    assert item.thumbnail == "memory://grok-out/run1/m.jpg"


async def test_invalid_rows_never_stop_the_good_ones(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [
        {"id": "a/b", "video": URL.format(1), "prompt": "go"},
        {"id": "ok", "video": URL.format(2), "prompt": "go"},
        {"id": "ok", "video": URL.format(3), "prompt": "go"},
        {"id": "blank", "video": URL.format(4), "prompt": "   "},
    ])  # fmt: skip
    state, report = await run(manifest, emulator, tmp_path / "out")
    assert [i.status for i in report.items] == ["invalid", "succeeded", "invalid", "invalid"]
    assert [i.error.field for i in report.items if i.error] == ["id", "id", "prompt"]
    assert emulator.state.accepted == 1
    assert state.is_failed()


async def test_fail_on_item_error_false_completes_with_the_report(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [{"id": "x", "video": URL.format(1),
                                          "prompt": "go #expired"}])  # fmt: skip
    state, report = await run(manifest, emulator, tmp_path / "out", fail_on_item_error=False)
    assert state.is_completed()
    assert report.items[0].status == "expired"


async def test_single_video_flow_alone_and_as_a_subflow(emulator, h264_clip, tmp_path):
    credentials = credentials_for(emulator)
    item = await extend_video(str(h264_clip), "the camera pans", duration=3,
                              output=str(tmp_path), credentials=credentials)  # fmt: skip
    assert item.status == "succeeded" and item.id == h264_clip.stem
    assert Path(item.output) == tmp_path / f"{h264_clip.stem}.mp4"

    @flow
    async def pipeline(clip: str) -> list[str]:
        first = await extend_video(clip, "first", output=str(tmp_path / "sub"),
                                   credentials=credentials, id="first")  # fmt: skip
        report = await make_videos(
            [{"id": "again", "video": first.output, "prompt": "second"}],
            output=str(tmp_path / "sub"), credentials=credentials,
        )  # fmt: skip
        return [first.status, report.items[0].status]

    assert await pipeline(str(h264_clip)) == ["succeeded", "succeeded"]


async def test_single_video_failure_fails_the_flow(emulator, tmp_path):
    with pytest.raises(RunFailedError, match="0 of 1 rows succeeded; 1 moderated") as caught:
        await extend_video(URL.format(1), "x #moderated", output=str(tmp_path),
                           credentials=credentials_for(emulator))  # fmt: skip
    assert caught.value.result.status == "moderated"
    assert caught.value.result.error.code == "moderated"


def test_flows_run_from_synchronous_code(emulator, tmp_path, prefect_api, monkeypatch):
    """A plain call returns the report; `.aio` is the coroutine, for `asyncio.run`."""
    monkeypatch.setenv("GROK_VIDEO_API_KEY", emulator.api_key)
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", emulator.base_url)
    rows = [{"video": URL.format("sync"), "prompt": "go"}]
    report = make_videos(rows, output=str(tmp_path))
    assert report.items[0].status == "succeeded"
    assert report.items[0].id == "row-1"
    again = asyncio.run(make_videos.aio(rows, output=str(tmp_path)))
    assert again.items[0].request_id == report.items[0].request_id


async def test_the_api_key_reaches_no_log_artifact_report_result_or_parameter(
    emulator_factory, tmp_path, h264_clip, prefect_api
):
    """A canary key through success, failures and retries; then every place is scanned."""
    canary = "xai-canary-9d8e7f6a5b4c3d2e"
    emulator = emulator_factory(
        api_key=canary, p_submit_5xx=0.3, p_poll_5xx=0.3, submit_rate=5.0,
        fractional_retry_after=True, seed=3,
    )  # fmt: skip
    manifest = write_manifest(tmp_path, [
        {"id": "ok", "video": str(h264_clip), "prompt": "go"},
        {"id": "bad", "video": URL.format(1), "prompt": "x #fail=permission_denied"},
        {"id": "gone", "video": URL.format(2), "prompt": "x #expired"},
        {"id": "more", "video": URL.format(3), "prompt": "go"},
        {"id": "inv", "video": URL.format(4), "prompt": "go", "duration": 0},
    ])  # fmt: skip
    state, report = await run(manifest, emulator, tmp_path / "out", submit_rate=20.0)
    assert emulator.state.server_errors > 0  # the retry paths really ran
    assert report.totals["succeeded"] == 2

    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_HOME,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
    )

    await drain_prefect_workers()
    flow_run_id = state.state_details.flow_run_id
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        flow_run = await client.read_flow_run(flow_run_id)
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    assert len(logs) > 10
    places = {
        "logs": "\n".join(log.message for log in logs),
        "artifacts": json.dumps([a.model_dump(mode="json") for a in artifacts]),
        "report": report.model_dump_json(),
        "state": repr(state),
        "parameters": json.dumps(flow_run.parameters, default=str),
        "task runs": json.dumps([t.model_dump(mode="json") for t in task_runs]),
    }
    for where, text in places.items():
        assert canary not in text, f"the API key leaked into {where}"
    stored = [p for p in Path(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()).rglob("*")
              if p.is_file()]  # fmt: skip
    assert stored, "results should have been persisted"
    home_files = [p for p in Path(PREFECT_HOME.value()).rglob("*") if p.is_file()]
    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    assert database.stat().st_size > 0
    for path in {*stored, *home_files, database}:
        assert canary.encode() not in path.read_bytes(), f"the API key leaked into {path}"


async def test_unknown_submit_outcomes_are_never_resubmitted(emulator_factory, tmp_path):
    emulator = emulator_factory(p_drop_after_accept=1.0)
    manifest = write_manifest(tmp_path, [{"id": "lost", "video": URL.format(1), "prompt": "go"}])
    state, report = await run(manifest, emulator, tmp_path / "out")
    item = report.items[0]
    assert (item.status, item.request_id, item.error.code) == (
        "unknown", None, "submit_outcome_unknown")  # fmt: skip
    assert "billed" in item.error.message
    assert state.message == "0 of 1 rows succeeded; 1 unknown"
    _, again = await run(manifest, emulator, tmp_path / "out")
    assert again.items[0].status == "unknown"
    assert emulator.state.accepted == 1  # the rerun did not pay for it again


async def test_timed_out_rows_resume_waiting_without_paying_again(emulator, tmp_path):
    manifest = write_manifest(tmp_path, [
        {"id": "slow", "video": URL.format(1), "prompt": "go #latency=1.5"}])  # fmt: skip
    _, first = await run(manifest, emulator, tmp_path / "out", wait_timeout=0.3)
    assert first.items[0].status == "timed_out"
    assert first.items[0].request_id in first.items[0].error.message
    await asyncio.sleep(1.3)
    _, second = await run(manifest, emulator, tmp_path / "out")
    assert second.items[0].status == "succeeded"
    assert second.items[0].request_id == first.items[0].request_id
    assert emulator.state.accepted == 1


async def test_a_run_forgets_each_rows_task_runs_once_the_row_ends(tmp_path, emulator, monkeypatch):
    """Prefect's flow-run context keeps every task run's result for the whole run; the run
    hands each row's task runs (submission and finish) to `TaskRunMemory` when the row ends,
    and they leave the context (flows/engine/task_run_memory.py)."""
    from prefect.context import FlowRunContext

    from prefect_grok_video.flows.engine.task_run_memory import TaskRunMemory

    still_kept: list[int] = []
    forgotten: list[object] = []
    forget = TaskRunMemory.forget

    def recording(self, task_run_ids):
        task_run_ids = list(task_run_ids)
        forgotten.extend(task_run_ids)
        forget(self, task_run_ids)
        self.sweep()  # at once: what is kept is then only what was never forgotten
        gone = set(forgotten)
        still_kept[:] = [sum(entry[0].state_details.task_run_id in gone
                             for entry in FlowRunContext.get().run_results.values())]  # fmt: skip

    monkeypatch.setattr(TaskRunMemory, "forget", recording)
    rows = [{"id": f"r{i}", "video": URL.format(i), "prompt": f"scene {i}", "duration": 2}
            for i in range(6)]  # fmt: skip
    state, report = await run(write_manifest(tmp_path, rows), emulator, tmp_path / "out")
    assert state.is_completed() and report.totals["succeeded"] == 6
    assert len(forgotten) == len(set(forgotten)) == 6 * 2  # a submission and a finish each
    assert still_kept == [0]
