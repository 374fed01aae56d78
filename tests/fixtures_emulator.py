"""Emulator fixtures: a real HTTP emulator of the Grok video API on 127.0.0.1, fresh per test.

- `emulator`: a started `EmulatorServer` with test-friendly knobs (`TEST_KNOBS`: 0.2 s latency,
  no submit rate limit); everything else as the real service.
- `emulator_factory(config=None, **knobs)`: start more servers. With an `EmulatorConfig` it is
  used as given; otherwise `knobs` override `TEST_KNOBS` (pass `submit_rate=1.0` to get the
  real rate limit back). Every server is stopped at the end of the test.

Use `server.base_url`, `server.api_key` (or `server.headers`) and `server.state` for counters.

- `emulator_process(*flags)`: start `grok-video emulator` in a process of its own (the command
  line's flags, e.g. `--no-rate-limit`), for tests where sharing this process's GIL with the
  server would change what is measured; returns its base URL. Stopped after the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer

__all__ = ["TEST_KNOBS", "emulator", "emulator_factory", "emulator_process"]

#: Knobs of the `emulator` fixture: quick jobs, no rate limit.
TEST_KNOBS: dict[str, Any] = {"latency": 0.2, "submit_rate": None}


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators with a given `EmulatorConfig` or knobs over `TEST_KNOBS`; stop them after."""
    servers: list[EmulatorServer] = []

    def start(config: EmulatorConfig | None = None, **knobs: Any) -> EmulatorServer:
        if config is None:
            config = EmulatorConfig(**{**TEST_KNOBS, **knobs})
        elif knobs:
            config = config.replace(**knobs)
        server = EmulatorServer(config)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(wait=False)  # wind down together: each stop takes ~0.1 s
    for server in servers:
        server.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A started emulator with `TEST_KNOBS`, on a free port, with fresh state."""
    return emulator_factory()


@pytest.fixture
def emulator_process() -> Iterator[Callable[..., str]]:
    """Start `grok-video emulator` processes with the given flags; return each one's base URL."""
    processes: list[subprocess.Popen] = []

    def start(*flags: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect_grok_video.cli", "emulator", "--port", "0", *flags],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        processes.append(process)
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"GROK_VIDEO_BASE_URL=(\S+)", line)
            if match:
                return match.group(1)
        raise AssertionError("the emulator did not print its URL")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
