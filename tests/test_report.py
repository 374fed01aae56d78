"""The run report's models: what a run holds per row in memory, that sharing it changes
nothing a user sees, and how the report is kept: in result storage and as a file."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prefect.serializers import JSONSerializer

from prefect_grok_video.flows.engine.results import RESULT_SERIALIZER
from prefect_grok_video.outputs import write_whole
from prefect_grok_video.report import ItemError, ItemResult, RunReport


def _item(number: int) -> ItemResult:
    now = datetime.now(timezone.utc)
    return ItemResult(
        id=f"r{number:05d}", row=number, status="succeeded", action="extend",
        source=f"https://cdn.example/clips/{number % 50}.mp4", prompt=f"shot {number}",
        duration=6, model="grok-imagine-video", request_id=f"req_{number:024x}", attempts=1,
        video_seconds=11.0, video_url=f"https://vidgen.example/{number}.mp4",
        url_expires_at=now, cost_usd=0.77, cost_ticks=7_700_000_000, finished_at=now,
        output=f"/videos/r{number:05d}.mp4", size=123_456, sha256="ab" * 32,
        paid_in_flow_run="0c6c0a4e-1f1c-4a4b-9c8b-8d2f2f1e6a1b", paid_by_this_run=True,
    )  # fmt: skip


def test_every_item_result_shares_one_set_of_field_names():
    first, second = _item(1), ItemResult(id="x", row=2, status="invalid", source="")
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == set(ItemResult.model_fields)
    read_back = ItemResult.model_validate_json(first.model_dump_json())
    assert read_back == first and read_back.model_fields_set is first.model_fields_set
    copied = first.model_copy(
        update={"status": "failed", "error": ItemError(code="c", message="m")}
    )
    assert copied.status == "failed" and first.status == "succeeded"


def test_a_succeeded_rows_result_takes_under_two_kilobytes():
    """Measured with the set of field names per result (pydantic's default): 3.8 KB."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        items = [_item(number) for number in range(1000)]
        per_item = (tracemalloc.get_traced_memory()[0] - before) / len(items)
    finally:
        tracemalloc.stop()
    assert per_item < 2000, per_item


def test_a_report_of_shared_results_round_trips():
    now = datetime.now(timezone.utc)
    report = RunReport(manifest="m.csv", output="/videos", items=[_item(1), _item(2)],
                       started_at=now, finished_at=now)  # fmt: skip
    assert RunReport.model_validate_json(report.model_dump_json()) == report
    assert report.totals["succeeded"] == 2


def _report(rows: int) -> RunReport:
    now = datetime.now(timezone.utc)
    items = [_item(number) for number in range(rows)]
    return RunReport(manifest="m.csv", output="/videos", items=items, started_at=now,
                     finished_at=now)  # fmt: skip


def _peak_while(call: Callable[[], object]) -> int:
    """Bytes allocated at the peak of `call`, above what was held before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_report_kept_in_result_storage_reads_back_in_a_process_that_never_imported_it(
    tmp_path: Path,
):
    """Prefect's own `json` serializer type: what it wrote, Prefect's serializer reads, and a
    process that imported nothing of this package reads the result back (Prefect imports the
    JSON library the result names)."""
    report, ours = _report(3), RESULT_SERIALIZER
    written = ours.dumps(report)
    assert json.loads(written) == json.loads(JSONSerializer().dumps(report))
    assert ours.loads(written) == report and JSONSerializer().loads(written) == report
    assert ours.loads(ours.dumps({"rows": [1, 2]})) == {"rows": [1, 2]}
    metadata = ours.model_dump_json()
    script = (
        "import sys; from prefect.serializers import Serializer\n"
        f"s = Serializer.model_validate_json({metadata!r})\n"
        "report = s.loads(sys.stdin.buffer.read())\n"
        "print(type(report).__name__, len(report.items), report.items[0].id)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=written, capture_output=True)
    assert done.stdout.decode().split() == ["RunReport", "3", "r00000"], done.stderr


def test_keeping_a_big_report_in_result_storage_never_builds_it_as_a_dict():
    """Prefect's JSON library goes through a dict of the report (about 3 KB a row)."""
    report = _report(2000)
    ours = _peak_while(lambda: RESULT_SERIALIZER.dumps(report)) / 2000
    prefects = _peak_while(lambda: JSONSerializer().dumps(report)) / 2000
    assert ours < 2500 and ours < prefects / 2, (ours, prefects)


def test_a_file_written_whole_is_never_left_half_written(tmp_path: Path):
    target = tmp_path / "report.json"
    target.write_bytes(b"the old report")

    def parts() -> Iterator[bytes]:
        yield b'{"items": ['
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_whole(str(target), parts())
    assert target.read_bytes() == b"the old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert write_whole(str(target), b"new", [b" and ", b"whole"]) == str(target)
    assert target.read_bytes() == b"new and whole"
