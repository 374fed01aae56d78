"""What must hold after any run, however it was disturbed: the checks of the reliability suites.

`check_run(report, emulator_state, output, rows=..., kills=...)` asserts, and returns figures:

1. every valid row of the manifest ends with exactly one outcome;
2. paid submissions per row <= 1 + the resubmissions its retryable asynchronous failures
   (`service_unavailable`, `internal_error`) called for, + at most one per kill (a kill that
   lands between the service accepting a submit and its request_id being persisted);
3. no partial or corrupt file under `output`: exactly one `<id>.mp4` per succeeded row, with
   the size and sha256 the report gives, and nothing else (no temporary `.part` file);
4. the report agrees with what the emulator recorded: each row's request_id is a job the
   emulator accepted for that row's input, and its status is that job's outcome.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RETRYABLE = {"service_unavailable", "internal_error"}
OUTCOMES = {"succeeded", "failed", "moderated", "expired", "timed_out", "invalid", "unknown"}
#: How the emulator's recorded outcome of a job shows in a report.
_REPORTED = {"done": "succeeded", "moderated": "moderated", "failed": "failed",
             "expired": "expired"}  # fmt: skip


@dataclass
class Figures:
    """What one checked run amounted to, for the README's reliability table."""

    rows: int
    paid: int
    resubmissions: int
    extra_paid: int  # paid beyond 1 + resubmissions: only ever from kills
    statuses: Counter


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def check_run(
    report: Any,
    submissions: list[Any],
    output: Path,
    *,
    input_of: dict[str, str],
    kills: int = 0,
) -> Figures:
    """Assert the four invariants. `submissions` are the emulator's records (objects or dicts
    with `request_id`, `input_key`, `outcome`, `error_code`); `input_of` maps each row id to
    its input key (the URL, or `sha256:<hex>` of a file's bytes)."""
    items = _field(report, "items")
    ids = [_field(item, "id") for item in items]
    # 1. exactly one outcome per row
    assert sorted(ids) == sorted(input_of), "a row is missing from, or repeated in, the report"
    for item in items:
        assert _field(item, "status") in OUTCOMES

    records = [r if isinstance(r, dict) else vars(r) for r in submissions]
    by_input: dict[str, list[dict]] = {}
    for record in records:
        by_input.setdefault(record["input_key"], []).append(record)
    by_request = {record["request_id"]: record for record in records}

    # 2. paid at most once, plus the resubmissions retryable failures called for, plus kills
    paid = resubmissions = extra = 0
    for row_id, key in input_of.items():
        jobs = by_input.get(key, [])
        retried = sum(1 for job in jobs if job.get("error_code") in RETRYABLE)
        allowed = 1 + retried
        paid += len(jobs)
        resubmissions += min(retried, max(0, len(jobs) - 1))
        extra += max(0, len(jobs) - allowed)
        assert len(jobs) <= allowed + kills, (
            f"row {row_id}: paid {len(jobs)} times, allowed {allowed} (+{kills} kills): "
            f"{[(j['request_id'], j.get('error_code')) for j in jobs]}"
        )
    assert extra <= kills, f"{extra} payments beyond the allowance with only {kills} kills"

    # 3. only whole, verified videos in the output folder
    succeeded = {_field(i, "id"): i for i in items if _field(i, "status") == "succeeded"}
    present = sorted(p.name for p in output.iterdir()) if output.exists() else []
    assert present == sorted(f"{row_id}.mp4" for row_id in succeeded), present
    for row_id, item in succeeded.items():
        data = (output / f"{row_id}.mp4").read_bytes()
        assert len(data) == _field(item, "size"), f"{row_id}: size differs from the report"
        assert hashlib.sha256(data).hexdigest() == _field(item, "sha256"), f"{row_id}: corrupt"

    # 4. the report agrees with the emulator
    for item in items:
        row_id, status = _field(item, "id"), _field(item, "status")
        request_id = _field(item, "request_id")
        if status in ("invalid",):
            assert not by_input.get(input_of[row_id]), f"{row_id}: invalid but submitted"
            continue
        if status == "unknown" and request_id is None:
            continue
        assert request_id in by_request, f"{row_id}: {request_id} is not a job the service made"
        job = by_request[request_id]
        assert job["input_key"] == input_of[row_id], f"{row_id}: its job is another row's"
        if status != "timed_out" and job.get("outcome") in _REPORTED:
            expected = _REPORTED[job["outcome"]]
            assert status == expected or (status == "failed" and expected == "succeeded"), (
                f"{row_id}: reported {status}, the service says {job['outcome']}"
            )  # a succeeded job whose download failed is reported failed
    return Figures(
        len(items), paid, resubmissions, extra, Counter(_field(i, "status") for i in items)
    )
