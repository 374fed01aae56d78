"""Cached request_ids live in the result storage: two "machines" (separate Prefect homes, one
Prefect server) that share it pay once between them; one that does not share it pays again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_cli import cli_environment, run_cli
from fixtures_emulator import FAST_POLL

pytestmark = pytest.mark.slow


def _run(manifest: Path, emulator, home: Path, results: Path, output: Path, api: str) -> dict:
    env = cli_environment(
        home,  # its own home: another machine
        api=emulator, api_url=api, poll=FAST_POLL,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(results),
    )  # fmt: skip
    report = output / "report.json"
    done = run_cli(
        "run", str(manifest), "--output", str(output), "--submit-rate", "20", "--no-progress",
        "--report", str(report), env=env, cwd=manifest.parent, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(report.read_text())


def test_machines_sharing_result_storage_pay_once(emulator, tmp_path, prefect_server):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "id,video,prompt\n" + "".join(f"r{i},https://cdn.test/{i}.mp4,go\n" for i in range(4))
    )
    shared = tmp_path / "shared-results"  # an NFS mount or a bucket, between real machines

    first = _run(
        manifest, emulator, tmp_path / "machine-a", shared, tmp_path / "out-a", prefect_server
    )
    assert emulator.state.accepted == 4
    second = _run(
        manifest, emulator, tmp_path / "machine-b", shared, tmp_path / "out-b", prefect_server
    )
    assert emulator.state.accepted == 4  # machine b paid for nothing
    assert [i["request_id"] for i in second["items"]] == [i["request_id"] for i in first["items"]]
    assert len(list((tmp_path / "out-b").glob("*.mp4"))) == 4  # but has the videos

    _run(
        manifest, emulator, tmp_path / "machine-c", tmp_path / "own-results",
        tmp_path / "out-c", prefect_server,
    )  # fmt: skip
    assert emulator.state.accepted == 8  # without the shared storage, it cannot know
