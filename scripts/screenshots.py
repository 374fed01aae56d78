"""Regenerate the documentation's screenshots of the Prefect UI: `python scripts/screenshots.py`.

Starts `prefect server start` in a temporary folder, runs `grok-video demo` against it, and
saves the run's page with its artifacts and the Event Feed of its videos' asset materializations
into docs/ (PNG, 1400 px wide), with the helpers that tests/test_ui.py checks those pages with.
Needs the dev extra (Playwright) and Debian's chromium, which it installs when missing (as root).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the server and browser helpers of the UI test

from fixtures_server import start_prefect_server  # noqa: E402
from fixtures_ui import (  # noqa: E402
    SCREENSHOTS,
    VIEWPORT,
    capture,
    ensure_chromium,
    launch_chromium,
    run_demo,
)


def main(argv: list[str] | None = None) -> int:
    """Take both screenshots; print where they are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs", help="default: docs/")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grok-video-") as tmp:
        root = Path(tmp)
        server = start_prefect_server(root)
        try:
            report = run_demo(server, root / "grok-video-demo")
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                capture(browser.new_page(viewport=VIEWPORT), server.ui_url, report, args.output)
                browser.close()
        finally:
            server.stop()
    for name in SCREENSHOTS.values():
        print(args.output / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
