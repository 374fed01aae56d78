"""The automations users copy: the `publish-video` deployment's trigger in
`deployments/prefect.yaml` (a succeeded video runs it), `deployments/notifications.yaml`
(failures notify through a block) and `deployments/automations.yaml` (runs whose heartbeats
stop are marked Crashed), created with the commands docs/guides/automations.md gives against the
session's Prefect server (a temporary server runs the triggers and actions services too), seen
to fire on a run's events, not again on its rerun, and the downstream run done by a worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures_cli import cli_environment
from fixtures_emulator import credentials_for
from fixtures_media import write_csv
from fixtures_prefect import drain_prefect_workers, report_of

from prefect_grok_video.flows.engine.supervision import HEARTBEATS_MISSED

REPO = Path(__file__).parents[1]
PLACEHOLDER = "NOTIFICATION-BLOCK-ID"
FAILURES = "grok-video-failures"
ZOMBIES = "grok-video-zombie-runs"
PUBLISH = "grok-video-publish"
PUBLISH_DEPLOYMENT = "publish-video/publish-video"
BLOCK = "grok-video-alerts-test"


class Receiver:
    """A local HTTP server that records the JSON bodies POSTed to it (the notifications)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def prefect_cli(*args: str, env: dict[str, str]) -> str:
    """Run `prefect ARGS` from the repository root, as docs/guides/automations.md has users
    do; its output."""
    done = subprocess.run(["prefect", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, f"prefect {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def alerts_file(block_id: object) -> str:
    """`deployments/notifications.yaml` with the user's block id put in, as docs/guides/ say."""
    text = (REPO / "deployments" / "notifications.yaml").read_text()
    assert text.count(f"block_document_id: {PLACEHOLDER}\n") == 1
    return text.replace(PLACEHOLDER, str(block_id))


@pytest.fixture
async def own_server(prefect_server: str) -> AsyncIterator[str]:
    """The session's server; after the test, the automations, deployment, runs and block it
    made are deleted (so that no later test's events fire them)."""
    yield prefect_server
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        for name in (FAILURES, PUBLISH, ZOMBIES):
            for automation in await client.read_automations_by_name(name):
                await client.delete_automation(automation.id)
        with contextlib.suppress(ObjectNotFound):
            for run in await runs_of(PUBLISH_DEPLOYMENT):
                await client.delete_flow_run(run.id)
            await client.delete_deployment((await client.read_deployment_by_name(
                PUBLISH_DEPLOYMENT)).id)  # fmt: skip
        with contextlib.suppress(ObjectNotFound):
            block = await client.read_block_document_by_name(BLOCK, "custom-webhook")
            await client.delete_block_document(block.id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A started `Receiver`, stopped after the test."""
    with Receiver() as server:
        yield server


async def runs_of(deployment_name: str) -> list[Any]:
    """The flow runs of a deployment, from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(deployment_name)
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id])))  # fmt: skip


async def until(receiver: Receiver, *, notifications: int, published: int) -> None:
    """Wait (up to 45 s) until the receiver has `notifications` and the downstream deployment
    `published` runs, or more."""
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if (
            len(receiver.bodies) >= notifications
            and len(await runs_of(PUBLISH_DEPLOYMENT)) >= published
        ):
            return
        await asyncio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_video_that_succeeds_is_published_and_failures_notify(
    own_server: str, emulator: Any, receiver: Receiver, tmp_path: Path
):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from prefect_grok_video.flows import make_videos

    env = cli_environment(tmp_path / "prefect-home", api_url=own_server)
    # docs/guides/production.md: the work pool, then `prefect deploy` (which creates the
    # trigger's automation)
    prefect_cli("work-pool", "create", "grok-video", "--type", "process", "--overwrite", env=env)
    prefect_cli("--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml",
            "--name", "publish-video", env=env)  # fmt: skip
    # docs/guides/automations.md: a notification block (here one that POSTs to the test), its
    # id in the file, create
    block = CustomWebhookNotificationBlock(
        name="grok-video", url=receiver.url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )  # fmt: skip
    block_id = await block.asave(BLOCK, overwrite=True)
    alerts = tmp_path / "automations.yaml"
    alerts.write_text(alerts_file(block_id))
    created = prefect_cli("automation", "create", "--from-file", str(alerts), env=env)
    assert f"Created automation '{FAILURES}'" in created

    rows = [
        {"id": "kite", "action": "generate", "prompt": "a kite over a beach", "duration": 2},
        {"id": "refused", "action": "generate", "prompt": "a storm #fail=invalid_argument"},
        {"id": "flagged", "action": "generate", "prompt": "a crowd #moderated"},
    ]

    async def run(manifest_rows: list[dict[str, Any]]) -> Any:
        """Run a manifest of `manifest_rows` to its end, its events sent; its report."""
        state = await make_videos(
            str(write_csv(tmp_path / "m.csv", manifest_rows)), output=str(tmp_path / "out"),
            credentials=credentials_for(emulator), submit_rate=50.0, return_state=True,
        )  # fmt: skip
        await drain_prefect_workers()
        return await report_of(state)

    started = time.monotonic()
    report = await run(rows)
    items = {item.id: item for item in report.items}
    assert {i: item.status for i, item in items.items()} == {
        "kite": "succeeded", "refused": "failed", "flagged": "moderated"}  # fmt: skip
    await until(receiver, notifications=2, published=1)
    print(f"both automations fired within {time.monotonic() - started:.1f} s of the run's start")

    # a flow run of the downstream deployment, with the succeeded video as its parameters
    (published,) = await runs_of(PUBLISH_DEPLOYMENT)
    assert published.parameters == {
        "video": items["kite"].output,
        "row_id": "kite",
        "request_id": items["kite"].request_id,
    }
    assert Path(published.parameters["video"]).is_file()

    # one notification per unsuccessful row, naming the row, status, error and flow run
    bodies = sorted(receiver.bodies, key=lambda body: body["subject"])
    assert [body["subject"] for body in bodies] == [
        "grok-video: row flagged moderated", "grok-video: row refused failed"]  # fmt: skip
    flagged, refused = (body["body"] for body in bodies)
    assert "Row 2 (refused, generate) ended failed, error: invalid_argument." in refused
    assert "Row 3 (flagged, generate) ended moderated" in flagged
    async with get_client() as client:
        upstream = await client.read_flow_run(report.flow_run_id)
    for text, row in ((refused, "refused"), (flagged, "flagged")):
        assert f"Flow run: {upstream.name} ({upstream.id})" in text
        assert f"Request: {items[row].request_id}" in text

    # A rerun announces the same outcomes under the same event ids, which the triggers service
    # has seen (it remembers ids for 30 minutes): nothing fires again, but a new row's failure
    # does (and, coming last, shows the rest were taken in).
    await run(
        [*rows, {"id": "dropped", "action": "generate", "prompt": "rain #fail=invalid_argument"}]
    )
    await until(receiver, notifications=3, published=1)
    assert receiver.bodies[-1]["subject"] == "grok-video: row dropped failed"
    await asyncio.sleep(1.0)
    assert len(receiver.bodies) == 3 and len(await runs_of(PUBLISH_DEPLOYMENT)) == 1

    # and a worker of the pool runs the downstream flow with that video
    prefect_cli("worker", "start", "--pool", "grok-video", "--run-once", env=env)
    async with get_client() as client:
        done = await client.read_flow_run(published.id)
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[done.id])))
    assert done.state.is_completed(), done.state
    assert f"Publishing {items['kite'].output} (row kite" in "\n".join(log.message for log in logs)


def test_the_shipped_definitions_are_what_prefect_reads():
    """The files validate as Prefect 3.9.1 reads them; the notification's block id must be
    filled in first (creating the file as shipped fails instead of notifying nobody); the
    zombie-run window is the chunked run's own: three heartbeats of the deployment's."""
    from prefect.events import DeploymentTriggerTypes
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import TypeAdapter, ValidationError

    config = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    publish = next(d for d in config["deployments"] if d["name"] == "publish-video")
    (trigger,) = TypeAdapter(list[DeploymentTriggerTypes]).validate_python(publish["triggers"])
    assert trigger.expect == {"grok-video.video.succeeded"}
    assert trigger.parameters == {
        "video": "{{ event.payload.output }}", "row_id": "{{ event.resource.name }}",
        "request_id": "{{ event.payload.request_id }}"}  # fmt: skip
    assert (REPO / publish["entrypoint"].split(":")[0]).is_file()

    shipped = yaml.safe_load((REPO / "deployments" / "notifications.yaml").read_text())
    with pytest.raises(ValidationError, match="block_document_id"):
        AutomationCore.model_validate(shipped["automations"][0])
    (failures,) = yaml.safe_load(alerts_file("6f1c2a7e-0c43-4f0a-9a70-3f1d2f1e9b11"))[
        "automations"]  # fmt: skip
    automation = AutomationCore.model_validate(failures)
    assert automation.trigger.expect == {
        f"grok-video.video.{s}" for s in ("failed", "moderated", "expired", "timed_out", "unknown")
    }
    assert automation.trigger.threshold == 1 and not automation.trigger.within

    (zombies,) = yaml.safe_load((REPO / "deployments" / "automations.yaml").read_text())[
        "automations"]  # fmt: skip
    automation = AutomationCore.model_validate(zombies)
    assert automation.name == ZOMBIES
    assert automation.trigger.posture == "Proactive"
    assert automation.trigger.after == {"prefect.flow-run.heartbeat"}
    # three heartbeats at the frequency the deployment sets, as the chunked run's own watch
    extend = next(d for d in config["deployments"] if d["name"] == "make-videos")
    variables = extend["work_pool"]["job_variables"]["env"]
    window = HEARTBEATS_MISSED * int(variables["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
    assert automation.trigger.within.total_seconds() == window
    assert f"No heartbeat for {window} s" in zombies["actions"][0]["message"]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_zombie_run_automation_crashes_a_grok_video_run_whose_heartbeats_stop(
    own_server: str, tmp_path: Path
):
    """`deployments/automations.yaml`, created as docs/guides/ say (its window shortened to
    Prefect's least, 10 s, so the test need not wait 90): a Running flow run of the grok-video
    tag whose heartbeats stop is marked Crashed; one without the tag is left alone."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.events import emit_event
    from prefect.states import Running

    shipped = (REPO / "deployments" / "automations.yaml").read_text()
    assert shipped.count("within: 90\n") == 1
    zombie_file = tmp_path / "automations.yaml"
    zombie_file.write_text(shipped.replace("within: 90\n", "within: 10\n"))
    env = cli_environment(tmp_path / "prefect-home", api_url=own_server)
    created = prefect_cli("automation", "create", "--from-file", str(zombie_file), env=env)
    assert f"Created automation '{ZOMBIES}'" in created

    @flow(name="zombie-candidate")
    def candidate() -> None:
        """Never run: its flow runs are made by hand, Running, as a lost worker leaves them."""

    async with get_client() as client:
        runs = {}
        for tags in (["grok-video"], ["someone-else"]):
            run = await client.create_flow_run(candidate, tags=tags)
            await client.set_flow_run_state(run.id, Running(), force=True)
            runs[tags[0]] = run.id
        for tag, run_id in runs.items():  # one heartbeat each, as the flow engine sends it
            emit_event(
                "prefect.flow-run.heartbeat",
                resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"},
                related=[{"prefect.resource.id": f"prefect.tag.{tag}",
                          "prefect.resource.role": "tag"}],
            )  # fmt: skip
        await drain_prefect_workers()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = (await client.read_flow_run(runs["grok-video"])).state
            if state.is_crashed():
                break
            await asyncio.sleep(1)
        assert state.is_crashed(), state
        assert "No heartbeat for 90 s" in state.message
        other = (await client.read_flow_run(runs["someone-else"])).state
        assert other.is_running(), other
