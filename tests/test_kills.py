"""`grok-video run` killed with SIGKILL at every stage of a run (while submitting, waiting and
downloading), started again each time, then run to the end: the invariants of
`tests/invariants.py` hold, and no partial file is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from fixtures_cli import cli_command, cli_environment, run_cli
from fixtures_prefect import forget_submit_limit
from invariants import check_run
from test_reliability import manifest_rows

from prefect_grok_video.policies import PollPolicy

#: Polls of this file's 6 s jobs, slower than `FAST_POLL` on purpose: each stage of a run
#: (submitting, waiting, downloading) lasts long enough for a kill to land in it.
POLL = PollPolicy(first_poll=0.5, min_interval=0.3, max_interval=1)


def _until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_five_sigkills_at_every_stage_then_a_rerun(
    emulator_factory, h264_clip, tmp_path, prefect_server
):
    """`grok-video run` killed with SIGKILL while submitting (twice), while waiting, and while
    downloading (twice); each time started again; then run to the end."""
    emulator = emulator_factory(latency=6.0, submit_rate=None, download_seconds=1.5, seed=31,
                                p_first_attempt_unavailable=0.2)  # fmt: skip
    rows, input_of = manifest_rows(h264_clip)
    rows = [{**row, "duration": 4} for row in rows]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(rows))
    output = tmp_path / "videos"
    report_file = tmp_path / "report.json"
    args = ["run", str(manifest), "--output", str(output), "--submit-rate", "3", "--no-progress",
            "--report", str(report_file)]  # fmt: skip
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=POLL)
    state = emulator.state
    polls = lambda: sum(state.polls.values())  # noqa: E731
    downloads = lambda: sum(state.downloads.values())  # noqa: E731
    # Each kill point is reached by the run started just before it: counts are taken then.
    kill_points = [
        ("submitting", lambda base: state.accepted >= base["accepted"] + 3),
        ("submitting again", lambda base: state.accepted >= base["accepted"] + 4),
        ("waiting", lambda base: polls() >= base["polls"] + 3),
        ("downloading", lambda base: downloads() >= base["downloads"] + 1),
        ("downloading again", lambda base: downloads() >= base["downloads"] + 1),
    ]
    seen = []
    for stage, reached in kill_points:
        base = {"accepted": state.accepted, "polls": polls(), "downloads": downloads()}
        process = subprocess.Popen(cli_command(*args), env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        _until(lambda r=reached, b=base, p=process: r(b) or p.poll() is not None)
        assert process.poll() is None, f"the run ended before the kill point {stage!r}"
        time.sleep(0.1)  # between two submissions (they are a third of a second apart)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        forget_submit_limit(prefect_server)
        partials = [p.name for p in output.glob(".*.part")] if output.exists() else []
        seen.append((stage, state.accepted, polls(), downloads(), len(partials)))
    done = run_cli(*args, env=env, cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(report_file.read_text())
    figures = check_run(report, state.submissions, output, input_of=input_of, kills=5)
    print("kills (stage, accepted, polls, downloads, partial files):", seen)
    print("after the last run:", figures)
    assert any(partials for *_, partials in seen), "no kill landed mid-download"
    assert {item["status"] for item in report["items"]} <= {
        "succeeded", "moderated", "expired", "failed"}  # fmt: skip
