"""`grok-video run` killed with SIGKILL mid-way, then run again: nothing is paid for twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from fixtures_cli import cli_command, cli_environment, run_cli
from fixtures_prefect import forget_submit_limit

from prefect_grok_video.policies import PollPolicy

pytestmark = pytest.mark.slow

#: Polls of this file's 1 s jobs.
POLL = PollPolicy(first_poll=0.2, min_interval=0.1)


def test_sigkill_mid_run_then_rerun_pays_for_no_row_twice(
    emulator_factory, tmp_path, prefect_server
):
    emulator = emulator_factory(latency=1.0, submit_rate=None)
    rows = 10
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "id,video,prompt\n"
        + "".join(f"r{i},https://cdn.test/{i}.mp4,scene {i}\n" for i in range(rows))
    )
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=POLL)
    args = ["run", str(manifest), "--output", str(tmp_path / "out"), "--submit-rate", "2",
            "--no-progress", "--report", str(tmp_path / "report.json")]  # fmt: skip

    # Its own process group, so the kill takes all it started, as losing the machine would.
    victim = subprocess.Popen(cli_command(*args), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while emulator.state.accepted < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    # Half-way between two submissions (they are 0.5 s apart): no submit is in flight.
    time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    forget_submit_limit(prefect_server)
    paid_before = emulator.state.accepted
    assert 4 <= paid_before < rows, "the kill should land mid-run"

    done = run_cli(*args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads((tmp_path / "report.json").read_text())
    assert [item["status"] for item in report["items"]] == ["succeeded"] * rows
    assert emulator.state.accepted == rows  # the rerun paid only for the rows never submitted
    assert sorted(emulator.state.accepted_by_input.values()) == [1] * rows
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == sorted(
        f"r{i}.mp4" for i in range(rows)
    )
