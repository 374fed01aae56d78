"""An independent faulty implementation of API.md plus two SIGKILLs mid-run lose no row and pay
for no row twice.

`IndependentAPI` (written from API.md, not the project's emulator) runs in this process with
seeded faults: 5xx answers to submits and polls, a 429 storm and stray 429s, answers dropped
after the job was made, first jobs failing with `service_unavailable`, slow polls. `grok-video
run` runs as a subprocess in its own process group and is killed with SIGKILL twice: once while
it is submitting, once when every row was submitted and jobs are still pending. A third run
finishes the manifest; `invariants.check_run` and the checks below judge the outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_cli import cli_command, cli_environment
from fixtures_media import sha256_key
from fixtures_prefect import forget_submit_limit
from independent_api import IndependentAPI
from invariants import check_run

from prefect_grok_video.policies import PollPolicy

pytestmark = pytest.mark.slow

ROWS = 20
CLIP_ROWS = {2: 3.0, 11: 4.0}  # row number -> seconds of a real local H.264 clip
PROMPTS = {5: "MODERATE the crowd cheers", 9: "EXPIRE the lights dim",
           14: "FAIL:internal_error the river floods"}  # fmt: skip
LATENCY = 1.5
SUBMIT_RATE = 4.0
#: Seed 29 drops the answers of rows r03 and r06 and fails the first job of r09, r13, r14 and
#: r16 (and maybe of the clips, whose keys are their bytes' hashes) with service_unavailable.
SEED = 29
FAULTS: dict[str, Any] = {
    "seed": SEED,
    "p_submit_5xx": 0.15,
    "p_poll_5xx": 0.15,
    "p_submit_429": 0.05,
    "storm_429": (8, 2.0),  # every submit refused for 2 s once 8 jobs exist
    "p_drop_after_accept": 0.05,
    "p_first_attempt_unavailable": 0.30,
    "slow_poll_seconds": 0.4,
    "p_slow_poll": 0.1,
}
#: A kill may cost one extra payment only for a job accepted this shortly before it (the
#: client had not yet persisted the request_id).
KILL_WINDOW = 1.0
#: Polls of the API's 1.5 s jobs.
POLL = PollPolicy(first_poll=0.3, min_interval=0.2)


def _manifest(folder: Path, clips: dict[int, Path]) -> tuple[Path, dict[str, str]]:
    """Write the manifest; return it and each row id's input key as the service names it."""
    lines, input_of = ["id,video,prompt,duration"], {}
    for number in range(ROWS):
        row_id = f"r{number:02d}"
        if number in clips:
            video = str(clips[number])
            input_of[row_id] = sha256_key(clips[number])
        else:
            video = f"https://media.example.org/indep/clip-{number:02d}.mp4"
            input_of[row_id] = video
        prompt = PROMPTS.get(number, f"scene {number} moves on")
        lines.append(f"{row_id},{video},{prompt},{2 + number % 5}")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, input_of


def _tail(log: Path, lines: int = 40) -> str:
    """The end of a run's log, for failure messages."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen, log: Path, what: str, timeout: float
) -> None:
    """Poll `condition` until it holds; fail if the run ends or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        code = process.poll()
        if code is not None:
            pytest.fail(f"the run ended (exit {code}) before {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.02)


def _kill(process: subprocess.Popen, api_url: str) -> float:
    """SIGKILL the run's whole process group, as losing the machine would; when it happened."""
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    forget_submit_limit(api_url)
    process.wait(timeout=10)
    return killed_at


def _claimed_rows(home: Path) -> set[str]:
    """Row ids of every submit claim written under the runs' Prefect home."""
    return {json.loads(claim.read_text())["row_id"] for claim in home.rglob("*.claim")}


def _age_at_kill(job: dict[str, Any], kills: list[float]) -> float | None:
    """Seconds from the job's acceptance to the first kill after it (None: no kill after it)."""
    return min((kill - job["accepted_at"] for kill in kills if kill >= job["accepted_at"]),
               default=None)  # fmt: skip


def test_faulty_independent_api_and_two_sigkills_lose_no_row_and_pay_no_row_twice(
    tmp_path: Path, mp4_factory: Callable[..., Path], prefect_server: str
) -> None:
    """Kill the CLI while submitting and while jobs are pending; a third run finishes."""
    started = time.monotonic()
    clips = {number: mp4_factory(seconds=seconds) for number, seconds in CLIP_ROWS.items()}
    manifest, input_of = _manifest(tmp_path, clips)
    output, report_path = tmp_path / "out", tmp_path / "report.json"
    command = cli_command(
        "run", str(manifest), "--output", str(output), "--submit-rate", str(SUBMIT_RATE),
        "--no-progress", "--report", str(report_path),
    )  # fmt: skip

    with IndependentAPI(latency=LATENCY, rate_capacity=1000, **FAULTS) as api:
        env = cli_environment(tmp_path / "home", api=api, api_url=prefect_server, poll=POLL)

        def start(number: int) -> tuple[subprocess.Popen, Path]:
            log = tmp_path / f"run{number}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=tmp_path,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            return process, log

        def keys_submitted() -> set[str]:
            return {record["input_key"] for record in api.records()}

        kills: list[float] = []
        # 1. Killed while submitting: a little after the 5th job was accepted.
        first, log = start(1)
        try:
            _wait_for(lambda: api.accepted >= 5, first, log, "5 accepted jobs", 60)
            time.sleep(0.1)
            kills.append(_kill(first, prefect_server))
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        submitted_at_kill1 = len(keys_submitted())
        assert submitted_at_kill1 < ROWS, "the first kill should land while rows are unsubmitted"

        # 2. Killed while jobs are pending: every row has a job (but those the first kill cut
        # off on their way out: claimed with no job made, they are `unknown` and not sent
        # again), none accepted in the last 0.3 s (no submit in flight), and a job is still
        # running at the service.
        never_sent = {input_of[row_id] for row_id in _claimed_rows(tmp_path / "home")}
        never_sent -= keys_submitted()
        expected_keys = set(input_of.values()) - never_sent

        def all_submitted_and_pending() -> bool:
            records, now = api.records(), time.monotonic()
            if not expected_keys <= {r["input_key"] for r in records}:
                return False
            newest = max(r["accepted_at"] for r in records)
            return now - newest >= 0.3 and now - newest < LATENCY - 0.2

        second, log = start(2)
        try:
            _wait_for(all_submitted_and_pending, second, log, "every row submitted", 60)
            pending = sum(time.monotonic() - r["accepted_at"] < LATENCY for r in api.records())
            kills.append(_kill(second, prefect_server))
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
        assert pending >= 1
        assert not report_path.exists(), "a killed run should not have finished"

        # 3. Run to the end.
        third, log = start(3)
        try:
            code = third.wait(timeout=90)
        finally:
            if third.poll() is None:
                os.killpg(third.pid, signal.SIGKILL)
        records = api.records()
        faults = dict(api.faults)

    assert report_path.exists(), f"no report (exit {code}):\n{_tail(log)}"
    report = json.loads(report_path.read_text())
    items = {item["id"]: item for item in report["items"]}
    assert code == (0 if all(i["status"] == "succeeded" for i in items.values()) else 1), _tail(log)

    figures = check_run(report, records, output, input_of=input_of)

    # Every row is in the report once, with an outcome.
    assert sorted(items) == sorted(input_of) and len(report["items"]) == ROWS
    jobs_of = {row_id: [r for r in records if r["input_key"] == key]
               for row_id, key in input_of.items()}  # fmt: skip
    for jobs in jobs_of.values():
        jobs.sort(key=lambda r: r["accepted_at"])

    # A submission on its way when a kill came (its job accepted shortly before, or not at
    # all) had no time to be recorded: its claim stays, and the rerun reports its row
    # `unknown` (a job may exist) instead of paying again.
    cut_off = {row_id for row_id, jobs in jobs_of.items()
               if not jobs or any((age := _age_at_kill(job, kills)) is not None
                                  and age <= KILL_WINDOW for job in jobs)}  # fmt: skip
    # A row whose submit answer was dropped is `unknown` and was never submitted again.
    dropped_rows = set()
    for row_id, jobs in jobs_of.items():
        for index, job in enumerate(jobs):
            if not job["dropped"]:
                continue
            dropped_rows.add(row_id)
            assert index + 1 == len(jobs), f"{row_id}: submitted again after a dropped answer"
            item = items[row_id]
            assert (item["status"], item["request_id"]) == ("unknown", None), item
            assert item["error"]["code"] == "submit_outcome_unknown", item

    # Every other row ends as its last job did, or `unknown` if a kill cut its answer off.
    expected = {"done": "succeeded", "moderated": "moderated", "failed": "failed",
                "expired": "expired"}  # fmt: skip
    unknown_after_kill = []
    for row_id, jobs in jobs_of.items():
        item = items[row_id]
        if row_id in dropped_rows:
            continue
        if item["status"] == "unknown" and item["request_id"] is None:
            assert row_id in cut_off and len(jobs) <= 1, (row_id, item, jobs, kills)
            assert "ended before its answer was recorded" in item["error"]["message"], item
            unknown_after_kill.append(row_id)
            continue
        assert jobs, f"{row_id}: never submitted"
        assert item["request_id"] == jobs[-1]["request_id"], (row_id, item, jobs)
        assert item["status"] == expected[jobs[-1]["outcome"]], (row_id, item, jobs)

    # Nothing was paid twice: every job the service made was one the run's rows counted, kills
    # or not (a row cut off by a kill counts the job its claim stands for).
    counted = {row_id: 1 if row_id in unknown_after_kill else item["attempts"]
               for row_id, item in items.items()}  # fmt: skip
    extra = {row_id: len(jobs) - counted[row_id] for row_id, jobs in jobs_of.items()}
    assert all(n >= 0 for row_id, n in extra.items() if row_id not in unknown_after_kill), (
        f"the report counts unpaid attempts: {extra}"
    )
    paid_twice = sorted(row_id for row_id, n in extra.items() if n > 0)
    elapsed = time.monotonic() - started
    print(
        f"\nrows {ROWS}; faults injected {faults}; kills {len(kills)} "
        f"(rows with a job at kill 1: {submitted_at_kill1}, jobs pending at kill 2: {pending}); "
        f"paid {figures.paid} (resubmissions {figures.resubmissions}); rows paid twice "
        f"{len(paid_twice)} {paid_twice}; rows unknown after a kill {unknown_after_kill}; "
        f"outcomes {dict(figures.statuses)}; dropped rows {sorted(dropped_rows)}; "
        f"{elapsed:.1f} s"
    )
    assert paid_twice == []

    # The faults really happened, or the run proved nothing.
    for fault in ("submit_5xx", "poll_5xx", "storm_429", "drop_after_accept",
                  "first_attempt_unavailable", "slow_poll"):  # fmt: skip
        assert faults.get(fault, 0) >= 1, f"no {fault} was injected: {faults}"
    assert figures.resubmissions >= 1
