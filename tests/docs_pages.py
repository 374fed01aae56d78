"""The documentation's pages and their code examples, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"

#: The pages whose ```python examples a test runs, and the tests that do: test_docs.py fails
#: when a page gets an example no test runs.
RUN_BY = {
    "guides/python.md": "tests/test_examples.py::test_the_composition_examples_run_as_written",
    "guides/client.md": (
        "tests/test_client_emulator.py::test_the_client_example_runs_against_the_emulator"
    ),
}


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of `docs/<page>`, in order."""
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
