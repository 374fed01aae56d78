"""The composition examples users copy, run as written against the emulator: the sync and
async forms of docs/guides/python.md, and the three pipelines of `examples/pipelines/`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from docs_pages import python_blocks
from fixtures_emulator import poll_env, set_polls
from fixtures_prefect import drain_prefect_workers
from fixtures_server import start_prefect_server

from prefect_grok_video.flows import make_videos

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[1]
PIPELINES = REPO / "examples" / "pipelines"


def _pipeline(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", PIPELINES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _use(monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
    """Runs in this process talk to `emulator`, through the variables the docs set."""
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", emulator.base_url)
    monkeypatch.setenv("GROK_VIDEO_API_KEY", emulator.api_key)
    set_polls(monkeypatch)


@pytest.mark.parametrize("form", ["sync", "async"])
def test_the_composition_examples_run_as_written(
    form: str, emulator: Any, prefect_server: str, tmp_path: Path
) -> None:
    """docs/guides/python.md's two examples, verbatim."""
    sync_code, async_code = python_blocks("guides/python.md")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "GROK_VIDEO_BASE_URL": emulator.base_url,
           "GROK_VIDEO_API_KEY": emulator.api_key, "PREFECT_API_URL": prefect_server,
           **poll_env()}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", sync_code if form == "sync" else async_code], cwd=tmp_path,
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    if form == "sync":
        assert [line.split()[0] for line in lines[:-1]] == [
            "sunrise", "ocean-storm", "harbour", "lighthouse", "lighthouse-night"]  # fmt: skip
        assert lines[-1] == f"{tmp_path / 'out' / 'a-kite-over-a-beach-extended.mp4'} 8.0"
    else:
        assert lines == ["['succeeded', 'succeeded', 'succeeded']"]
    assert emulator.state.accepted == (7 if form == "sync" else 3)


def test_the_nightly_pipeline_extends_the_best_generation_and_pays_once_a_night(
    emulator: Any, prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, emulator)
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\na fox in the snow\na heron by a river\n\na tram at night\n")
    nightly = _pipeline("nightly").nightly
    final = nightly(str(prompts), output=str(tmp_path / "night"))
    assert final.status == "succeeded" and final.video_seconds == 8.0
    assert Path(final.output).is_file()
    generations = [s for s in emulator.state.submissions if s.action == "generate"]
    assert sorted(s.prompt for s in generations) == [
        "a fox in the snow", "a heron by a river", "a tram at night"]  # fmt: skip
    paid = emulator.state.accepted
    assert nightly(str(prompts), output=str(tmp_path / "night")).request_id == final.request_id
    assert emulator.state.accepted == paid == 4, "a second run paid again"


def test_the_fan_out_pipeline_runs_20_generations_under_the_shared_rate(
    emulator_factory: Any, prefect_database: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """20 flow runs, 5 at a time, on a Prefect server of their own (SQLite answers many flow
    runs at once with 503s; see the example's docstring)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    service = emulator_factory(submit_rate=10.0, submit_burst=1, submit_tolerance=0.05)
    _use(monkeypatch, service)
    fan_out = _pipeline("fan_out").fan_out
    server = start_prefect_server(tmp_path / "prefect", database=prefect_database,
                                  PREFECT_SERVER_ANALYTICS_ENABLED="false")  # fmt: skip
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            started = time.monotonic()
            videos = asyncio.run(fan_out(output=str(tmp_path / "fan"), submit_rate=10.0))
            elapsed = time.monotonic() - started
            asyncio.run(drain_prefect_workers())
    finally:
        server.stop()
    assert [video.status for video in videos] == ["succeeded"] * 20
    assert len({video.request_id for video in videos}) == 20
    assert service.state.rate_limited == 0, "a submission came faster than the shared rate"
    print(f"20 generations at 10/s in {elapsed:.1f} s, {service.state.rate_limited} x 429")


async def test_the_post_process_pipeline_runs_for_every_video_that_succeeds(
    emulator: Any, prefect_server: str, tmp_path: Path
) -> None:
    from fixtures_emulator import credentials_for
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import Automation

    published = tmp_path / "published"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    server = subprocess.Popen(
        [sys.executable, str(PIPELINES / "post_process.py"), "--published", str(published)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        async with get_client() as client:
            deadline = time.monotonic() + 60
            while True:  # served: its deployment and its trigger's automation exist
                automations = await client.read_automations_by_name("grok-video-post-process")
                if automations:
                    break
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "post_process.py did not start serving"
                await asyncio.sleep(0.5)
        report = await make_videos(
            [{"id": "kite", "action": "generate", "prompt": "a kite at dawn", "duration": 2}],
            output=str(tmp_path / "out"), credentials=credentials_for(emulator),
            submit_rate=50.0,
        )  # fmt: skip
        (video,) = report.succeeded
        sidecar = published / "kite.json"
        deadline = time.monotonic() + 90
        while not sidecar.exists():
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "no post-processing run came"
            await asyncio.sleep(0.5)
        facts = json.loads(sidecar.read_text())
        assert facts["source"] == video.output and facts["seconds"] == 2.0
        assert facts["frames"] > 0 and facts["bytes"] == video.size
        assert (published / "kite.mp4").read_bytes() == Path(video.output).read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)
        async with get_client() as client:
            automation: Automation
            for automation in await client.read_automations_by_name("grok-video-post-process"):
                await client.delete_automation(automation.id)
            deployment = await client.read_deployment_by_name("post-process-video/post-process")
            await client.delete_deployment(deployment.id)
