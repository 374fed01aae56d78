"""The `grok-video` command line, run as a subprocess: run, validate and demo.

`run` subprocesses use the session's Prefect server (`PREFECT_API_URL`); `demo` starts Prefect's
temporary server on a new database, as a new user's first command does (~30 s of CPU, once).
The emulator runs in this test process and the subprocesses reach it over loopback; prompts
name the test, so no cached submission crosses between tests.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fixtures_cli import cli_command, cli_environment, run_cli
from fixtures_emulator import FAST_POLL
from fixtures_media import write_csv

from prefect_grok_video import cli, console
from prefect_grok_video.emulator import EmulatorServer
from prefect_grok_video.manifest import load_manifest
from prefect_grok_video.mp4 import probe
from prefect_grok_video.report import NEXT_STEPS, ItemError, ItemResult, RunReport
from prefect_grok_video.report_text import format_report


def _cli_on_terminal(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the command with stdout and stderr on a pseudo-terminal; its exit code and output."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        cli_command(*args),
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env, cwd=cwd,
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def _run_on(
    emulator: EmulatorServer, server: str, manifest: Path, output: Path, report: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`grok-video run` of `manifest` against `emulator`, on the shared Prefect `server`."""
    return run_cli(
        "run", str(manifest), "--output", str(output), "--report", str(report),
        "--submit-rate", "20", cwd=cwd,
        env=cli_environment(cwd / "home", api=emulator, api_url=server, poll=FAST_POLL),
    )  # fmt: skip


def _report(path: Path) -> dict[str, dict]:
    return {item["id"]: item for item in json.loads(path.read_text())["items"]}


# -- validate -------------------------------------------------------------------------------


def test_validate_accepts_a_manifest_whose_rows_are_all_valid(tmp_path, h264_clip):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "local", "video": str(h264_clip), "prompt": "the sun rises", "duration": 4},
        {"id": "remote", "video": "https://cdn.test/x.mp4", "prompt": "a wave", "duration": 6},
    ])  # fmt: skip
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{manifest}: 2 rows, 2 valid, 0 invalid",
        # local: 3 s + 4 at $0.07; remote: up to 15 s + 6 (its length is not known) at $0.07
        "Estimated cost: $1.96 for 2 jobs, 28 s of video (estimates from public prices, not a "
        "quote: set GROK_VIDEO_PRICES to yours)",
    ]
    assert done.stderr == ""
    prices = '{"grok-imagine-video": {"480p": 0.01, "720p": 0.01}}'
    done = run_cli("validate", str(manifest), cwd=tmp_path,
                   env=cli_environment(tmp_path, GROK_VIDEO_PRICES=prices))  # fmt: skip
    assert "Estimated cost: $0.28 for 2 jobs" in done.stdout


def test_validate_lists_every_invalid_row(tmp_path, h264_clip, not_mp4_file):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "good", "video": str(h264_clip), "prompt": "the sun rises", "duration": 4},
        {"id": "long", "video": "https://cdn.test/x.mp4", "prompt": "a wave", "duration": 99},
        {"id": "notmp4", "video": str(not_mp4_file), "prompt": "rain", "duration": 4},
        {"id": "noprompt", "video": "https://cdn.test/y.mp4", "prompt": "", "duration": 4},
    ])  # fmt: skip
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("row 2 (id 'long'): duration:")
    assert lines[1].startswith("row 3 (id 'notmp4'): video:")
    assert lines[2].startswith("row 4 (id 'noprompt'): prompt:")
    assert lines[3] == f"{manifest}: 4 rows, 1 valid, 3 invalid"
    assert lines[4].startswith("Estimated cost: $0.49 for 1 job, 7 s of video")


def test_validate_names_rows_that_wait_on_an_invalid_one(tmp_path):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "base", "action": "generate", "prompt": "a kite", "aspect_ratio": "5:4"},
        {"id": "more", "video": "@base", "prompt": "it flies off"},
    ])  # fmt: skip
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1] == (
        "row 2 (id 'more'): video: waits for row 1 (id 'base'), which is invalid: it will not run"
    )
    assert lines[2] == f"{manifest}: 2 rows, 1 valid, 1 invalid, 1 waiting on an invalid row"
    assert lines[3].startswith("Estimated cost: $0.00 for 0 jobs")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "manifest not found"),
        ("rows.txt", "id,video,prompt\n", "unsupported manifest format"),
        ("empty.csv", "", "is empty"),
        ("broken.json", "[{", "is not valid JSON"),
    ],
)
def test_validate_refuses_an_unreadable_manifest(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = run_cli("validate", str(path), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("grok-video validate: ")
    assert expected in done.stderr


def test_validate_names_an_unknown_column_and_the_closest_known_one(tmp_path):
    """A misspelt column is refused before anything is paid, not run with the default."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,video,prompt,duraton\n"
        "a,https://cdn.test/a.mp4,the sun rises,4\n"
        "b,https://cdn.test/b.mp4,a wave,8\n"
    )
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    problem = (
        "duraton: unknown column (known columns: id, action, video, image, prompt, duration, "
        "aspect_ratio, resolution, model): "
        "did you mean 'duration'?"
    )
    assert done.stdout.splitlines()[:3] == [
        f"row 1 (id 'a'): {problem}",
        f"row 2 (id 'b'): {problem}",
        f"{manifest}: 2 rows, 0 valid, 2 invalid",
    ]
    assert done.stderr == ""


def test_validate_and_help_do_not_import_prefect(tmp_path):
    """`validate` (and the parser) stay light: Prefect is imported only by run and demo."""
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "a", "video": "https://cdn.test/x.mp4", "prompt": "a wave", "duration": 6},
    ])  # fmt: skip
    script = (
        "import sys\n"
        "from prefect_grok_video import cli\n"
        "cli.build_parser()\n"
        f"code = cli.main(['validate', {str(manifest)!r}])\n"
        "print(code, any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        env=cli_environment(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "0 False", done.stderr


def test_help_lists_the_commands(tmp_path):
    done = run_cli("--help", env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 0
    for command in ("run", "validate", "demo", "emulator"):
        assert f"    {command} " in done.stdout


# -- run: refusals before anything starts ---------------------------------------------------


def test_run_refuses_an_unreadable_manifest_before_starting_anything(tmp_path, emulator):
    broken = tmp_path / "m.json"
    broken.write_text('[{"video": "https://cdn.test/x.mp4", "prompt": ')
    env = cli_environment(tmp_path, api=emulator)
    for manifest in (str(broken), str(tmp_path / "missing.csv")):
        done = run_cli("run", manifest, "--output", str(tmp_path / "out"), env=env, cwd=tmp_path)
        assert done.returncode == 2
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("grok-video run: ")
        assert "Traceback" not in done.stderr
    assert emulator.state.accepted == 0
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "prefect.db").exists()  # Prefect never started


def test_run_without_an_api_key_says_how_to_set_one(tmp_path):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "a", "video": "https://cdn.test/x.mp4", "prompt": "a wave", "duration": 6},
    ])  # fmt: skip
    done = run_cli("run", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "GROK_VIDEO_API_KEY" in done.stderr and "--credentials" in done.stderr
    assert not (tmp_path / "prefect.db").exists()


def test_run_refuses_options_the_flow_would_refuse(tmp_path, emulator):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "a", "video": "https://cdn.test/x.mp4", "prompt": "a wave", "duration": 6},
    ])  # fmt: skip
    env = cli_environment(tmp_path, api=emulator)
    done = run_cli("run", str(manifest), "--max-concurrency", "0", env=env, cwd=tmp_path)
    assert done.returncode == 2  # argparse
    assert "--max-concurrency" in done.stderr
    done = run_cli("run", str(manifest), "--max-resubmits", "11", env=env, cwd=tmp_path)
    assert done.returncode == 2  # the flow's own bound, checked before Prefect starts
    assert done.stderr.strip() == (
        "grok-video run: --max-resubmits: Input should be less than or equal to 10"
    )
    assert emulator.state.accepted == 0


# -- run against the emulator ---------------------------------------------------------------


@pytest.mark.slow
def test_run_reports_every_outcome_and_exits_1(tmp_path, emulator, h264_clip, prefect_server):
    prompt = "the sun rises"
    manifest = write_csv(tmp_path / "mixed.csv", [
        {"id": "ok-url", "video": "https://cdn.test/a.mp4", "prompt": prompt, "duration": 4},
        {"id": "ok-file", "video": str(h264_clip), "prompt": prompt, "duration": 4},
        {"id": "mod", "video": "https://cdn.test/b.mp4", "prompt": f"{prompt} #moderated",
         "duration": 4},
        {"id": "bad", "video": "https://cdn.test/c.mp4",
         "prompt": f"{prompt} #fail=invalid_argument", "duration": 4},
        {"id": "exp", "video": "https://cdn.test/d.mp4", "prompt": f"{prompt} #expired",
         "duration": 4},
        {"id": "inv", "video": "https://cdn.test/e.mp4", "prompt": prompt, "duration": 99},
    ])  # fmt: skip
    output, report = tmp_path / "videos", tmp_path / "reports" / "run.json"
    done = _run_on(emulator, prefect_server, manifest, output, report, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr

    items = _report(report)
    expected = {"ok-url": "succeeded", "ok-file": "succeeded", "mod": "moderated",
                "bad": "failed", "exp": "expired", "inv": "invalid"}  # fmt: skip
    assert {id: item["status"] for id, item in items.items()} == expected
    assert items["bad"]["error"]["code"] == "invalid_argument"
    assert items["inv"]["error"]["code"] == "invalid_input"
    assert items["inv"]["request_id"] is None and items["inv"]["attempts"] == 0
    for id in ("ok-url", "ok-file", "mod", "bad", "exp"):
        assert items[id]["request_id"].startswith("req_")
    assert emulator.state.accepted == 5  # the invalid row was never sent
    assert sorted(p.name for p in output.glob("*.mp4")) == ["ok-file.mp4", "ok-url.mp4"]
    for id in ("ok-url", "ok-file"):
        assert Path(items[id]["output"]) == output / f"{id}.mp4"
        assert (output / f"{id}.mp4").stat().st_size == items[id]["size"]

    lines = done.stdout.splitlines()
    for id, status in expected.items():
        row = next(line for line in lines if line.startswith(f"{id} "))
        assert row.split()[1] == status
    assert "2 of 6 rows succeeded; 1 failed, 1 moderated, 1 expired, 1 invalid in" in done.stdout
    assert f"Videos: {output}" in lines
    for status in ("failed", "moderated", "expired", "invalid"):
        assert f"  {status} (1): {NEXT_STEPS[status]}" in lines
    assert "timed_out" not in done.stdout
    assert f"Report: {report}" in lines
    assert f"See the run in the Prefect UI: {prefect_server[:-4]}/runs/flow-run/" in done.stdout
    assert "[6/6] " in done.stdout  # one progress line per row without a terminal


@pytest.mark.slow
def test_run_reports_a_row_with_an_unknown_key_invalid_and_never_sends_it(
    tmp_path, emulator, prefect_server
):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([
        {"id": "ok", "video": "https://cdn.test/unknown-ok.mp4", "prompt": "dusk falls"},
        {"id": "typo", "video": "https://cdn.test/unknown-typo.mp4", "prompt": "dusk falls",
         "duraton": 4},
    ]))  # fmt: skip
    output, report = tmp_path / "videos", tmp_path / "run.json"
    done = _run_on(emulator, prefect_server, manifest, output, report, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    items = _report(report)
    assert (items["ok"]["status"], items["typo"]["status"]) == ("succeeded", "invalid")
    error = items["typo"]["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "duraton")
    assert "did you mean 'duration'?" in error["message"]
    assert (items["typo"]["request_id"], items["typo"]["attempts"]) == (None, 0)
    assert emulator.state.accepted_by_input == {"https://cdn.test/unknown-ok.mp4": 1}
    assert "1 of 2 rows succeeded; 1 invalid" in done.stdout


@pytest.mark.slow
def test_run_succeeds_quietly_then_a_rerun_pays_for_nothing(
    tmp_path, emulator, h264_clip, prefect_server
):
    # On the session's Prefect server: that a temporary server's start is quiet too is
    # test_demo_runs_the_bundled_examples's to check (~15 s of CPU each).
    home = tmp_path / "home"
    rows = [
        {"id": "url", "video": "https://cdn.test/a.mp4", "prompt": "night falls", "duration": 5},
        {"id": "file", "video": str(h264_clip), "prompt": "night falls", "duration": 5},
    ]
    manifest = write_csv(tmp_path / "m.csv", rows)
    output = tmp_path / "videos"
    args = ("run", str(manifest), "--output", str(output), "--submit-rate", "20")
    env = cli_environment(home, api=emulator, api_url=prefect_server, poll=FAST_POLL)
    done = run_cli(*args, env=env, cwd=tmp_path)
    everything = done.stdout + done.stderr
    assert done.returncode == 0, everything
    for word in ("Traceback", "ERROR", "WARNING", "Finished in state"):
        assert word not in everything, everything
    assert "2 of 2 rows succeeded in" in done.stdout
    assert sorted(p.name for p in output.glob("*.mp4")) == ["file.mp4", "url.mp4"]
    assert emulator.state.accepted == 2
    # what the service reported, all of it paid by this run, and who paid for each row
    first_cost = re.search(r"Cost: \$(\d+\.\d\d) reported by the service: \$(\d+\.\d\d) "
                           r"paid by this run\n", done.stdout)  # fmt: skip
    assert first_cost and first_cost[1] == first_cost[2] != "0.00", done.stdout
    assert len(re.findall(r"succeeded +this run +req_", done.stdout)) == 2, done.stdout

    # The same manifest again, on a terminal, with the credentials from a saved block: the
    # cached request_ids are reused (the cache key ignores credentials), nothing is paid.
    save = (
        "from prefect_grok_video.blocks import GrokVideoCredentials\n"
        f"GrokVideoCredentials(api_key={emulator.api_key!r}, base_url={emulator.base_url!r}, "
        "poll_first=0.3).save('cli-test-emulator', overwrite=True)\n"
    )
    env = cli_environment(home, api_url=prefect_server, poll=FAST_POLL)  # no API key
    subprocess.run([sys.executable, "-c", save], env=env, check=True, capture_output=True)
    code, shown = _cli_on_terminal(
        *args, "--credentials", "cli-test-emulator", env={**env, "COLUMNS": "120"}, cwd=tmp_path
    )
    assert code == 0, shown
    assert emulator.state.accepted == 2
    # a rerun that submitted nothing says so: every row's job came from the cache
    cost = first_cost[1]
    assert (f"Cost: ${cost} reported by the service: $0.00 paid by this run, ${cost} by "
            "earlier runs (2 rows from the cache)") in shown, shown  # fmt: skip
    assert len(re.findall(r"succeeded +earlier run +req_", shown)) == 2, shown
    assert "running" in shown and "2/2" in shown  # the progress bar
    assert "[1/2]" not in shown  # not the line progress
    for word in ("Traceback", "ERROR", "WARNING"):
        assert word not in shown, shown

    done = run_cli(*args, "--credentials", "no-such-block", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "no-such-block" in done.stderr and "Traceback" not in done.stderr

    # A later run that submits something new, in the same PREFECT_HOME: pays for the new row
    # only, and should be as quiet as the first.
    rows.append({"id": "new", "video": "https://cdn.test/b.mp4", "prompt": "dawn", "duration": 5})
    write_csv(manifest, rows)
    env = cli_environment(home, api=emulator, api_url=prefect_server, poll=FAST_POLL)
    done = run_cli(*args, env=env, cwd=tmp_path)
    everything = done.stdout + done.stderr
    assert done.returncode == 0, everything
    assert emulator.state.accepted == 3
    assert "by earlier runs (2 rows from the cache)" in done.stdout, done.stdout
    assert len(re.findall(r"succeeded +this run +req_", done.stdout)) == 1, done.stdout
    assert len(re.findall(r"succeeded +earlier run +req_", done.stdout)) == 2, done.stdout
    noise = [w for w in ("Traceback", "ERROR", "WARNING", "Finished in state") if w in everything]
    assert not noise, everything


@pytest.mark.slow
def test_run_with_a_spend_cap_stops_submitting_and_says_why(tmp_path, emulator, prefect_server):
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": f"r{n}", "action": "generate", "prompt": f"cap scene {n}", "duration": 2}
        for n in range(3)
    ])  # fmt: skip
    prices = '{"grok-imagine-video": {"480p": 0.05, "720p": 0.05}}'  # the emulator's price
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server,
                          poll=FAST_POLL, GROK_VIDEO_PRICES=prices)  # fmt: skip
    done = run_cli("run", str(manifest), "--output", str(tmp_path / "out"), "--max-cost", "0.15",
                   "--report", "r.json", "--submit-rate", "20", env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert emulator.state.accepted == 1
    lines = done.stdout.splitlines()
    assert "Stopped submitting: the spend cap of $0.15 was reached: 2 row(s) not submitted" in lines
    assert f"  skipped (2): {NEXT_STEPS['skipped']}" in lines
    assert sorted(item["status"] for item in _report(tmp_path / "r.json").values()) == [
        "skipped", "skipped", "succeeded"
    ]  # fmt: skip


@pytest.mark.slow
def test_run_writes_to_file_urls_and_obeys_the_download_limit(tmp_path, emulator, prefect_server):
    """`--output file:///abs/path` writes under /abs/path (not ./file:/abs/path), and
    GROK_VIDEO_MAX_DOWNLOAD_BYTES reaches the client the run downloads with."""
    manifest = write_csv(tmp_path / "m.csv", [
        {"id": "far", "video": "https://cdn.test/a.mp4", "prompt": "file url", "duration": 3},
    ])  # fmt: skip
    target = tmp_path / "elsewhere" / "videos"
    env = cli_environment(tmp_path / "home", api=emulator, api_url=prefect_server, poll=FAST_POLL)
    done = run_cli("run", str(manifest), "--output", target.as_uri(), "--report", "r.json",
                env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in target.glob("*.mp4")] == ["far.mp4"]
    assert not (tmp_path / "file:").exists()
    assert _report(tmp_path / "r.json")["far"]["output"] == str(target / "far.mp4")

    write_csv(manifest, [
        {"id": "big", "video": "https://cdn.test/b.mp4", "prompt": "too big", "duration": 3},
    ])  # fmt: skip
    done = run_cli("run", str(manifest), "--output", str(tmp_path / "small"), "--report", "r.json",
                env={**env, "GROK_VIDEO_MAX_DOWNLOAD_BYTES": "1000"}, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    item = _report(tmp_path / "r.json")["big"]
    assert item["status"] == "failed" and item["error"]["code"] == "download"
    assert "1000-byte download limit" in item["error"]["message"]
    assert not (tmp_path / "small" / "big.mp4").exists()


# -- demo -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_the_bundled_examples(tmp_path):
    env = cli_environment(tmp_path / "prefect-home")  # default polls: the demo as a user sees it
    output = tmp_path / "demo"
    done = run_cli("demo", "--output", str(output), env=env, cwd=tmp_path)
    everything = done.stdout + done.stderr
    assert done.returncode == 0, everything
    # Quiet on a new database too; a flow run's warning (a retried 429 when a loaded machine
    # sends two submits closer than the emulator's 1/s) is the run's, not noise.
    for word in ("Traceback", "ERROR", "Finished in state"):
        assert word not in everything, everything
    warnings = [line for line in everything.splitlines() if "WARNING" in line]
    assert all("| Flow run '" in line for line in warnings), everything
    report = json.loads((output / "report.json").read_text())
    items = {item["id"]: item for item in report["items"]}
    assert list(items) == ["sunrise", "ocean-storm", "harbour", "lighthouse", "lighthouse-night"]
    assert report["totals"]["succeeded"] == 5
    seconds = {}
    for id in items:
        with open(output / f"{id}.mp4", "rb") as f:
            info = probe(f)
        assert info.codec == "avc1" and info.duration, id
        seconds[id] = round(info.duration)
    # extend: 4 s clip + 6; edit: as long as its 4 s clip; generate: as asked; the chain: 6 + 4
    assert seconds == {"sunrise": 10, "ocean-storm": 4, "harbour": 5, "lighthouse": 6,
                       "lighthouse-night": 10}  # fmt: skip
    assert items["lighthouse-night"]["upstream"] == "lighthouse"
    assert f"Report: {output / 'report.json'}" in done.stdout
    assert f"Videos: {output}" in done.stdout
    assert "prefect server start" in done.stdout
    assert "/runs/flow-run/" + report["flow_run_id"] in done.stdout
    assert (output / "input" / "manifest.csv").is_file()
    # The quick exit came after the temporary server's stop: nothing of it is left running.
    assert _processes_at_home(tmp_path / "prefect-home") == []


def _processes_at_home(home: Path) -> list[int]:
    """Processes whose environment says PREFECT_HOME=`home` (the temporary server inherits it),
    looked for for up to 5 s (a stopped process may take a moment to go)."""
    needle = f"PREFECT_HOME={home}".encode()
    deadline = time.monotonic() + 5
    while True:
        found = []
        for process in Path("/proc").iterdir():
            try:
                if process.name.isdigit() and needle in (process / "environ").read_bytes().split(
                    b"\0"
                ):
                    found.append(int(process.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


# -- the command's exit ---------------------------------------------------------------------

#: A `grok-video` whose command is replaced by `COMMAND` (a function of argv), then run as the
#: console script runs it.
_ENTRY = """
import atexit, sys
from prefect_grok_video import cli
{command}
cli.main = command
cli.entry()
"""


def test_the_quick_exit_keeps_the_exit_code_the_output_and_later_exit_handlers(tmp_path):
    """`entry()` ends the process from the last exit handler: handlers registered while the
    command ran (Prefect's) still run, unflushed output still arrives, the code is the
    command's."""
    marker = tmp_path / "handler-ran"
    command = (
        "def command(argv=None):\n"
        f"    atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "    sys.stdout.write('no newline at the end')\n"
        "    return 3\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _ENTRY.format(command=command)], capture_output=True, text=True,
        env=cli_environment(tmp_path, PYTHONUNBUFFERED=""), cwd=tmp_path,  # stdout buffered
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (3, "no newline at the end", "")
    assert marker.read_text() == "ran"


def test_a_command_that_raises_exits_the_usual_way(tmp_path):
    command = "def command(argv=None):\n    raise RuntimeError('the command broke')\n"
    done = subprocess.run(
        [sys.executable, "-c", _ENTRY.format(command=command)], capture_output=True, text=True,
        env=cli_environment(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: the command broke" in done.stderr


# -- pieces, in this process ----------------------------------------------------------------


def test_the_bundled_examples_are_copied_and_valid(tmp_path):
    manifest = cli.copy_examples(tmp_path / "input")
    assert sorted(p.name for p in (tmp_path / "input" / "clips").iterdir()) == [
        "aurora.mp4", "ocean.mp4", "skyline.mp4", "sunrise.mp4"
    ]  # fmt: skip
    assert [p.name for p in (tmp_path / "input" / "stills").iterdir()] == ["harbour.png"]
    checked = load_manifest(manifest)
    assert len(checked.rows) == 5 and not checked.invalid
    # one row of each action, a generation from a still, and a chain
    assert {row.action for row in checked.valid} == {"generate", "edit", "extend"}
    assert any(row.image is not None for row in checked.valid)
    assert [row.upstream for row in checked.valid if row.upstream] == ["lighthouse"]


def _item(number: int, status: str = "succeeded") -> ItemResult:
    error = None if status == "succeeded" else ItemError(code="boom", message=f"row {number} broke")
    return ItemResult(
        id=f"row-{number}", row=number, status=status, source="clip.mp4",  # type: ignore[arg-type]
        request_id=f"req_{number}", output=f"/videos/row-{number}.mp4" if error is None else None,
        error=error,
    )  # fmt: skip


def _run_report(items: list[ItemResult]) -> RunReport:
    now = datetime.now(timezone.utc)
    return RunReport(manifest="m.csv", output="/videos", items=items,
                     started_at=now - timedelta(seconds=3), finished_at=now)  # fmt: skip


def test_the_table_lists_every_row_of_a_small_run():
    lines = format_report(_run_report([_item(1), _item(2, "timed_out")]))
    assert lines[0].split() == ["id", "status", "paid", "request_id", "output", "error"]
    assert lines[1].split() == ["row-1", "succeeded", "-", "req_1", "row-1.mp4"]
    assert lines[2].split()[:5] == ["row-2", "timed_out", "-", "req_2", "-"]
    assert lines[2].endswith("boom: row 2 broke")
    assert "1 of 2 rows succeeded; 1 timed_out in 3.0 s" in lines
    assert "Videos: /videos" in lines
    assert f"  timed_out (1): {NEXT_STEPS['timed_out']}" in lines
    assert not any(line.startswith("  failed") for line in lines)


def test_the_table_of_a_large_run_lists_only_the_rows_that_did_not_succeed():
    items = [_item(n) for n in range(1, 61)] + [_item(61, "failed"), _item(62, "unknown")]
    lines = format_report(_run_report(items))
    listed = [line.split()[0] for line in lines[1:] if line.startswith("row-")]
    assert listed == ["row-61", "row-62"]
    assert "(60 succeeded rows not listed; --report FILE lists every row)" in lines
    assert "60 of 62 rows succeeded; 1 failed, 1 unknown in 3.0 s" in lines
    assert f"  unknown (1): {NEXT_STEPS['unknown']}" in lines


def test_prefect_is_prepared_for_a_first_temporary_server_on_a_slow_machine(monkeypatch):
    """Prefect's 20 s for a temporary server to start is less than creating its database can
    take on a busy 2-core machine; a value the user set wins."""
    variable = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    # A copy of the environment, with a console level set: this process's handlers stay put
    monkeypatch.setattr(
        os, "environ", {**os.environ, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO"}
    )
    monkeypatch.delenv(variable, raising=False)
    console.prepare_prefect()
    assert float(os.environ[variable]) >= 120
    monkeypatch.setenv(variable, "30")
    console.prepare_prefect()
    assert os.environ[variable] == "30"
