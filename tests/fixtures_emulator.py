"""Emulator fixtures: a real HTTP emulator of the Grok video API on 127.0.0.1, fresh per test.

- `emulator`: a started `EmulatorServer` with test-friendly knobs (`TEST_KNOBS`: 0.2 s latency,
  no submit rate limit, flat pictures); everything else as the real service.
- `emulator_factory(config=None, **knobs)`: start more servers. With an `EmulatorConfig` it is
  used as given; otherwise `knobs` override `TEST_KNOBS` (pass `submit_rate=1.0` to get the
  real rate limit back). Every server is stopped at the end of the test.

Use `server.base_url`, `server.api_key` (or `server.headers`) and `server.state` for counters.

- `emulator_process(*flags)`: start `grok-video emulator` in a process of its own (the command
  line's flags, e.g. `--no-rate-limit`), for tests where sharing this process's GIL with the
  server would change what is measured; returns its base URL. Stopped after the test.

Quick clients of these servers (their jobs take 0.2 s):

- `FAST_POLL`, `FAST_RETRY`: the policies to give a client (`poll=FAST_POLL, retry=FAST_RETRY`).
- `poll_env(policy)`: a `PollPolicy` as the GROK_VIDEO_POLL_* variables a run reads (for a
  subprocess's environment); `set_polls(monkeypatch, policy)` sets them in this process, and the
  `fast_polls` fixture sets `FAST_POLL` for one test.

What the emulator counted:

- `input_key(row, folder=None)`: the key `state.accepted_by_input` and each submission record
  count a manifest row's job under (`@<id>` for a row whose video is another row's result).
- `result_request_id(key)`: the job whose result URL an input key is, if it is one.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fixtures_media import sha256_key

from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
from prefect_grok_video.policies import PollPolicy, RetryPolicy

__all__ = [
    "FAST_POLL",
    "FAST_RETRY",
    "TEST_KNOBS",
    "credentials_for",
    "emulator",
    "emulator_factory",
    "emulator_process",
    "fast_polls",
    "input_key",
    "poll_env",
    "result_request_id",
    "set_polls",
]

#: Knobs of the `emulator` fixture: quick jobs, no rate limit.
#: Results are flat frames (no encoder) but where a test asks for `pictures="drawn"`.
TEST_KNOBS: dict[str, Any] = {"latency": 0.2, "submit_rate": None, "pictures": "flat"}
#: Polls that fit jobs of 0.2 s: the first after 0.05 s, none more than 0.2 s apart.
FAST_POLL = PollPolicy(first_poll=0.05, min_interval=0.02, max_interval=0.2)
#: Tiny backoffs (a client that ignored `Retry-After` would spend its attempts in ~0.2 s), and
#: a `Retry-After` over 5 s cut to 5 s, so that no test stalls on one.
FAST_RETRY = RetryPolicy(
    max_attempts=6, backoff_initial=0.01, backoff_max=0.05, jitter=0, max_retry_after=5
)


def credentials_for(api: Any = None, poll: PollPolicy = FAST_POLL, **fields: Any) -> Any:
    """A `GrokVideoCredentials` block for `api` (an emulator, or anything with `api_key` and
    `base_url`; or those given as `fields`) that polls by `poll`: a run given a block takes
    its settings from the block, not from the environment."""
    from prefect_grok_video.blocks import GrokVideoCredentials

    values = {"api_key": api.api_key, "base_url": api.base_url} if api is not None else {}
    return GrokVideoCredentials(
        **{**values, **fields}, poll_first=poll.first_poll,
        poll_min_interval=poll.min_interval, poll_max_interval=poll.max_interval,
    )  # fmt: skip


def poll_env(policy: PollPolicy = FAST_POLL) -> dict[str, str]:
    """`policy` as the GROK_VIDEO_POLL_* environment variables a run's settings read."""
    return {
        "GROK_VIDEO_POLL_FIRST": str(policy.first_poll),
        "GROK_VIDEO_POLL_MIN_INTERVAL": str(policy.min_interval),
        "GROK_VIDEO_POLL_MAX_INTERVAL": str(policy.max_interval),
    }


def set_polls(monkeypatch: pytest.MonkeyPatch, policy: PollPolicy = FAST_POLL) -> None:
    """Make runs in this process poll by `policy` (through the environment they read)."""
    for name, value in poll_env(policy).items():
        monkeypatch.setenv(name, value)


#: The media field a submission of each action is counted under (else its prompt).
_KEYED_BY = {"generate": "image", "edit": "video", "extend": "video"}


def input_key(row: Any, folder: str | os.PathLike[str] | None = None) -> str | None:
    """The key the emulator counts a submission of manifest `row` under: its video's (a
    generation's still's), else `prompt:sha256:<hex>` of its prompt. A URL is its own key;
    a local file (relative paths under `folder`) or a data URL is `sha256:<hex>` of its bytes
    (a data URL that does not decode, of its text); `@<id>` is the result of row `<id>`, whose
    key is that job's result URL. None when the row or the value is not something it counts."""
    if not isinstance(row, Mapping):
        return None
    action = row.get("action") or "extend"
    name = _KEYED_BY.get(action.strip().lower()) if isinstance(action, str) else None
    value = row.get(name or "video")
    if name == "image" and value in (None, ""):
        prompt = row.get("prompt")
        return "prompt:" + sha256_key(prompt.encode()) if isinstance(prompt, str) else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith("@"):
        return "@" + value[1:].strip()
    if value.startswith(("http://", "https://")):
        return value
    if value.startswith("data:"):
        try:
            return sha256_key(base64.b64decode(value.partition(",")[2], validate=True))
        except ValueError:
            return sha256_key(value.encode())
    path = Path(folder or ".") / value
    return sha256_key(path if path.is_file() else value.encode())


def result_request_id(key: str) -> str | None:
    """The request_id of the emulator job whose result URL `key` is (a chained row's input)."""
    match = re.search(r"/files/([^/?]+)\.mp4\?token=", key)
    return match.group(1) if match else None


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in this test poll by `FAST_POLL`, which fits the emulator's 0.2 s jobs."""
    set_polls(monkeypatch)


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
    from fixtures_cli import cli_command  # not at the top: fixtures_cli imports this module

    processes: list[subprocess.Popen] = []

    def start(*flags: str) -> str:
        process = subprocess.Popen(
            cli_command("emulator", "--port", "0", *flags), stdout=subprocess.PIPE, text=True
        )
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
