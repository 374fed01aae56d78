"""The parent of a chunked run, on the session's Prefect server, with its chunk runs played by
a stand-in for `run_deployment` (the real fan-out across workers is in test_deployments.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from uuid import uuid4

import fsspec
import pytest
from fixtures_emulator import poll_env
from fixtures_media import write_csv
from fixtures_prefect import report_of
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed

from prefect_grok_video.flows import chunks, extend_videos
from prefect_grok_video.report import ItemResult, RunReport

PASSWORD = "s3cret-chunk-pw"


@pytest.fixture
def chunked(monkeypatch) -> list[dict]:
    """Runs here act as runs of a deployment; each chunk run 'succeeds' every row it is given
    and its parameters are recorded."""
    started: list[dict] = []
    monkeypatch.setattr(chunks.deployment, "get_id", lambda: str(uuid4()))
    monkeypatch.setattr(chunks.deployment, "get_name", lambda: "test")

    async def run_deployment(name: str, *, parameters: dict, flow_run_name: str, **_: object):
        started.append(parameters)
        items = [
            ItemResult(id=f"r{n}", row=n, status="succeeded", source="https://cdn.test/x.mp4")
            for n in chunks.parse_rows(parameters["rows"])
        ]
        when = datetime.now(timezone.utc)
        report = RunReport(
            manifest="chunk", output="/out", items=items, started_at=when, finished_at=when
        )
        return SimpleNamespace(name=flow_run_name, state=Completed(data=report))

    monkeypatch.setattr(chunks, "run_deployment", run_deployment)
    return started


async def test_a_chunked_report_shows_the_manifest_without_its_password(prefect_api, chunked):
    manifest = f"memory://reader:{PASSWORD}@bucket/manifest.csv"
    with fsspec.open(manifest, "w") as f:
        f.write("id,video,prompt\n" + "".join(f"r{n},https://cdn.test/{n}.mp4,go\n"
                                              for n in range(1, 6)))  # fmt: skip
    state = await extend_videos(manifest, chunk_size=2, return_state=True)
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
        state = await extend_videos(**parameters, return_state=True)
        return SimpleNamespace(name=flow_run_name, state=state)

    monkeypatch.setattr(chunks, "run_deployment", run_deployment)
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": f"r{n}", "action": "generate", "prompt": f"shared cap {n}", "duration": 2}
        for n in range(6)
    ])  # fmt: skip
    # each job makes 2 s at $0.05 (estimated exactly): $0.45 allows four of the six
    state = await extend_videos(
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
