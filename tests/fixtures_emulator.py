"""Emulator fixtures: a real HTTP emulator of the Grok video API on 127.0.0.1, fresh per test.

- `emulator`: a started `EmulatorServer` with test-friendly knobs (`TEST_KNOBS`: 0.2 s latency,
  no submit rate limit); everything else as the real service.
- `emulator_factory(config=None, **knobs)`: start more servers. With an `EmulatorConfig` it is
  used as given; otherwise `knobs` override `TEST_KNOBS` (pass `submit_rate=1.0` to get the
  real rate limit back). Every server is stopped at the end of the test.

Use `server.base_url`, `server.api_key` (or `server.headers`) and `server.state` for counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer

__all__ = ["TEST_KNOBS", "emulator", "emulator_factory"]

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
