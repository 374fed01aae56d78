"""The Prefect UI for real: `grok-video demo` against `prefect server start`, then the run's
page, each artifact's page and the Event Feed of materializations in headless Chromium (Debian's,
installed by the `chromium` fixture when missing), driven by Playwright."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures_server import Cluster
from fixtures_ui import SCREENSHOTS, capture, open_artifact, run_demo
from playwright.sync_api import Page, expect

# each video of the bundled manifest and its upstream asset, relative to the demo's output
UPSTREAM = {
    "sunrise": "input/clips/sunrise.mp4",
    "ocean-storm": "input/clips/ocean.mp4",
    "harbour": "input/stills/harbour.png",
    "lighthouse": None,
    "lighthouse-night": "lighthouse.mp4",
}


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first run may install chromium
def test_the_demo_run_shows_its_artifacts_and_lineage_in_the_ui(
    prefect_server_process: Cluster, ui_page: Page, tmp_path: Path
):
    started = time.monotonic()
    output = tmp_path / "demo"
    report = run_demo(prefect_server_process, output)
    items = {item["id"]: item for item in report["items"]}
    assert list(items) == list(UPSTREAM)
    assert {item["status"] for item in items.values()} == {"succeeded"}
    page, ui = ui_page, prefect_server_process.ui_url

    cards, materialized = capture(page, ui, report, tmp_path)
    assert all((tmp_path / name).stat().st_size > 10_000 for name in SCREENSHOTS.values())

    # the run's page lists every artifact, and only those
    videos = {f"grok-video-video-{id}": item for id, item in items.items()}
    assert set(cards) == {"grok-video-results", "grok-video-summary", "grok-video-progress",
                          *videos}  # fmt: skip

    # each artifact's page draws its content
    table = open_artifact(page, cards["grok-video-results"])
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(items))
    columns = [header.strip() for header in table.locator("thead th").all_inner_texts()]
    for row, item in zip(rows.all(), items.values(), strict=True):
        cells = dict(zip(columns, row.locator("td").all_inner_texts(), strict=True))
        expected = {"id": item["id"], "row": str(item["row"]), "status": "succeeded",
                    "request_id": item["request_id"], "output": item["output"]}  # fmt: skip
        assert {column: cells[column].strip() for column in expected} == expected
    page.screenshot(path=tmp_path / "ui-results.png")

    summary = open_artifact(page, cards["grok-video-summary"])
    expect(summary).to_contain_text("5 of 5 rows succeeded")
    expect(summary.locator("tbody td")).to_have_text(["succeeded", "5"])

    progress = open_artifact(page, cards["grok-video-progress"])
    expect(progress.locator(".artifact-data-progress")).to_have_text("Progress: 100%")

    for key, item in videos.items():
        link = open_artifact(page, cards[key]).locator("a")
        expect(link).to_have_attribute("href", item["video_url"])
        expect(link).to_contain_text(item["id"])
        expect(page.locator(".artifact-description")).to_contain_text(f"saved to {item['output']}")

    # the Event Feed: each video materialized, with its upstream asset
    assert set(materialized) == {Path(item["output"]).as_uri() for item in items.values()}
    for id, upstream in UPSTREAM.items():
        related = materialized[Path(items[id]["output"]).as_uri()]
        assets = [each for each in related if each.startswith("file://")]
        assert assets == ([(output / upstream).as_uri()] if upstream else []), related
        assert f"Task run finish-{id}" in related
    print(f"demo and UI checks: {time.monotonic() - started:.1f} s; screenshots in {tmp_path}")
