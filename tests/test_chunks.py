"""The parent of a chunked run, on the session's Prefect server, with its chunk runs played by
a stand-in for `arun_deployment` (the real fan-out across workers is in test_deployments.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from uuid import UUID, uuid4

import fsspec
import pytest
from fixtures_emulator import poll_env
from fixtures_media import write_csv
from fixtures_prefect import report_of
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed, Pending, State

from prefect_grok_video.flows import make_videos
from prefect_grok_video.flows.engine import chunks
from prefect_grok_video.report import ItemResult, RunReport

PASSWORD = "s3cret-chunk-pw"


@flow(name="fake-chunk", persist_result=True, result_serializer="json")
async def fake_chunk(rows: str) -> RunReport:
    """A chunk run that 'succeeds' every row it is given, as a real (finished) flow run."""
    items = [
        ItemResult(id=f"r{n}", row=n, status="succeeded", source="https://cdn.test/x.mp4")
        for n in chunks.parse_rows(rows)
    ]
    when = datetime.now(timezone.utc)
    return RunReport(manifest="chunk", output="/out", items=items, started_at=when,
                     finished_at=when)  # fmt: skip


async def finished_chunk_run(rows: str) -> UUID:
    """The id of a fake chunk run that completed with a report of `rows`."""
    state = await fake_chunk(rows, return_state=True)
    return state.state_details.flow_run_id


async def chunk_run_in(state: State) -> UUID:
    """The id of a fake chunk run left in `state` (Crashed, Pending, ...), as a dead worker
    leaves one."""
    async with get_client() as client:
        run = await client.create_flow_run(fake_chunk, parameters={"rows": "1"}, state=state)
    return run.id


@pytest.fixture
def as_deployment(monkeypatch) -> None:
    """Runs here act as runs of a deployment."""
    monkeypatch.setattr(chunks.deployment, "get_id", lambda: str(uuid4()))
    monkeypatch.setattr(chunks.deployment, "get_name", lambda: "test")


@pytest.fixture
def chunked(monkeypatch, as_deployment) -> list[dict]:
    """Each chunk run 'succeeds' every row it is given; its parameters are recorded."""
    started: list[dict] = []

    async def run_deployment(name: str, *, parameters: dict, flow_run_name: str, **_: object):
        started.append(parameters)
        run_id = await finished_chunk_run(parameters["rows"])
        return SimpleNamespace(id=run_id, name=flow_run_name)

    monkeypatch.setattr(chunks, "arun_deployment", run_deployment)
    return started


async def test_a_chunked_report_shows_the_manifest_without_its_password(prefect_api, chunked):
    manifest = f"memory://reader:{PASSWORD}@bucket/manifest.csv"
    with fsspec.open(manifest, "w") as f:
        f.write("id,video,prompt\n" + "".join(f"r{n},https://cdn.test/{n}.mp4,go\n"
                                              for n in range(1, 6)))  # fmt: skip
    state = await make_videos(manifest, chunk_size=2, return_state=True)
    report = await state.aresult()
    assert [c["rows"] for c in chunked] == ["1-2", "3-4", "5"]
    assert [item.row for item in report.items] == [1, 2, 3, 4, 5]
    assert report.manifest == "memory://reader:***@bucket/manifest.csv"
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert artifacts
    for artifact in artifacts:
        assert PASSWORD not in json.dumps(artifact.data) + (artifact.description or "")
    assert PASSWORD not in report.model_dump_json()


def test_chunks_never_split_a_chain():
    rows = [
        {"id": "a", "video": "x.mp4"}, {"id": "b", "video": "@a"}, {"id": "c", "video": "y.mp4"},
        {"id": "d", "video": "@b"}, {"video": "z.mp4"}, {"id": "f", "video": "@row-5"},
        {"id": "g", "video": "@nobody"},
    ]  # fmt: skip
    # a chain longer than a chunk stays whole; the others fill chunks up to their size
    assert chunks.chunk_rows(rows, 2) == [[1, 2, 4], [3], [5, 6], [7]]
    assert chunks.chunk_rows(rows, 10) == [[1, 2, 3, 4, 5, 6, 7]]
    assert [chunks.format_rows(c) for c in chunks.chunk_rows(rows, 3)] == ["1-2,4", "3,5-6", "7"]


@pytest.mark.parametrize(
    ("text", "numbers"),
    [("7", [7]), (" 11 - 13 ", [11, 12, 13]), ("1-2,9,4-5", [1, 2, 9, 4, 5])],
)
def test_rows_are_read_as_written(text, numbers):
    assert chunks.parse_rows(text) == numbers


@pytest.mark.parametrize("text", ["", "0", "3-2", "1,", "a-b", "1-2-3"])
def test_rows_that_are_not_rows_are_refused(text):
    with pytest.raises(ValueError, match="rows must"):
        chunks.parse_rows(text)


async def test_chunk_runs_share_one_spend_cap(prefect_server, emulator, monkeypatch, tmp_path):
    """The chunk runs, played here by real runs of the flow in this process (at once, as
    workers would take them), keep to the cap of the run that started them together."""
    monkeypatch.setattr(chunks.deployment, "get_id", lambda: str(uuid4()))
    monkeypatch.setattr(chunks.deployment, "get_name", lambda: "test")
    for name, value in {**poll_env(), "GROK_VIDEO_API_KEY": emulator.api_key,
                        "GROK_VIDEO_BASE_URL": emulator.base_url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    budgets: list[str] = []

    async def run_deployment(name: str, *, parameters: dict, flow_run_name: str, **_: object):
        budgets.append(parameters["budget"])
        state = await make_videos(**parameters, return_state=True)
        return SimpleNamespace(id=state.state_details.flow_run_id, name=flow_run_name)

    monkeypatch.setattr(chunks, "arun_deployment", run_deployment)
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": f"r{n}", "action": "generate", "prompt": f"shared cap {n}", "duration": 2}
        for n in range(6)
    ])  # fmt: skip
    # each job makes 2 s at $0.05 (estimated exactly): $0.45 allows four of the six
    state = await make_videos(
        str(manifest), output=str(tmp_path / "out"), chunk_size=2, submit_rate=50.0,
        max_cost=0.45, prices={"grok-imagine-video": {"480p": 0.05, "720p": 0.05}},
        return_state=True,
    )  # fmt: skip
    report = await report_of(state)
    assert len(budgets) == 3 and len(set(budgets)) == 1
    assert emulator.state.accepted == 4
    assert sorted(item.status for item in report.items) == ["skipped"] * 2 + ["succeeded"] * 4
    assert report.stopped_by == "the spend cap of $0.45 was reached: 2 row(s) not submitted"
    async with get_client() as client:  # the parent removed the budget once done
        with pytest.raises(ObjectNotFound):
            await client.read_global_concurrency_limit_by_name(budgets[0])


def _scripted(monkeypatch, script: dict[str, list[State]]) -> list[tuple[str, str, str, UUID]]:
    """Chunk runs that end, try after try, in the states `script` gives for their rows, then
    with a report; the (rows, flow run name, idempotency key, id) of every run started."""
    started: list[tuple[str, str, str, UUID]] = []

    async def run_deployment(name: str, *, parameters: dict, flow_run_name: str,
                             idempotency_key: str, **_: object):  # fmt: skip
        rows = parameters["rows"]
        planned = script.get(rows, [])
        run_id = await chunk_run_in(planned.pop(0)) if planned else await finished_chunk_run(rows)
        started.append((rows, flow_run_name, idempotency_key, run_id))
        return SimpleNamespace(id=run_id, name=flow_run_name)

    monkeypatch.setattr(chunks, "arun_deployment", run_deployment)
    return started


async def _states(ids: list[UUID]) -> list[str]:
    async with get_client() as client:
        return [(await client.read_flow_run(run_id)).state.type.value for run_id in ids]


async def test_a_chunk_run_that_crashes_then_sticks_is_run_again_until_it_reports(
    prefect_api, as_deployment, monkeypatch, tmp_path, caplog
):
    """Rows 1-2's first chunk run crashes (its process died at its first call while the
    server was away); the second is claimed by a worker that dies (Pending, never started);
    the third reports. The parent ends with every row, says why it ran the chunk again, and
    cancels the stuck run so that it cannot start late beside its replacement."""
    monkeypatch.setenv("GROK_VIDEO_CHUNK_PENDING_TIMEOUT", "1")
    started = _scripted(monkeypatch, {"1-2": [Crashed(message="ConnectError"), Pending()]})
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": f"r{n}", "video": f"https://cdn.test/{n}.mp4", "prompt": "go"} for n in range(1, 5)
    ])  # fmt: skip
    state = await make_videos(str(manifest), chunk_size=2, return_state=True)
    report = await state.aresult()
    assert [(item.row, item.status) for item in report.items] == [
        (n, "succeeded") for n in range(1, 5)
    ]
    first = [(name, key, run_id) for rows, name, key, run_id in started if rows == "1-2"]
    assert [name.rsplit("-rows-", 1)[1] for name, _, _ in first] == [
        "1-2", "1-2-again-1", "1-2-again-2"
    ]  # fmt: skip
    assert len({key for _, key, _ in first}) == 3
    assert [rows for rows, *_ in started].count("3-4") == 1
    assert await _states([run_id for *_, run_id in first]) == [
        "CANCELLED", "CANCELLED", "COMPLETED"
    ]  # fmt: skip
    reruns = [r.getMessage() for r in caplog.records if "running it again" in r.getMessage()]
    assert len(reruns) == 2, reruns
    assert "ended Crashed: ConnectError" in reruns[0]
    assert "claimed by a worker" in reruns[1] and "never started" in reruns[1]


async def test_a_chunk_run_that_never_reports_ends_as_lost_rows_saying_what_to_do(
    prefect_api, as_deployment, monkeypatch, tmp_path
):
    """Rows 1-2's chunk run crashes on each of its two tries (GROK_VIDEO_CHUNK_RETRIES=1):
    the parent does not wait for it forever; those rows end `unknown`, naming the chunk run,
    why, and what to do; the other chunk's rows succeed."""
    monkeypatch.setenv("GROK_VIDEO_CHUNK_RETRIES", "1")
    started = _scripted(monkeypatch, {"1-2": [Crashed(), Crashed(message="out of memory")]})
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": f"r{n}", "video": f"https://cdn.test/{n}.mp4", "prompt": "go"} for n in range(1, 5)
    ])  # fmt: skip
    state = await make_videos(str(manifest), chunk_size=2, return_state=True)
    assert state.is_failed()
    report = await report_of(state)
    lost, found = report.items[:2], report.items[2:]
    assert {item.status for item in found} == {"succeeded"}
    for item in lost:
        assert (item.status, item.error.code) == ("unknown", "chunk_failed")
        assert "-rows-1-2-again-1 ended Crashed: out of memory" in item.error.message
        assert "run the manifest again" in item.error.message
    assert [rows for rows, *_ in started].count("1-2") == 2
