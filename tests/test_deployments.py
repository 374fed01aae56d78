"""Deployments for real: a Prefect server, a process work pool, `deployments/prefect.yaml`
deployed as a user would, two `prefect worker start` processes, and a 20-row manifest run in
chunks through `prefect deployment run`; deployed without GROK_VIDEO_REPOSITORY, a run from the
checkout. Also the pull step's branches, the UI form's parameter schema and `serve.py`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_emulator import poll_env
from fixtures_server import Cluster

from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
from prefect_grok_video.policies import PollPolicy

REPO = Path(__file__).parents[1]
ROWS, CHUNK, RATE = 20, 10, 5.0
STEPS = "prefect_grok_video.flows.steps"


@pytest.fixture
def cluster(prefect_server: str, tmp_path: Path) -> Iterator[Cluster]:
    """A test's own processes (workers) and settings (result storage), on the session's Prefect
    server (the API is what deployments and workers use; the UI is tested in test_ui.py)."""
    cluster = Cluster(
        tmp_path, server=prefect_server,
        # one result storage for every process: where cached request_ids and chunk reports
        # live (on several machines, a shared bucket: see docs/guides/production.md)
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp_path / "shared-results"),
        PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOGGING_LEVEL="INFO",
    )  # fmt: skip
    try:
        yield cluster
    finally:
        cluster.stop()


async def _read(api_url: str, flow_run_id: str):
    """The parent run, its chunk runs, and the parent's artifacts, from the server's API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("make-videos/make-videos")
            parent = await client.read_flow_run(flow_run_id)
            chunks = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
                )
            )
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[parent.id])
                )
            )
    return deployment, parent, chunks, artifacts


def _deploy(cluster: Cluster, **env: str) -> str:
    """Create the process pool and deploy `deployments/prefect.yaml` as
    docs/guides/production.md says."""
    # --overwrite: an earlier test on the shared server may have created the pool
    cluster.run("prefect", "work-pool", "create", "grok-video", "--type", "process", "--overwrite")
    return cluster.run("prefect", "--no-prompt", "deploy", "--prefect-file",
                       "deployments/prefect.yaml", "--name", "make-videos", **env)  # fmt: skip


def _repository_of_head(root: Path) -> str:
    """A repository whose main branch is this checkout's HEAD: the code under test, committed
    (this repository's own main may be ahead or behind)."""
    origin = root / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(["git", "-C", str(REPO), "push", "-q", str(origin), "HEAD:refs/heads/main"],
                   check=True)  # fmt: skip
    return str(origin)


def _start_worker(cluster: Cluster, name: str, emulator: EmulatorServer) -> None:
    """A process worker of the pool in its own folder, as on its own machine."""
    home = cluster.root / name
    home.mkdir()
    cluster.start(name, "prefect", "worker", "start", "--pool", "grok-video", "--name", name,
                  "--limit", "2", cwd=home, GROK_VIDEO_API_KEY=emulator.api_key,
                  GROK_VIDEO_BASE_URL=emulator.base_url,
                  **poll_env(PollPolicy(first_poll=0.5)))  # fmt: skip


async def _wait_for_workers(api_url: str, names: set[str], timeout: float = 180) -> None:
    """Until every worker of `names` polls the pool (a worker that starts late, on a loaded
    machine, would leave the other to take every run, one after another)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            while True:
                workers = await client.read_workers_for_work_pool("grok-video")
                if names <= {worker.name for worker in workers if worker.status == "ONLINE"}:
                    return
                assert time.monotonic() < deadline, f"workers online: {workers}"
                await asyncio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_manifest_runs_in_chunks_across_two_workers(cluster: Cluster, tmp_path: Path):
    # No rate limit at the emulator: it records what the runs send, which must stay in RATE.
    emulator = EmulatorServer(EmulatorConfig(latency=1.0, submit_rate=None))
    emulator.start()
    try:
        manifest = tmp_path / "manifest.csv"
        manifest.write_text("id,video,prompt,duration\n" + "".join(
            f"clip-{i:02d},https://cdn.test/{i}.mp4,scene {i} goes on,{2 + i % 9}\n"
            for i in range(ROWS)
        ))  # fmt: skip
        output = tmp_path / "videos"
        # the pull step clones the repository's main branch, as a worker elsewhere would
        _deploy(cluster, GROK_VIDEO_REPOSITORY=_repository_of_head(tmp_path))
        for name in ("worker-1", "worker-2"):
            _start_worker(cluster, name, emulator)
        asyncio.run(_wait_for_workers(cluster.api_url, {"worker-1", "worker-2"}))

        started = time.monotonic()
        out = cluster.run(
            "prefect", "deployment", "run", "make-videos/make-videos",
            "--param", f"manifest={manifest}", "--param", f"output={output}",
            "--param", f"chunk_size={CHUNK}", "--param", f"submit_rate={RATE}",
            "--watch", "--watch-interval", "2", timeout=420,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        deployment, parent, chunks, artifacts = asyncio.run(_read(cluster.api_url, flow_run_id))

        # what the UI's run form is drawn from: every parameter described, the block picker
        form = deployment.parameter_openapi_schema
        assert all(field.get("description") for field in form["properties"].values())
        assert "grok-video-credentials" in json.dumps(form["definitions"])
        assert deployment.schedules and not deployment.schedules[0].active

        assert parent.state.is_completed(), cluster.logs()
        assert len(chunks) == ROWS // CHUNK
        assert all(run.state.is_completed() for run in chunks)
        assert sorted(run.name.rsplit("-rows-", 1)[1] for run in chunks) == ["1-10", "11-20"]
        assert {run.work_pool_name for run in chunks} == {"grok-video"}
        # `--limit 2`, as docs/guides/production.md starts workers: the parent and its two
        # chunk runs are spread over both workers (without it, the first worker to poll takes
        # all three)
        logs = {
            name: (cluster.root / f"{name}.log").read_text() for name in ("worker-1", "worker-2")
        }
        # what each worker ran: its submissions, but those the server refused (both workers
        # may try to take a run; one is told it is taken)
        taken = {
            name: [run for run in re.findall(r"submitting flow run '([0-9a-f-]{36})'", text)
                   if f"Aborted submission of flow run '{run}'" not in text]
            for name, text in logs.items()
        }  # fmt: skip
        assert sorted(r for runs in taken.values() for r in runs) == sorted(
            str(r.id) for r in [parent, *chunks]
        )
        assert all(taken.values()), taken

        videos = sorted(p.name for p in output.glob("*.mp4"))
        assert videos == [f"clip-{i:02d}.mp4" for i in range(ROWS)]
        assert emulator.state.accepted == ROWS
        assert sorted(emulator.state.accepted_by_input.values()) == [1] * ROWS
        times = sorted(record.monotonic for record in emulator.state.submissions)
        assert (len(times) - 1) / (times[-1] - times[0]) <= RATE  # on average, across 2 runs
        # and in any one second (one more where two runs hand over the shared limit)
        assert emulator.state.peak_accepted_per_second() <= RATE + 1

        table = next(a for a in artifacts if a.key == "grok-video-results")
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert len(rows) == ROWS
        assert {row["status"] for row in rows} == {"succeeded"}
        assert [row["row"] for row in rows] == list(range(1, ROWS + 1))
        summary = next(a for a in artifacts if a.key == "grok-video-summary")
        assert f"{ROWS} of {ROWS} rows succeeded" in summary.data
        print(f"{ROWS} rows in {len(chunks)} chunks on 2 workers: {elapsed:.1f} s")

        # A chunk run again (as a retry would) pays for nothing.
        cluster.run(
            "prefect", "deployment", "run", "make-videos/make-videos",
            "--param", f"manifest={manifest}", "--param", f"output={output}",
            "--param", "rows=11-20", "--watch", "--watch-interval", "2", timeout=240,
        )  # fmt: skip
        assert emulator.state.accepted == ROWS
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        emulator.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_deployed_without_a_repository_runs_the_checkout(cluster: Cluster, tmp_path: Path):
    """GROK_VIDEO_REPOSITORY unset (step 4 of docs/guides/production.md skipped): a worker on
    this machine runs the checkout the deployment was made from, instead of failing every run
    at the pull step."""
    emulator = EmulatorServer(EmulatorConfig(latency=0.5, submit_rate=None))
    emulator.start()
    try:
        manifest = tmp_path / "manifest.csv"
        manifest.write_text("id,video,prompt,duration\n" + "".join(
            f"clip-{i},https://cdn.test/{i}.mp4,scene {i} goes on,{2 + i}\n" for i in range(3)
        ))  # fmt: skip
        output = tmp_path / "videos"
        deployed = _deploy(cluster)  # Cluster.env has no GROK_VIDEO_* variable
        _start_worker(cluster, "worker", emulator)

        out = cluster.run(
            "prefect", "deployment", "run", "make-videos/make-videos",
            "--param", f"manifest={manifest}", "--param", f"output={output}",
            # the run creates the shared limit (removed before each test by `prefect_server`)
            # at this rate, as the chunk test's runs do
            "--param", f"submit_rate={RATE}", "--watch", timeout=240,
        )  # fmt: skip
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        _, run, _, _ = asyncio.run(_read(cluster.api_url, flow_run_id))
        assert run.state.is_completed(), cluster.logs()
        assert sorted(p.name for p in output.glob("*.mp4")) == [f"clip-{i}.mp4" for i in range(3)]
        assert emulator.state.accepted == 3
        # `prefect deploy` said where the runs get their code
        assert "GROK_VIDEO_REPOSITORY is not set" in deployed
        assert str(REPO.resolve()) in " ".join(deployed.split())
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        emulator.stop()


def test_the_ui_form_of_make_videos():
    """The deployment's parameter schema: what the Prefect UI turns into the run form."""
    from prefect_grok_video.flows import make_videos

    schema = make_videos.parameters.model_dump()
    properties = schema["properties"]
    assert schema["required"] == ["manifest"]
    assert list(properties)[:3] == ["manifest", "output", "credentials"]
    # the manifest: a path/URL, or rows given inline as a form
    options = properties["manifest"]["anyOf"]
    assert {"type": "string"} in options
    rows = next(o for o in options if o.get("type") == "array")["items"]["$ref"].split("/")[-1]
    row_form = schema["definitions"][rows]
    assert set(row_form["required"]) == {"prompt"}
    # each row picks its action from a list; the widest duration range of any action is shown
    assert row_form["properties"]["action"]["enum"] == ["generate", "edit", "extend"]
    assert row_form["properties"]["duration"]["minimum"] == 1
    assert row_form["properties"]["duration"]["maximum"] == 15
    # the credentials: a block picker
    block = properties["credentials"]["anyOf"][0]["$ref"].split("/")[-1]
    assert schema["definitions"][block]["block_type_slug"] == "grok-video-credentials"
    # the limits: bounded, with their defaults and descriptions
    bounds = {
        "max_concurrency": ("minimum", 1, 1000),
        "submit_rate": ("exclusiveMinimum", 0, 1.0),
        "wait_timeout": ("exclusiveMinimum", 0, 1800.0),
        "max_resubmits": ("minimum", 0, 2),
    }
    for name, (bound, value, default) in bounds.items():
        assert properties[name][bound] == value
        assert properties[name]["default"] == default
    for name, field in properties.items():
        assert field.get("description"), f"{name} has no description in the form"
    assert "service allows 1" in properties["submit_rate"]["description"]


def test_prefect_yaml_describes_the_deployment():
    import yaml

    config = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    deployment = next(d for d in config["deployments"] if d["name"] == "make-videos")
    assert deployment["entrypoint"] == "flows/videos.py:make_videos"
    assert (REPO / deployment["entrypoint"].split(":")[0]).is_file()
    assert deployment["work_pool"]["name"] == "grok-video"
    assert deployment["tags"] and deployment["description"]
    (schedule,) = deployment["schedules"]
    assert schedule["cron"] and schedule["active"] is False
    # the build step records the checkout and GROK_VIDEO_REPOSITORY; the pull step reads both
    (build,) = config["build"]
    (pull,) = config["pull"]
    assert build == {f"{STEPS}.record_project": {
        "id": "project", "repository": "{{ $GROK_VIDEO_REPOSITORY }}"}}  # fmt: skip
    fetch = pull[f"{STEPS}.fetch_project"]
    assert fetch["repository"] == "{{ project.repository }}"
    assert fetch["directory"] == "{{ project.directory }}"
    assert config["push"] is None
    from prefect_grok_video.flows import make_videos

    assert set(deployment["parameters"]) <= set(make_videos.parameters.properties)


def test_fetch_project_clones_the_repository(monkeypatch: pytest.MonkeyPatch):
    from prefect_grok_video.flows import steps

    calls = []
    monkeypatch.setattr(steps, "git_clone", lambda **kw: calls.append(kw) or {"directory": "c"})
    out = steps.fetch_project(repository="https://git.test/grok.git", directory="/nowhere")
    assert out == {"directory": "c"}
    (call,) = calls
    assert call == {
        "repository": "https://git.test/grok.git",
        "branch": "main",
        "access_token": None,
    }


# what the pull step gets for a repository that was not set: nothing, an empty value, or a
# placeholder left as is
NO_REPOSITORY = [None, "", "  ", "{{ $GROK_VIDEO_REPOSITORY }}"]


@pytest.mark.parametrize("repository", NO_REPOSITORY)
def test_fetch_project_uses_the_checkout_without_a_repository(
    repository: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect_grok_video.flows import steps

    monkeypatch.setattr(steps, "git_clone", lambda **kw: pytest.fail(f"cloned {kw}"))
    monkeypatch.chdir(tmp_path)  # and back after the test
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    assert steps.fetch_project(repository=repository, directory=str(checkout)) == {
        "directory": str(checkout.resolve())}  # fmt: skip
    assert Path.cwd() == checkout.resolve()


@pytest.mark.parametrize("directory", ["/no/such/checkout", None])
@pytest.mark.parametrize("repository", NO_REPOSITORY)
def test_fetch_project_says_what_to_do_without_either(
    repository: str | None, directory: str | None, monkeypatch: pytest.MonkeyPatch
):
    from prefect_grok_video.flows import steps

    monkeypatch.setattr(steps, "git_clone", lambda **kw: pytest.fail(f"cloned {kw}"))
    with pytest.raises(RuntimeError) as error:
        steps.fetch_project(repository=repository, directory=directory)
    message = str(error.value)
    assert "Set GROK_VIDEO_REPOSITORY to the repository's URL and deploy again" in message
    assert "run the worker on the machine that has the checkout" in message
    assert directory is None or directory in message


@pytest.mark.parametrize(
    ("repository", "recorded", "said"),
    [
        ("https://git.test/grok.git", "https://git.test/grok.git", "will clone https://git."),
        ("", "", "GROK_VIDEO_REPOSITORY is not set: runs of this deployment will use the checkout"),
    ],
)
def test_record_project_records_the_checkout_and_the_repository(
    repository: str, recorded: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):  # fmt: skip
    from prefect_grok_video.flows import steps

    monkeypatch.chdir(tmp_path)
    assert steps.record_project(repository) == {
        "directory": str(tmp_path.resolve()), "repository": recorded}  # fmt: skip
    assert said in capsys.readouterr().out


@pytest.mark.slow
def test_serve_script_serves_the_flow(cluster: Cluster):
    """`deployments/serve.py` registers a served deployment with the server."""
    out = cluster.run(sys.executable, str(REPO / "deployments" / "serve.py"), "--cron",
                      "0 3 * * *", "--manifest", "examples/manifest.csv", "--check")  # fmt: skip
    assert "registered make-videos/grok-video-served" in out
    assert "'0 3 * * *'" in out
