"""The Prefect UI in headless Chromium, driven by Playwright, showing a `grok-video demo` run.

- `ensure_chromium()`: Debian's chromium at /usr/bin/chromium, installed with apt-get (as root,
  as CI runs) when it is missing; the seconds the install took (0.0 when it was there).
- `launch_chromium(playwright)`: it, headless, with the flags this machine needs.
- `chromium` (session): `ensure_chromium()` once; `ui_page` (per test): a page of `VIEWPORT`
  in a browser of the test file's own.
- `run_demo(server, output)`: `grok-video demo` against a `Cluster`'s server; its report.json.
- `show_artifacts(page, ui_url, flow_run_id)`: a flow run's page on its Artifacts tab; the
  address of each artifact's own page (where its content is drawn) by key.
- `open_artifact(page, url)`: an artifact's page, once its content is drawn.
- `show_materializations(page, ui_url, count)`: the Event Feed of asset materializations (what
  the open-source UI shows of lineage); the related resources of each materialized asset.
- `capture(page, ui_url, report, folder)`: the two screenshots of the docs into `folder`.

Also used by `scripts/screenshots.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fixtures_cli import run_cli

if TYPE_CHECKING:
    from fixtures_server import Cluster
    from playwright.sync_api import Browser, Locator, Page, Playwright

__all__ = [
    "MATERIALIZED",
    "SCREENSHOTS",
    "VIEWPORT",
    "capture",
    "ensure_chromium",
    "launch_chromium",
    "open_artifact",
    "run_demo",
    "show_artifacts",
    "show_materializations",
]

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# closed network refuses; as root it needs --no-sandbox.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y",
           "--no-install-recommends", "chromium"]  # fmt: skip
VIEWPORT = {"width": 1400, "height": 900}
MATERIALIZED = "prefect.asset.materialization.succeeded"
EVENT = ".workspace-events-timeline-content"  # an event in the Event Feed
SCREENSHOTS = {"run": "ui-flow-run.png", "lineage": "ui-materializations.png",
               "sheet": "ui-contact-sheet.png", "gallery": "gallery.png"}  # fmt: skip


def ensure_chromium() -> float:
    """Install Debian's chromium if /usr/bin/chromium is missing; the seconds it took."""
    if CHROMIUM.exists():
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"{CHROMIUM} is missing and cannot be installed here (that takes apt-get as root): "
            "install Debian's chromium package (`sudo apt-get install chromium`)"
        )
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # update first: package lists older than the archive name versions it no longer has
    for command in (["apt-get", "update"], INSTALL):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed with exit code {done.returncode}, so Debian's "
                f"chromium could not be installed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        raise RuntimeError(f"`{' '.join(INSTALL)}` succeeded but left no {CHROMIUM}")
    return time.monotonic() - started


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless, through Playwright (whose own browser download cannot
    reach its CDN here)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed once per session if missing."""
    try:
        seconds = ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    if seconds:
        print(f"installed Debian's chromium in {seconds:.1f} s")
    return CHROMIUM


@pytest.fixture(scope="module")
def _browser(chromium: Path) -> Iterator[Browser]:
    """A headless browser for one test file (the sync API must not outlive it: it would
    share the thread with pytest-asyncio's loop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def ui_page(_browser: Browser) -> Iterator[Page]:
    """A fresh page of `VIEWPORT` size."""
    page = _browser.new_page(viewport=VIEWPORT)
    try:
        yield page
    finally:
        page.close()


def run_demo(server: Cluster, output: Path) -> dict[str, Any]:
    """Run `grok-video demo --output OUTPUT` against `server`; its report.json."""
    done = run_cli("demo", "--output", str(output), "--no-progress", env=server.env,
                   cwd=server.root)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"grok-video demo exited {done.returncode}\n{done.stdout}{done.stderr}")
    return json.loads((output / "report.json").read_text())


def show_artifacts(page: Page, ui_url: str, flow_run_id: str) -> dict[str, str]:
    """Open a flow run's page on its Artifacts tab (the tab is not kept in the address); the
    address of each artifact card's page, by the card's title (the artifact's key)."""
    page.goto(f"{ui_url}/runs/flow-run/{flow_run_id}")
    page.locator("li.p-tab#artifacts").click()
    cards = page.locator("a:has(.artifact-card)")
    cards.first.wait_for()
    return {
        card.locator(".artifact-card__title").inner_text(): ui_url + card.get_attribute("href")
        for card in cards.all()
    }


def open_artifact(page: Page, url: str) -> Locator:
    """An artifact's page; the part that draws its content (table, markdown, progress)."""
    page.goto(url)
    view = page.locator(".artifact-data-view")
    view.locator("table, article, .artifact-data-progress").first.wait_for()
    return view


def _wait_for_events(api_url: str, name: str, count: int, timeout: float = 30) -> None:
    """Wait until the server has stored `count` events named `name` (it writes them in
    batches, and the feed asks again only once a minute)."""
    query = {"filter": {"event": {"name": [name]}}, "limit": count}
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{api_url}/events/filter", json=query, timeout=10)
        response.raise_for_status()
        stored = response.json()["total"]
        if stored >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{stored} of {count} {name} events stored after {timeout} s")
        time.sleep(0.5)


def show_materializations(page: Page, ui_url: str, count: int) -> dict[str, list[str]]:
    """Open the Event Feed of asset materializations once `count` are stored; the related
    resources (upstream assets, then the run, task and flow) of each materialized asset."""
    _wait_for_events(f"{ui_url}/api", MATERIALIZED, count)
    page.goto(f"{ui_url}/events?events={MATERIALIZED}")
    items = page.locator(EVENT)
    items.nth(count - 1).wait_for()
    resource = ".workspace-events-list-item__resource .event-resource-icon-text"
    related = ".event-related-key-value .event-resource-icon-text"
    return {
        item.locator(resource).inner_text().strip(): [
            " ".join(each.inner_text().split()) for each in item.locator(related).all()
        ]
        for item in items.all()
    }


def _screenshot(page: Page, path: Path, shown: Locator) -> None:
    """Screenshot the page as tall as it takes to show all of `shown` (the UI scrolls inside
    its layout, so a full-page screenshot would not), then give the page its size back."""
    boxes = [item.bounding_box() for item in shown.all()]
    bottom = max(box["y"] + box["height"] for box in boxes if box)
    page.set_viewport_size({**VIEWPORT, "height": max(VIEWPORT["height"], int(bottom) + 32)})
    page.wait_for_load_state("networkidle")  # the run graph redraws from its own requests
    page.screenshot(path=path)
    page.set_viewport_size(VIEWPORT)


def capture(
    page: Page, ui_url: str, report: dict[str, Any], folder: Path
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Screenshot the run's page with all its artifact cards and the feed of all its videos'
    materializations into `folder` (`SCREENSHOTS`); what `show_artifacts` and
    `show_materializations` found there."""
    cards = show_artifacts(page, ui_url, report["flow_run_id"])
    _screenshot(page, folder / SCREENSHOTS["run"], page.locator(".artifact-card"))
    succeeded = sum(item["status"] == "succeeded" for item in report["items"])
    materialized = show_materializations(page, ui_url, succeeded)
    _screenshot(page, folder / SCREENSHOTS["lineage"], page.locator(EVENT))
    summary = open_artifact(page, cards["grok-video-summary"])
    _screenshot(page, folder / SCREENSHOTS["sheet"], summary.locator("img"))
    page.goto((Path(report["output"]) / "index.html").as_uri())
    _screenshot(page, folder / SCREENSHOTS["gallery"], page.locator(".card"))
    return cards, materialized
