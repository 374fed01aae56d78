"""Shared test set-up: fixture modules live beside this file and are loaded as plugins; the
longest test files are run first."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "fixtures_media",
    "fixtures_emulator",
    "fixtures_cli",
    "fixtures_prefect",
    "fixtures_server",
    "fixtures_ui",
]

#: The test files that take longest, longest first (40-140 s each on 2 cores). xdist hands
#: whole files to its workers in collection order (`--no-loadscope-reorder`): started first,
#: these do not leave one worker busy at the end while the others wait.
LONGEST_FIRST = (
    "test_cli.py",
    "test_deployments.py",
    "test_reliability.py",
    "test_kills.py",
    "test_ui.py",
    "test_bad_input.py",
    "test_flows.py",
    "test_automations.py",
    "test_emulator.py",
    "test_client_emulator.py",
    "test_independent_faults.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of `LONGEST_FIRST` first, in its order; each file's tests keep theirs."""
    missing = [name for name in LONGEST_FIRST if not Path(__file__).with_name(name).exists()]
    assert not missing, f"LONGEST_FIRST names files that are gone: {missing}"
    rank = {name: number for number, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
