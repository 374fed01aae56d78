"""Never paid twice across processes: a run killed between the service accepting its jobs and
their request_ids being recorded, and two runs of the same rows at once (as a chunk run started
again while the first is alive). The emulator holds each answer back for a while after it has
accepted (and billed) the job, so both windows are wide open; the claims of flows/engine/claims.py
must close them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fixtures_cli import cli_command, cli_environment, run_cli
from fixtures_emulator import FAST_POLL
from fixtures_prefect import forget_submit_limit

ROWS = 3


def _manifest(tmp_path: Path) -> Path:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,video,prompt,duration\n" + "".join(
        f"clip-{i},https://cdn.test/{i}.mp4,scene {i} goes on,4\n" for i in range(ROWS)
    ))  # fmt: skip
    return manifest


def _run_args(manifest: Path, tmp_path: Path, report: str) -> list[str]:
    return ["run", str(manifest), "--output", str(tmp_path / "videos"), "--submit-rate", "20",
            "--no-progress", "--report", str(tmp_path / report)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_run_killed_while_its_jobs_are_accepted_but_unanswered_is_not_paid_again(
    emulator_factory, tmp_path, prefect_server
):
    """SIGKILL once the service has accepted all three jobs: the first one's answer came (a
    run's first submission goes alone), the other two are accepted and unanswered. The rerun
    does not submit those again (it did before, paying each twice): their rows are `unknown`,
    saying which process's submission was cut off and that a job may exist; the first row
    succeeds. A third run still pays nothing."""
    emulator = emulator_factory(latency=1.0, submit_rate=None, accepted_answer_seconds=4.0)
    manifest = _manifest(tmp_path)
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=FAST_POLL)
    process = subprocess.Popen(
        cli_command(*_run_args(manifest, tmp_path, "first.json")), env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while emulator.state.accepted < ROWS:
        assert process.poll() is None and time.monotonic() < deadline, "never submitted"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    forget_submit_limit(prefect_server)  # the killed run's batch of slots need not decay

    started = time.monotonic()
    again = run_cli(*_run_args(manifest, tmp_path, "second.json"), env=env, cwd=tmp_path)
    took = time.monotonic() - started
    assert again.returncode == 1, again.stdout + again.stderr
    assert emulator.state.accepted == ROWS, "a job was paid for twice"
    report = json.loads((tmp_path / "second.json").read_text())
    first, *cut_off = report["items"]
    assert first["status"] == "succeeded", first
    for item in cut_off:
        assert (item["status"], item["request_id"]) == ("unknown", None), item
        message = item["error"]["message"]
        assert f"pid {process.pid}" in message and "a job may exist and be billed" in message
    # the claims' holder died on this host: the rerun knew at once, without waiting them out
    assert took < 25, f"the rerun took {took:.1f} s"

    third = run_cli(*_run_args(manifest, tmp_path, "third.json"), env=env, cwd=tmp_path)
    assert third.returncode == 1, third.stdout + third.stderr
    assert emulator.state.accepted == ROWS
    statuses = [item["status"] for item in json.loads((tmp_path / "third.json").read_text())[
        "items"]]  # fmt: skip
    assert statuses == ["succeeded", "unknown", "unknown"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_runs_of_the_same_rows_at_once_pay_each_job_once(
    emulator_factory, tmp_path, prefect_server
):
    """Two `grok-video run`s of one manifest, sharing result storage, the second started while
    the first's submissions wait for their answers: the second waits for the first's
    request_ids instead of submitting too. Both succeed with the same jobs, each paid once."""
    emulator = emulator_factory(latency=1.0, submit_rate=None, accepted_answer_seconds=3.0)
    manifest = _manifest(tmp_path)
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=FAST_POLL)
    first = subprocess.Popen(
        cli_command(*_run_args(manifest, tmp_path, "first.json")), env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while emulator.state.accepted < 1:
            assert first.poll() is None and time.monotonic() < deadline, "never submitted"
            time.sleep(0.05)
        second = run_cli(*_run_args(manifest, tmp_path, "second.json"), env=env, cwd=tmp_path)
        assert first.wait(timeout=120) == 0, first.stdout.read() if first.stdout else ""
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert second.returncode == 0, second.stdout + second.stderr
    assert emulator.state.accepted == ROWS, "a job was paid for twice"
    reports = [json.loads((tmp_path / name).read_text()) for name in ("first.json", "second.json")]
    ids = [sorted(item["request_id"] for item in report["items"]) for report in reports]
    assert ids[0] == ids[1] and len(set(ids[0])) == ROWS
