"""What must hold after any run, however it was disturbed: the checks of the reliability suites.

`check_run(report, service, output, input_of=...)` asserts, and returns figures:

1. every row of the manifest ends with exactly one outcome;
2. paid submissions per row <= 1 + the resubmissions its retryable asynchronous failures
   (`service_unavailable`, `internal_error`) called for, however the run was killed (a kill
   between the service accepting a submit and its request_id being persisted leaves a claim:
   flows/engine/claims.py); a row that ended `invalid` or `upstream_failed` was never paid for, and
   no job was paid for that no row asked for;
3. no partial or corrupt file under `output`: exactly one `<id>.mp4` per succeeded row, with
   the size and sha256 the report gives, and nothing else (no temporary `.part` file);
4. the report agrees with what the emulator recorded: each row's request_id is a job the
   emulator accepted for that row's input (and prompt), and its status is that job's outcome;
5. chains: a row whose video is another row's result (`@<id>`) was sent the result of one of
   that row's jobs, only once that job was done (its submission's `monotonic` is not before
   the job's `finished_at`), and was never sent when that row ended without a result (it then
   ended `upstream_failed`, and only then).

`service` is the emulator's state (its `submissions` and `get_job`), or, for a service without
chains, a list of submission records (objects or dicts with `request_id`, `input_key`,
`prompt`, `outcome`, `error_code`). `input_of` maps each row id to its input key as
`fixtures_emulator.input_key` gives it: a URL, `sha256:<hex>` of a file's bytes,
`prompt:sha256:<hex>` of a generation's prompt when it has no still, or `@<id>` for the result
of row `<id>`, whose key is only known once that row's job is done. Rows with the same key (one
clip extended and edited, one upstream feeding two rows) are told apart by their prompts.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures_emulator import result_request_id

RETRYABLE = {"service_unavailable", "internal_error"}
OUTCOMES = {"succeeded", "failed", "moderated", "expired", "timed_out", "invalid", "unknown",
            "upstream_failed"}  # fmt: skip
#: Outcomes of rows that must never have been paid for.
UNPAID = {"invalid", "upstream_failed"}
#: How the emulator's recorded outcome of a job shows in a report.
_REPORTED = {"done": "succeeded", "moderated": "moderated", "failed": "failed",
             "expired": "expired"}  # fmt: skip


@dataclass
class Figures:
    """What one checked run amounted to, for the reliability table of docs/reliability.md."""

    rows: int
    paid: int
    resubmissions: int
    extra_paid: int  # paid beyond 1 + resubmissions: always 0 (check_run asserts it)
    statuses: Counter


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _has_result(item: Any) -> bool:
    """Whether a row's job made a video (a row whose download then failed ended `failed`)."""
    status, error = _field(item, "status"), _field(item, "error")
    return status == "succeeded" or (
        status == "failed" and error is not None and _field(error, "code") == "download"
    )


def _upstreams_first(input_of: dict[str, str]) -> list[str]:
    """The rows, each after the rows whose results it takes (a cycle's rows in any order)."""

    def depth(row: str, seen: frozenset[str] = frozenset()) -> int:
        key = input_of.get(row, "")
        if not key.startswith("@") or row in seen:
            return 0
        return 1 + depth(key[1:], seen | {row})

    return sorted(input_of, key=depth)


def _jobs_by_row(
    records: list[dict], input_of: dict[str, str], prompts: dict[str, str | None]
) -> dict[str, list[dict]]:
    """Each row's paid submissions: those of its input key or, for a chained row, those sent
    the result of one of its upstream's jobs; among rows sharing a key, those of its prompt."""
    jobs: dict[str, list[dict]] = {}
    for row in _upstreams_first(input_of):
        key = input_of[row]
        if key.startswith("@"):
            made = {job["request_id"] for job in jobs.get(key[1:], [])}
            mine = [r for r in records if result_request_id(r["input_key"]) in made]
        else:
            mine = [r for r in records if r["input_key"] == key]
        if sum(1 for other in input_of.values() if other == key) > 1:
            mine = [r for r in mine if r.get("prompt") == prompts.get(row)]
        jobs[row] = mine
    return jobs


def check_run(
    report: Any,
    service: Any,
    output: Path,
    *,
    input_of: dict[str, str],
) -> Figures:
    """Assert the five invariants (see the module docstring for the arguments)."""
    items = {_field(item, "id"): item for item in _field(report, "items")}
    # 1. exactly one outcome per row
    assert len(items) == len(_field(report, "items")), "a row is repeated in the report"
    assert sorted(items) == sorted(input_of), "a row is missing from, or extra in, the report"
    for item in items.values():
        assert _field(item, "status") in OUTCOMES

    submissions = service.submissions if hasattr(service, "get_job") else service
    records = [r if isinstance(r, dict) else vars(r) for r in submissions]
    jobs = _jobs_by_row(records, input_of, {row: _field(i, "prompt") for row, i in items.items()})
    by_request = {record["request_id"]: record for record in records}

    # 2. paid at most once, plus the resubmissions retryable failures called for, whatever
    # was killed; never for a row that could not run, nor for no row at all
    paid = resubmissions = extra = 0
    for row_id, mine in jobs.items():
        retried = sum(1 for job in mine if job.get("error_code") in RETRYABLE)
        allowed = 1 + retried
        paid += len(mine)
        resubmissions += min(retried, max(0, len(mine) - 1))
        extra += max(0, len(mine) - allowed)
        assert len(mine) <= allowed, (
            f"row {row_id}: paid {len(mine)} times, allowed {allowed}: "
            f"{[(j['request_id'], j.get('error_code')) for j in mine]}"
        )
        item = items[row_id]
        if _field(item, "status") in UNPAID:
            assert not mine, f"{row_id}: ended {_field(item, 'status')} but was submitted"
            assert (_field(item, "request_id"), _field(item, "attempts")) == (None, 0), row_id
    owners = Counter(job["request_id"] for mine in jobs.values() for job in mine)
    strays = [r["request_id"] for r in records if owners[r["request_id"]] != 1]
    assert not strays, f"jobs paid for no row, or claimed by two: {strays}"

    # 3. only whole, verified videos in the output folder
    succeeded = {row_id: i for row_id, i in items.items() if _field(i, "status") == "succeeded"}
    present = sorted(p.name for p in output.iterdir()) if output.exists() else []
    videos = [name for name in present if name.endswith(".mp4")]
    assert videos == sorted(f"{row_id}.mp4" for row_id in succeeded), present
    # beside them only their posters (a video that does not decode has none), the report
    # and the gallery
    others = set(present) - set(videos) - {f"{row_id}.jpg" for row_id in succeeded}
    assert others <= {"index.html", "report.json"}, present
    for row_id, item in succeeded.items():
        data = (output / f"{row_id}.mp4").read_bytes()
        assert len(data) == _field(item, "size"), f"{row_id}: size differs from the report"
        assert hashlib.sha256(data).hexdigest() == _field(item, "sha256"), f"{row_id}: corrupt"

    # 4. the report agrees with the emulator
    for row_id, item in items.items():
        status, request_id = _field(item, "status"), _field(item, "request_id")
        if status in UNPAID or (status == "unknown" and request_id is None):
            continue
        mine = {job["request_id"] for job in jobs[row_id]}
        assert request_id in mine, f"{row_id}: {request_id} is not a job made for this row"
        job = by_request[request_id]
        if status != "timed_out" and job.get("outcome") in _REPORTED:
            expected = _REPORTED[job["outcome"]]
            assert status == expected or (status == "failed" and expected == "succeeded"), (
                f"{row_id}: reported {status}, the service says {job['outcome']}"
            )  # a succeeded job whose download failed is reported failed

    # 5. chains: sent an upstream's result once it was there, never when there was none
    for row_id, key in input_of.items():
        upstream = items.get(key[1:]) if key.startswith("@") else None
        if upstream is None:
            assert _field(items[row_id], "status") != "upstream_failed", row_id
            continue
        for job in jobs[row_id]:
            above = service.get_job(result_request_id(job["input_key"]))
            assert above is not None and above.outcome == "done", f"{row_id}: sent no result"
            assert job["monotonic"] >= above.finished_at, (
                f"{row_id}: submitted {above.finished_at - job['monotonic']:.3f} s before its "
                f"upstream {key[1:]}'s job {above.request_id} was done"
            )
        if _has_result(upstream):
            assert _field(items[row_id], "status") != "upstream_failed", row_id
        else:
            assert not jobs[row_id], f"{row_id}: sent though {key[1:]} has no result"
            assert _field(items[row_id], "status") in UNPAID, (
                f"{row_id}: ended {_field(items[row_id], 'status')}, though {key[1:]} ended "
                f"{_field(upstream, 'status')}"
            )
    return Figures(
        len(items), paid, resubmissions, extra,
        Counter(_field(i, "status") for i in items.values()),
    )  # fmt: skip
