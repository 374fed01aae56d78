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
    expect(summary.locator("table").first.locator("tbody td")).to_have_text(["succeeded", "5"])
    # the contact sheet: every video's middle frame, drawn (a data: URL the UI lets through)
    sheet = summary.locator("img")
    expect(sheet).to_have_count(len(items))
    assert _drawn(sheet) == [160] * len(items)
    for id in items:
        expect(summary).to_contain_text(id)
    page.screenshot(path=tmp_path / "ui-contact-sheet.png", full_page=True)

    progress = open_artifact(page, cards["grok-video-progress"])
    expect(progress.locator(".artifact-data-progress")).to_have_text("Progress: 100%")

    for key, item in videos.items():
        video = open_artifact(page, cards[key])
        frames = video.locator("img")  # first, middle and last
        expect(frames).to_have_count(3)
        assert _drawn(frames) == [160] * 3
        # where it is saved, and its temporary URL, marked as expiring
        expect(video).to_contain_text(item["output"])
        expect(video.locator("a")).to_have_attribute("href", item["video_url"])
        expect(video).to_contain_text("expires")
        expect(page.locator(".artifact-description")).to_contain_text(f"saved to {item['output']}")

    # the Event Feed: each video materialized, with its upstream asset
    assert set(materialized) == {Path(item["output"]).as_uri() for item in items.values()}
    for id, upstream in UPSTREAM.items():
        related = materialized[Path(items[id]["output"]).as_uri()]
        assets = [each for each in related if each.startswith("file://")]
        assert assets == ([(output / upstream).as_uri()] if upstream else []), related
        assert f"Task run finish-{id}" in related
    print(f"demo and UI checks: {time.monotonic() - started:.1f} s; screenshots in {tmp_path}")


def _drawn(images) -> list[int]:
    """The natural width of each image once loaded (0 for one the browser could not draw)."""
    return [
        image.evaluate(
            "i => i.complete ? i.naturalWidth : new Promise(ok => {"
            " i.onload = () => ok(i.naturalWidth); i.onerror = () => ok(0); })"
        )
        for image in images.all()
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_gallery_page_plays_every_video_opened_from_disk(
    prefect_server_process: Cluster, ui_page: Page, tmp_path: Path
):
    output = tmp_path / "demo"
    report = run_demo(prefect_server_process, output)
    items = [item for item in report["items"] if item["status"] == "succeeded"]
    page = ui_page
    page.goto((output / "index.html").as_uri())
    videos = page.locator("video")
    expect(videos).to_have_count(len(items))
    for video, item in zip(videos.all(), items, strict=True):
        state = video.evaluate(
            "v => v.readyState >= 1 ? [v.readyState, v.duration] : new Promise(ok => {"
            " v.onloadedmetadata = () => ok([v.readyState, v.duration]);"
            " v.onerror = () => ok([0, 0]); v.load(); })"
        )
        assert state[0] >= 1, f"{item['id']}: the browser could not read the video"
        assert abs(state[1] - item["video_seconds"]) < 0.2, (item["id"], state)
    posters = page.locator(".card img")
    assert _drawn(posters) == [480] * len(items)
    page.screenshot(path=tmp_path / "gallery.png", full_page=True)
