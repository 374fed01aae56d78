"""The `grok-video` command line in subprocesses, each with an environment of its own.

- `cli_environment(home, *, api=None, api_url=None, poll=None, **extra)`: this process's
  environment without any PREFECT_* or GROK_VIDEO_* variable from outside, with Prefect at home
  in `home` and analytics off; optionally the Prefect server to use (`api_url`), the video API's
  key and base URL (`api`: an `EmulatorServer`, an `IndependentAPI`, anything with `.api_key`
  and `.base_url`) and how runs poll (`poll`, a `PollPolicy`: `FAST_POLL` fits the emulator).
- `cli_command(*args)`: the command line of `grok-video ARGS`, for `subprocess.Popen`.
- `run_cli(*args, env, cwd, timeout=240)`: run `grok-video ARGS` to its end, output captured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from fixtures_emulator import poll_env

from prefect_grok_video.policies import PollPolicy

__all__ = ["cli_command", "cli_environment", "run_cli"]


def cli_environment(
    home: str | os.PathLike[str],
    *,
    api: Any = None,
    api_url: str | None = None,
    poll: PollPolicy | None = None,
    **extra: str,
) -> dict[str, str]:
    """An environment for a `grok-video` (or `prefect`) subprocess: nothing Prefect or Grok
    video from outside; `PREFECT_HOME` is `home`; then `api_url`, `api`, `poll` and `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "GROK_VIDEO_"))
    }
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    if api is not None:
        env.update(GROK_VIDEO_API_KEY=api.api_key, GROK_VIDEO_BASE_URL=api.base_url)
    if poll is not None:
        env.update(poll_env(poll))
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    """The command line of `grok-video ARGS`, run by this test's Python."""
    return [sys.executable, "-m", "prefect_grok_video.cli", *args]


def run_cli(
    *args: str, env: dict[str, str], cwd: str | os.PathLike[str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run `grok-video ARGS` in `cwd` to its end; its exit code and UTF-8 output."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, encoding="utf-8", env=env,
        cwd=cwd, timeout=timeout,
    )  # fmt: skip
