"""The parent of a chunked run, on the session's Prefect server, with its chunk runs played by
a stand-in for `run_deployment` (the real fan-out across workers is in test_deployments.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from uuid import uuid4

import fsspec
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
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
