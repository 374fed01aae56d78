"""The documentation site: it builds with `mkdocs build --strict`, its reference pages list the
public API (read in a real browser), every ```python example in it is run by a test, and what
to do about each status and error code is what the code says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from docs_pages import DOCS, RUN_BY, python_blocks

from prefect_grok_video import errors, flows
from prefect_grok_video.errors import JOB_ERROR_ADVICE
from prefect_grok_video.report import ITEM_STATUSES, NEXT_STEPS

REPO = DOCS.parent


def _cell(text: str) -> str:
    """A table cell as the page writes it: first letter up, full stop."""
    return text[0].upper() + text[1:] + "."


def test_every_python_example_in_the_docs_is_run_by_a_test():
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if python_blocks(
        str(p.relative_to(DOCS)))}  # fmt: skip
    assert pages == set(RUN_BY), f"examples no test runs: {sorted(pages - set(RUN_BY))}"
    for page, test in RUN_BY.items():
        path, name = test.split("::")
        assert f"def {name}(" in (REPO / path).read_text(), f"{test} (for {page}) is gone"
        assert f'python_blocks("{page}")' in (REPO / path).read_text()


def test_troubleshooting_says_what_the_code_says_about_every_status_and_error_code():
    page = (DOCS / "troubleshooting.md").read_text()
    for status in ITEM_STATUSES:
        row = re.search(rf"^\| `{status}` \| (.*) \|$", page, re.M)
        assert row, f"no row for status {status}"
        if status in NEXT_STEPS:
            assert row.group(1) == _cell(NEXT_STEPS[status]), status
    for code, advice in JOB_ERROR_ADVICE.items():
        row = re.search(rf"^\| `{code}` \| (.*) \|$", page.split("## Error codes")[1], re.M)
        assert row and row.group(1) == _cell(advice), code


def test_the_readme_is_a_landing_page_that_links_every_page_of_the_site():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 80
    pages = {str(p.relative_to(REPO)) for p in DOCS.rglob("*.md") if p.name != "index.md"}
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    assert pages == linked, f"not linked from the README: {sorted(pages - linked)}"


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first run may install chromium
def test_the_site_builds_strict_and_its_reference_lists_the_public_api(ui_page, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from prefect import Flow, Task

    public = {name: getattr(flows, name) for name in flows.__all__}
    expected = {
        "flows": [name for name, value in public.items() if isinstance(value, Flow)],
        "tasks": [name for name, value in public.items() if isinstance(value, Task)],
        "blocks": ["GrokVideoCredentials"],
        "client": ["GrokVideoClient", "AsyncGrokVideoClient", "GrokVideoSettings"],
        "results": ["RunReport", "ItemResult", "ItemError", "ItemStatus", "ManifestRow"],
        "errors": [name for name in errors.__all__ if name.endswith("Error")],
    }
    assert (len(expected["flows"]), len(expected["tasks"])) == (4, 6)
    for page, names in expected.items():
        ui_page.goto((site / "reference" / page / "index.html").as_uri())
        headings = ui_page.locator("article h2, article h3").all_inner_texts()
        shown = {word for heading in headings for word in re.findall(r"\w+", heading)}
        missing = set(names) - shown
        assert not missing, f"reference/{page} does not show {sorted(missing)}: {headings}"
        assert ui_page.locator("article .doc-contents").count() >= len(names)
