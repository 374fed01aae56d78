"""What a run tells Prefect besides its states: an event per row outcome and one per run, read
back from the server's events API, and an asset per downloaded video with its input upstream."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fixtures_emulator import credentials_for
from fixtures_media import make_mp4, write_csv
from fixtures_prefect import drain_prefect_workers, report_of

from prefect_grok_video.flows import make_videos


@pytest.fixture(autouse=True)
def fresh_rate_limit(prefect_server):
    """Each test creates the shared submit limit afresh, at its own rate."""


def events_of(
    api_url: str,
    prefix: str,
    flow_run_id: str | None = None,
    *,
    resources: list[str] | None = None,
    at_least: int = 0,
) -> list[dict]:
    """Every event whose name starts with `prefix` (of one flow run, or about some resources,
    if given), via the API; waits until there are `at_least` (the server writes events in
    batches, every few s)."""
    body: dict = {"filter": {"event": {"prefix": [prefix]}, "order": "ASC"}, "limit": 50}
    if flow_run_id:
        body["filter"]["related"] = {"id": [f"prefect.flow-run.{flow_run_id}"]}
    if resources:
        body["filter"]["resource"] = {"id": resources}
    deadline = time.monotonic() + 90
    while True:
        response = httpx.post(f"{api_url}/events/filter", json=body, timeout=30)
        events = response.raise_for_status().json()["events"]
        if len(events) >= at_least or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


async def test_every_row_announces_its_outcome_once(emulator, prefect_api, tmp_path):
    make_mp4(tmp_path / "clip.mp4", seconds=3.0)
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "made", "action": "generate", "prompt": "a kite over a beach", "duration": 2},
        {"id": "longer", "video": "clip.mp4", "prompt": "the camera pulls back", "duration": 2},
        {"id": "stopped", "action": "generate", "prompt": "a storm #moderated"},
        {"id": "after", "video": "@stopped", "prompt": "it passes"},
        {"id": "bad", "video": "clip.mp4", "prompt": "p", "duration": 99},
    ])  # fmt: skip
    credentials = credentials_for(emulator)
    state = await make_videos(
        str(manifest), output=str(tmp_path / "out"), credentials=credentials, submit_rate=50.0,
        return_state=True,
    )  # fmt: skip
    report = await report_of(state)
    await drain_prefect_workers()
    run_id = report.flow_run_id
    events = events_of(prefect_api, "grok-video.video.", run_id, at_least=5)
    assert sorted(e["event"] for e in events) == sorted(
        f"grok-video.video.{item.status}" for item in report.items
    )
    assert len(events) == 5
    by_name = {e["resource"]["prefect.resource.name"]: e for e in events}
    made = by_name["made"]
    assert (
        made["resource"]["prefect.resource.id"]
        == f"grok-video.request.{report.items[0].request_id}"
    )
    assert made["payload"]["action"] == "generate" and made["payload"]["output"].endswith(
        "made.mp4"
    )
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in made["related"]}
    assert roles["flow-run"] == f"prefect.flow-run.{run_id}"
    assert roles["output"].startswith("file:///") and roles["output"].endswith("/out/made.mp4")
    assert by_name["bad"]["resource"]["prefect.resource.id"] == f"grok-video.row.{run_id}.5"
    assert by_name["after"]["payload"]["upstream"] == "stopped"
    for event in events:
        text = json.dumps(event)
        assert emulator.api_key not in text and "base64" not in text
    (summary,) = events_of(prefect_api, "grok-video.run.", run_id, at_least=1)

    # each downloaded video is an asset materialized from its input
    made_asset = events_of(prefect_api, "prefect.asset.materialization.", run_id, at_least=2)
    assets = {e["resource"]["prefect.resource.id"]: e for e in made_asset}
    out = (tmp_path / "out").as_uri()
    assert set(assets) == {f"{out}/made.mp4", f"{out}/longer.mp4"}
    longer = assets[f"{out}/longer.mp4"]
    assert [(r["prefect.resource.id"], r["prefect.resource.role"]) for r in longer["related"]
            if r["prefect.resource.role"] == "asset"] == [((tmp_path / "clip.mp4").as_uri(),
                                                             "asset")]  # fmt: skip
    items = {item.id: item for item in report.items}
    assert longer["payload"]["request_id"] == items["longer"].request_id
    assert longer["payload"]["sha256"] == items["longer"].sha256
    assert longer["payload"]["action"] == "extend" and longer["payload"]["duration"] == 2
    assert summary["payload"]["rows"] == 5
    assert summary["payload"]["totals"]["succeeded"] == 2

    # A rerun finds the same jobs done: nothing new is announced about them.
    again = await report_of(await make_videos(
        str(manifest), output=str(tmp_path / "out"), credentials=credentials, submit_rate=50.0,
        return_state=True,
    ))  # fmt: skip
    await drain_prefect_workers()
    jobs = [f"grok-video.request.{item.request_id}" for item in report.items if item.request_id]
    succeeded = events_of(prefect_api, "grok-video.video.succeeded", resources=jobs, at_least=2)
    assert len(succeeded) == 2
    # Only the rows nothing was submitted for are announced under the rerun: the jobs (the
    # succeeded ones and the moderated one) ended as they had.
    rerun = events_of(prefect_api, "grok-video.video.", again.flow_run_id, at_least=2)
    assert sorted(e["event"] for e in rerun) == [
        "grok-video.video.invalid", "grok-video.video.upstream_failed"
    ]  # fmt: skip
