"""`grok-video run` killed with SIGKILL at every stage of a run (while submitting, waiting and
downloading), started again each time, then run to the end; and killed while a chain's rows wait
on their upstream's job, then run again: the invariants of `tests/invariants.py` hold, and no
partial file is left."""

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
from test_reliability import MIXED, manifest_rows, mixed_rows

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
    figures = check_run(report, state.submissions, output, input_of=input_of)
    print("kills (stage, accepted, polls, downloads, partial files):", seen)
    print("after the last run:", figures)
    assert any(partials for *_, partials in seen), "no kill landed mid-download"
    for item in report["items"]:
        # a kill may cut a submission off on its way out: its row is then `unknown`, not paid
        # twice (tests/test_claims.py makes that happen on purpose)
        assert item["status"] in {"succeeded", "moderated", "expired", "failed"} or (
            item["status"] == "unknown"
            and "ended before its answer was recorded" in item["error"]["message"]
        ), item


#: Seconds the upstream of the chains c1 → c2 → c3 and c1 → c1-longer takes.
SLOW_UPSTREAM = 8.0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sigkill_while_a_chain_waits_on_its_upstream_then_a_rerun(
    emulator_factory, h264_clip, tmp_path, prefect_server
):
    """`grok-video run` of the mixed manifest SIGKILLed while c2 and c1-longer wait for their
    upstream c1's (slow) job; the rerun takes up c1's job where it was, finishes every row,
    pays for nothing twice, and sends the chained rows only once their upstreams are done."""
    emulator = emulator_factory(latency=1.0, submit_rate=None, seed=33)
    rows, input_of = mixed_rows(tmp_path, h264_clip, slow_upstream=SLOW_UPSTREAM)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(rows))
    output, report_file = tmp_path / "videos", tmp_path / "report.json"
    args = ["run", str(manifest), "--output", str(output), "--submit-rate", "5", "--no-progress",
            "--report", str(report_file)]  # fmt: skip
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=POLL)
    state = emulator.state
    prompts = {row["id"]: row["prompt"] for row in rows}

    def sent(row_id: str) -> list:
        return [r for r in state.submissions if r.prompt == prompts[row_id]]

    process = subprocess.Popen(cli_command(*args), env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    _until(lambda: sent("c1") or process.poll() is not None)
    (upstream,) = sent("c1")
    # well after c1 was accepted (its request_id is persisted) and long before its job is done
    time.sleep(2.0)
    assert process.poll() is None, "the run ended before the kill"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    forget_submit_limit(prefect_server)
    killed_at = state.clock()
    assert killed_at < state.get_job(upstream.request_id).finished_at, "c1 was done already"
    assert not any(sent(row_id) for row_id in ("c2", "c3", "c1-longer")), "sent before c1 was done"
    paid_before = state.accepted

    done = run_cli(*args, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # some rows end as they must
    report = json.loads(report_file.read_text())
    figures = check_run(report, state, output, input_of=input_of)
    print(f"chain kill: {paid_before} paid before the kill;", figures)
    items = {item["id"]: item for item in report["items"]}
    assert {row_id: item["status"] for row_id, item in items.items()} == MIXED
    assert items["c1"]["request_id"] == upstream.request_id  # waited on again, not paid again
    assert [len(sent(row_id)) for row_id in ("c1", "c2", "c3", "c1-longer")] == [1, 1, 1, 1]
    assert min(r.monotonic for r in sent("c2") + sent("c1-longer")) > killed_at
