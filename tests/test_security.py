"""Secrets stay secret: a canary API key taken through whole runs reaches no place it could leak.

One module-scoped set of runs against an emulator whose key is the canary, with seeded faults
(5xx and 429 storms on submit and poll, fractional Retry-After, failed, expired and moderated
jobs, a resubmission, invalid rows, a data-URL row and a local file row):

- `grok-video run` in a subprocess with the key in `GROK_VIDEO_API_KEY` (every log line on the
  console), and one with `--credentials` naming a block saved on the session's Prefect server;
- an in-process `make_videos` run given an unsaved block, and one refused for a bad parameter;
- a flow whose service answers with the key echoed (401, a cut connection, 5xx), and direct
  client calls whose error answers and transport errors carry the key.

Then every place is read back and scanned (parametrised by place, so a leak fails only its own
place): console output, Prefect logs, artifacts, flow and task runs, block documents, every
file under each `PREFECT_HOME` and result storage, the server's database, reports, exceptions
(`str`, `repr`, `args`, traceback), the client's log records and the `repr` of every object
holding the key. Each place must be non-empty, so the scan is real. The same places never hold
a data URL's body, and a row whose id would escape the output folder writes nothing outside it.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import logging
import secrets
import subprocess
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_cli import cli_command, cli_environment
from fixtures_emulator import FAST_POLL, credentials_for, set_polls
from fixtures_media import data_url, make_mp4, write_csv
from fixtures_prefect import drain_prefect_workers
from prefect import flow

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.client import AsyncGrokVideoClient
from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
from prefect_grok_video.errors import GrokVideoError
from prefect_grok_video.flows import make_videos, submit_extension, wait_for_video
from prefect_grok_video.flows.tasks import shared_client
from prefect_grok_video.policies import RetryPolicy
from prefect_grok_video.settings import GrokVideoSettings
from prefect_grok_video.sync_client import GrokVideoClient

pytestmark = pytest.mark.slow

#: The places scanned; each must be non-empty and hold neither the key nor a data URL body.
PLACES = (
    "console output",
    "prefect logs",
    "artifacts",
    "flow runs",
    "task runs",
    "block documents",
    "prefect homes",
    "result storage",
    "database",
    "reports",
    "exceptions",
    "client logs",
    "reprs",
)
#: Outcome of each row of the manifest every run takes (see `_rows`).
EXPECTED = {
    "local": "succeeded",
    "inline": "succeeded",
    "remote": "succeeded",
    "retried": "succeeded",
    "moderated": "moderated",
    "denied": "failed",
    "broken": "failed",
    "expired": "expired",
    "too-long": "invalid",
    "../evil": "invalid",
}
BLOCK_NAME = "security-canary"
ECHO_BASE_URL = "https://echo.invalid/grok/v1"
#: Retries of the echoing service: quick, and few.
QUICK_RETRY = RetryPolicy(max_attempts=2, backoff_initial=0.01, jitter=0.0)
#: Polls of the echoing service's flaky job: two of every three fail.
FLAKY_POLLS = itertools.count(1)


@dataclass
class Runs:
    """Everything the runs left behind, as text to scan, and what they did."""

    canary: str
    #: 60 characters from the middle of the data-URL row's base64 body, and 60 raw bytes.
    body_slice: str
    clip_slice: bytes
    #: place -> {what: content}
    places: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: run name -> its report, as JSON
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    flow_run_ids: dict[str, str] = field(default_factory=dict)
    #: run name -> the messages of its Prefect logs
    run_logs: dict[str, str] = field(default_factory=dict)
    #: run name -> (names in the output's parent folder before, after)
    listings: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    exceptions: list[BaseException] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    root: Path = Path()

    def add(self, place: str, what: str, content: str | bytes) -> None:
        """Record `content` found at `what` in `place`."""
        data = content.encode() if isinstance(content, str) else content
        self.places.setdefault(place, {})[what] = data


# -- the runs ---------------------------------------------------------------------------------


def _rows(tag: str, local: Path, inline: str) -> list[dict[str, Any]]:
    """The manifest: every outcome, retry and input kind; prompts tagged per run."""
    url = f"https://cdn.test/{tag}-{{}}.mp4"
    return [
        {"id": "local", "video": str(local), "prompt": f"{tag} the fog lifts", "duration": 4},
        {"id": "inline", "video": inline, "prompt": f"{tag} the camera pans", "duration": 3},
        {"id": "remote", "video": url.format("a"), "prompt": f"{tag} waves roll", "duration": 6},
        {"id": "retried", "video": url.format("b"), "duration": 5,
         "prompt": f"{tag} rain #fail-first=service_unavailable"},
        {"id": "moderated", "video": url.format("c"), "prompt": f"{tag} x #moderated",
         "duration": 2},
        {"id": "denied", "video": url.format("d"), "prompt": f"{tag} x #fail=permission_denied",
         "duration": 2},
        {"id": "broken", "video": url.format("e"), "prompt": f"{tag} x #fail=internal_error",
         "duration": 2},
        {"id": "expired", "video": url.format("f"), "prompt": f"{tag} x #expired", "duration": 2},
        {"id": "too-long", "video": url.format("g"), "prompt": f"{tag} x", "duration": 11},
        {"id": "../evil", "video": url.format("h"), "prompt": f"{tag} x", "duration": 2},
    ]  # fmt: skip


def _run_folder(root: Path, name: str) -> tuple[Path, Path]:
    """A run's folder and its output folder, whose parent starts empty."""
    folder = root / name
    (folder / "out").mkdir(parents=True)
    return folder, folder / "out" / "videos"


def _listing(folder: Path) -> set[str]:
    """Every path under `folder`, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start `grok-video ARGS` in a subprocess, its output captured."""
    return subprocess.Popen(
        cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=cwd,
    )  # fmt: skip


def _echo(request: httpx.Request) -> httpx.Response:
    """A service that repeats the bearer token it was sent in every error it gives."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    said = f"Incorrect API key provided: {key}"
    error = {"error": {"message": said, "type": "invalid_request_error", "code": f"bad {key}"}}
    if request.method == "POST":
        prompt = json.loads(request.content)["prompt"]
        what = prompt.split()[0]
    else:
        what = request.url.path.rsplit("/", 1)[-1].removeprefix("req_")
    if what == "ok":
        return httpx.Response(200, json={"request_id": "req_flaky"})
    if what in ("auth", "denied"):
        return httpx.Response(401 if what == "auth" else 403, json=error)
    if what == "text":
        return httpx.Response(401, text=f"Unauthorized: Authorization: Bearer {key}")
    if what == "gone":
        return httpx.Response(404, json={"detail": f"no job for key {key}"})
    if what == "limit":
        return httpx.Response(429, json=error, headers={"Retry-After": "0.01"})
    if what in ("server", "gateway"):
        return httpx.Response(500 if what == "server" else 504, json={"message": said})
    if what == "connect":
        raise httpx.ConnectError(f"proxy refused Authorization: Bearer {key}", request=request)
    if what == "read":
        raise httpx.ReadError(f"connection reset after Bearer {key}", request=request)
    if what == "flaky":  # two 5xx answers echoing the key, then done
        if next(FLAKY_POLLS) % 3:
            return httpx.Response(503, json={"error": said})
        return httpx.Response(200, json={"status": "done", "video": {"url": "", "duration": 3}})
    return httpx.Response(400, json=error)


@flow(name="security-echoing-service", persist_result=True, result_serializer="json")
async def echoing_service_flow(credentials: GrokVideoCredentials) -> None:
    """Tasks against a service that echoes the key: a lost submit, a flaky poll, a refusal."""
    client = credentials.get_client(transport=httpx.MockTransport(_echo), retry=QUICK_RETRY)
    async with client:
        token = shared_client.set(client)
        try:
            submit = submit_extension.with_options(retries=0, refresh_cache=True)
            lost = await submit("https://cdn.test/echo.mp4", "read now", 6, None, credentials)
            assert lost.request_id is None and lost.unknown_reason
            ok = await submit("https://cdn.test/echo.mp4", "ok now", 6, None, credentials)
            assert ok.request_id is not None
            await wait_for_video(ok.request_id, credentials, timeout=30, row_id="flaky")
            await submit("https://cdn.test/echo.mp4", "auth now", 6, None, credentials)
        finally:
            shared_client.reset(token)


async def _client_failures(canary: str, logger: logging.Logger) -> list[BaseException]:
    """Direct client calls failing against the echoing service; their exceptions."""
    caught: list[BaseException] = []
    options: dict[str, Any] = {
        "base_url": ECHO_BASE_URL, "retry": QUICK_RETRY, "poll": FAST_POLL, "logger": logger,
    }  # fmt: skip
    client = AsyncGrokVideoClient(canary, transport=httpx.MockTransport(_echo), **options)
    async with client:
        for what in ("auth", "denied", "text", "gone", "limit", "server", "gateway", "connect",
                     "read"):  # fmt: skip
            try:
                await client.submit_extension(video="https://cdn.test/x.mp4", prompt=f"{what} x")
            except GrokVideoError as exc:
                caught.append(exc)
            try:
                await client.get_video(f"req_{what}")
            except GrokVideoError as exc:
                caught.append(exc)
        try:
            await client.wait_for_video("req_connect", timeout=0.3)
        except GrokVideoError as exc:
            caught.append(exc)
        assert (await client.wait_for_video("req_flaky", timeout=10)).status == "done"

    def sync_calls() -> None:
        with GrokVideoClient(canary, transport=httpx.MockTransport(_echo), **options) as client:
            for call in (
                lambda: client.submit_extension(video="https://cdn.test/y.mp4", prompt="auth y"),
                lambda: client.get_video("req_connect"),
            ):
                try:
                    call()
                except GrokVideoError as exc:
                    caught.append(exc)

    await asyncio.to_thread(sync_calls)
    return caught


def _refused_settings(canary: str) -> list[BaseException]:
    """Objects given the key and a bad setting: the errors they raise."""
    caught: list[BaseException] = []
    attempts = (
        lambda: GrokVideoCredentials(api_key=canary, base_url="ftp://nowhere"),
        lambda: GrokVideoCredentials(api_key=canary, connect_timeout=-1),
        lambda: AsyncGrokVideoClient(canary, base_url="not a url"),
        lambda: GrokVideoSettings(api_key=canary, read_timeout=0),
    )
    for attempt in attempts:
        try:
            attempt()
        except Exception as exc:
            caught.append(exc)
    return caught


async def _result(state: Any) -> Any:
    """A final state's result, or the exception it failed with."""
    result = state.result(raise_on_failure=False)
    return await result if inspect.isawaitable(result) else result


async def _prepare(canary: str, base_url: str) -> None:
    """Save the canary's block on the session's server; forget the shared submit limit."""
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from prefect_grok_video.flows.engine.gate import DEFAULT_LIMIT_NAME

    async with get_client() as client:
        with contextlib.suppress(ObjectNotFound):
            await client.delete_global_concurrency_limit_by_name(DEFAULT_LIMIT_NAME)
    block = credentials_for(api_key=canary, base_url=base_url)
    await block.asave(BLOCK_NAME, overwrite=True)


async def _in_process(runs: Runs, manifest: Path, output: Path, base_url: str) -> None:
    """The in-process runs and calls; their reports, exceptions and objects."""
    canary = runs.canary
    credentials = credentials_for(api_key=canary, base_url=base_url)
    state = await make_videos(
        str(manifest), output=str(output), credentials=credentials, submit_rate=20.0,
        return_state=True,
    )  # fmt: skip
    failure = await _result(state)
    runs.exceptions.append(failure)
    report = failure.result
    runs.reports["in-process"] = json.loads(report.model_dump_json())
    runs.add("reports", "in-process report object", report.model_dump_json())
    runs.add("reports", "in-process report repr", repr(report))
    runs.add("reports", "in-process final state", repr(state))
    runs.flow_run_ids["in-process"] = str(state.state_details.flow_run_id)

    refused = await make_videos(
        str(manifest), output=str(output), credentials=credentials, max_resubmits=11,
        return_state=True,
    )  # fmt: skip
    assert refused.is_failed()
    runs.exceptions.append(await _result(refused))
    runs.add("reports", "refused run's state", repr(refused))

    echoed = await echoing_service_flow(
        credentials_for(api_key=canary, base_url=ECHO_BASE_URL), return_state=True
    )
    assert echoed.is_failed()
    runs.exceptions.append(await _result(echoed))
    runs.flow_run_ids["echoing service"] = str(echoed.state_details.flow_run_id)

    records: list[str] = []

    class Keep(logging.Handler):
        """Keeps every formatted record."""

        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("tests.security.client")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    runs.exceptions += await _client_failures(canary, logger)
    runs.add("client logs", "records of the echoing client", "\n".join(records))

    runs.exceptions += _refused_settings(canary)
    loaded = await GrokVideoCredentials.aload(BLOCK_NAME)
    sync_client = GrokVideoClient.from_settings()
    objects: dict[str, Any] = {
        "GrokVideoSettings (key in the environment)": GrokVideoSettings(),
        "GrokVideoCredentials": credentials,
        "GrokVideoCredentials.from_settings()": GrokVideoCredentials.from_settings(),
        "GrokVideoCredentials loaded from the server": loaded,
        "AsyncGrokVideoClient.from_settings()": AsyncGrokVideoClient.from_settings(),
        "AsyncGrokVideoClient from the block": credentials.get_client(),
        "GrokVideoClient.from_settings()": sync_client,
    }
    for name, value in objects.items():
        runs.add("reprs", f"repr({name})", repr(value))
        runs.add("reprs", f"str({name})", str(value))
        runs.add("reprs", f"vars({name})", repr(vars(value)))
        if hasattr(value, "model_dump_json"):
            runs.add("reprs", f"{name}.model_dump_json()", value.model_dump_json())
        if isinstance(value, AsyncGrokVideoClient):
            await value.aclose()
    sync_client.close()
    await drain_prefect_workers()


async def _pages(read: Any, **filters: Any) -> list[Any]:
    """Every object a paginated read of the Prefect API gives."""
    found: list[Any] = []
    while True:
        page = await read(limit=200, offset=len(found), **filters)
        found += page
        if len(page) < 200:
            return found


async def _read_back(runs: Runs) -> None:
    """Everything the session's Prefect server holds, through its API."""
    from prefect.client.orchestration import get_client

    await drain_prefect_workers()
    async with get_client() as client:
        logs = await _pages(client.read_logs)
        artifacts = await _pages(client.read_artifacts)
        flow_runs = await _pages(client.read_flow_runs)
        task_runs = await _pages(client.read_task_runs)
        blocks = await client.read_block_documents(include_secrets=False)
    for log in logs:
        runs.add("prefect logs", f"log {log.id}", log.model_dump_json())
    for artifact in artifacts:
        runs.add(
            "artifacts", f"artifact {artifact.key} ({artifact.id})", artifact.model_dump_json()
        )
    for run in flow_runs:
        runs.add("flow runs", f"flow run {run.name} ({run.id})", run.model_dump_json())
    for run in task_runs:
        runs.add("task runs", f"task run {run.name} ({run.id})", run.model_dump_json())
    for block in blocks:
        runs.add("block documents", f"block {block.name} ({block.id})", block.model_dump_json())
    for name, run_id in runs.flow_run_ids.items():
        runs.run_logs[name] = "\n".join(
            log.message for log in logs if str(log.flow_run_id) == run_id
        )
        runs.stats[f"artifacts of {name}"] = sorted(
            a.key or "" for a in artifacts if str(a.flow_run_id) == run_id
        )
        runs.stats[f"task runs of {name}"] = sorted(
            t.name for t in task_runs if str(t.flow_run_id) == run_id
        )
        runs.stats[f"parameters of {name}"] = next(
            (r.parameters for r in flow_runs if str(r.id) == run_id), None
        )


def _add_files(runs: Runs, place: str, folder: Path) -> None:
    """Every file under `folder`, byte for byte, as part of `place`."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            runs.add(place, str(path), path.read_bytes())


def _exception_texts(exc: BaseException, number: int) -> dict[str, str]:
    """Every way an exception shows itself: str, repr, args, attributes, traceback."""
    name = f"exception {number} ({type(exc).__name__})"
    return {
        f"str of {name}": str(exc),
        f"repr of {name}": repr(exc),
        f"args of {name}": repr(exc.args),
        f"attributes of {name}": repr(getattr(exc, "__dict__", {})),
        f"traceback of {name}": "".join(traceback.format_exception(exc)),
    }


@pytest.fixture(scope="module")
def runs(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Take the canary through every run, then collect every place it could have reached."""
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_HOME,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
    )

    root = tmp_path_factory.mktemp("security")
    canary = f"xai-canary-{secrets.token_hex(12)}"
    clips = root / "clips"
    clips.mkdir()
    # Unusual sizes, so that no other test of the session sends these very clips.
    inline = make_mp4(clips / "inline.mp4", seconds=2.5, fps=8, width=48, height=32)
    local = make_mp4(clips / "local.mp4", seconds=3.0, fps=10, width=80, height=48)
    clip = inline.read_bytes()
    inline_url = data_url(clip)
    body = inline_url.partition(",")[2]
    middle = len(body) // 2
    runs = Runs(
        canary=canary,
        body_slice=body[middle : middle + 60],
        clip_slice=clip[len(clip) // 2 : len(clip) // 2 + 60],
        root=root,
    )
    emulator = EmulatorServer(
        EmulatorConfig(
            api_key=canary,
            latency=0.2,
            seed=11,
            submit_rate=25.0,
            submit_burst=1,
            fractional_retry_after=True,
            storm_retry_after=0.05,
            p_submit_5xx=0.1,
            p_poll_5xx=0.1,
            p_submit_429=0.1,
            p_poll_429=0.15,
        )
    ).start()
    try:
        folders = {}
        for name in ("env-run", "block-run", "in-process"):
            folders[name] = _run_folder(root, name)
            runs.outputs[name] = folders[name][1]
        asyncio.run(_prepare(canary, emulator.base_url))

        processes: dict[str, subprocess.Popen[str]] = {}
        for name, extra, environment in (
            ("env-run", [], {"GROK_VIDEO_API_KEY": canary, "GROK_VIDEO_BASE_URL": emulator.base_url,
                             "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO"}),
            ("block-run", ["--credentials", BLOCK_NAME], {}),
        ):  # fmt: skip
            folder, output = folders[name]
            manifest = write_csv(folder / "manifest.csv", _rows(name, local, inline_url))
            before = _listing(output.parent)
            args = ["run", str(manifest), "--output", str(output), "--report",
                    str(folder / "report.json"), "--submit-rate", "20", *extra]  # fmt: skip
            env = cli_environment(
                folder / "home", api_url=prefect_harness, poll=FAST_POLL, **environment
            )
            processes[name] = _start_cli(args, env, folder)
            runs.listings[name] = (before, set())

        folder, output = folders["in-process"]
        manifest = folder / "manifest.json"
        manifest.write_text(json.dumps(_rows("in-process", local, inline_url)), encoding="utf-8")
        runs.listings["in-process"] = (_listing(output.parent), set())
        with pytest.MonkeyPatch.context() as env:
            set_polls(env)
            env.setenv("GROK_VIDEO_API_KEY", canary)
            env.setenv("GROK_VIDEO_BASE_URL", emulator.base_url)
            asyncio.run(_in_process(runs, manifest, output, emulator.base_url))

        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=240)
            runs.stats[f"exit code of {name}"] = process.returncode
            runs.add("console output", f"{name} stdout", stdout)
            runs.add("console output", f"{name} stderr", stderr)
            report_file = folders[name][0] / "report.json"
            if report_file.exists():
                runs.add("reports", f"{name} report file", report_file.read_bytes())
                runs.reports[name] = json.loads(report_file.read_text())
                runs.flow_run_ids[name] = runs.reports[name]["flow_run_id"]
            home = folders[name][0] / "home"
            _add_files(runs, "prefect homes", home)
            _add_files(runs, "result storage", home / "storage")
        for name in runs.listings:
            before, _ = runs.listings[name]
            runs.listings[name] = (before, _listing(runs.outputs[name].parent))
        runs.stats["emulator"] = emulator.state.stats()
    finally:
        emulator.stop()

    asyncio.run(_read_back(runs))
    _add_files(runs, "prefect homes", Path(PREFECT_HOME.value()))
    _add_files(runs, "result storage", Path(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()))
    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    for path in (database, database.with_name(database.name + "-wal")):
        if path.exists():
            runs.add("database", str(path), path.read_bytes())
    for number, exc in enumerate(runs.exceptions, 1):
        for what, text in _exception_texts(exc, number).items():
            runs.add("exceptions", what, text)
    yield runs


# -- scanning ---------------------------------------------------------------------------------


def _encodings(secret: bytes) -> list[bytes]:
    """`secret` as is, and as it reads inside base64 text at each of the three alignments."""
    forms = [secret]
    for shift, skip in ((0, 0), (1, 2), (2, 3)):
        data = b"\0" * shift + secret
        encoded = base64.b64encode(data)[skip : len(data) // 3 * 4]
        forms += [encoded, encoded.replace(b"+", b"-").replace(b"/", b"_")]
    return list(dict.fromkeys(forms))


def _occurrences(contents: dict[str, bytes], needles: Iterable[bytes]) -> list[str]:
    """Where any needle occurs, with the text around it."""
    found = []
    for what, data in contents.items():
        for needle in needles:
            at = data.find(needle)
            if at >= 0:
                around = data[max(0, at - 150) : at + len(needle) + 80]
                found.append(f"{what} @ {at}: …{around.decode('utf-8', 'replace')!r}…")
    return found


@pytest.mark.parametrize("place", PLACES)
def test_the_api_key_is_in_no_place(runs: Runs, place: str) -> None:
    """No form of the canary key (plain or base64) is anywhere in `place`."""
    contents = runs.places.get(place, {})
    assert contents, f"nothing was collected from {place}"
    leaks = _occurrences(contents, _encodings(runs.canary.encode()))
    assert not leaks, f"the API key leaked into {place}:\n" + "\n".join(leaks)


@pytest.mark.parametrize("place", PLACES)
def test_no_data_url_body_is_in_any_place(runs: Runs, place: str) -> None:
    """The data-URL row's clip (its base64 body or its bytes) is nowhere in `place`."""
    contents = runs.places.get(place, {})
    assert contents, f"nothing was collected from {place}"
    leaks = _occurrences(contents, [runs.body_slice.encode(), runs.clip_slice])
    assert not leaks, f"the data URL body reached {place}:\n" + "\n".join(leaks)


def test_every_place_scanned_is_real(runs: Runs) -> None:
    """The runs took every path, and each place holds what they should have left there."""
    places = runs.places
    assert runs.stats["exit code of env-run"] == 1  # some rows did not succeed, on purpose
    assert runs.stats["exit code of block-run"] == 1
    emulator = runs.stats["emulator"]
    assert emulator["server_errors"] > 0 and emulator["rate_limited"] > 0, emulator
    for name in ("env-run", "block-run", "in-process"):
        report = runs.reports[name]
        statuses = {item["id"]: item["status"] for item in report["items"]}
        assert statuses == EXPECTED, name
        items = {item["id"]: item for item in report["items"]}
        assert items["retried"]["attempts"] == 2 and items["broken"]["attempts"] == 3
        assert items["inline"]["source"].startswith("data:video/mp4 (")
        assert len(items["inline"]["source"]) < 60
        # the inline video described, not shown
        assert "submitted extend of data:video/mp4 (" in runs.run_logs[name], name
        assert "grok-video-results" in runs.stats[f"artifacts of {name}"]
        assert "extend-local" in runs.stats[f"task runs of {name}"]
        parameters = runs.stats[f"parameters of {name}"]
        assert parameters is not None and "manifest" in parameters
        assert parameters["credentials"]["api_key"] == "**********", parameters  # masked
    assert "Poll of req_flaky failed" in runs.run_logs["echoing service"]
    assert "rows succeeded" in places["console output"]["env-run stdout"].decode()
    assert b"submitted extend of data:video/mp4 (" in places["console output"]["env-run stderr"]
    assert "rows succeeded" in places["console output"]["block-run stdout"].decode()
    assert any(what.startswith(f"block {BLOCK_NAME} (") for what in places["block documents"])
    for name in ("env-run", "block-run"):
        home = str(runs.root / name / "home")
        assert any(what.startswith(home + "/storage/") for what in places["result storage"])
    assert len(places["result storage"]) > 2 and len(places["prefect homes"]) > 2
    assert all(len(data) > 0 for data in places["database"].values())
    assert len(places["reports"]) >= 3
    # every echoing answer was really echoed, and redacted: "***" stands where the key was
    echoed = [
        exc for exc in runs.exceptions if isinstance(exc, GrokVideoError) and "***" in str(exc)
    ]
    assert len(echoed) >= 15, [str(exc) for exc in runs.exceptions]
    assert len(places["exceptions"]) == 5 * len(runs.exceptions)  # each one scanned
    assert len(places["artifacts"]) >= 4 * 3  # progress, results, summary, links; per run
    client_logs = places["client logs"]["records of the echoing client"].decode()
    assert "retrying in" in client_logs and "***" in client_logs
    assert len(places["reprs"]) >= 20


def test_downloads_stay_under_the_output_root(runs: Runs) -> None:
    """A row whose id would escape the output folder is invalid, and nothing lands outside."""
    for name, (before, after) in runs.listings.items():
        assert before == set(), name
        succeeded = [id for id, status in EXPECTED.items() if status == "succeeded"]
        # each video with its poster, and the run's report and gallery: all in the folder
        files = {f"videos/{id}.{kind}" for id in succeeded for kind in ("mp4", "jpg")}
        assert after == {"videos", "videos/index.html", "videos/report.json", *files}, name
        escape = next(i for i in runs.reports[name]["items"] if i["id"] == "../evil")
        assert escape["status"] == "invalid" and escape["error"]["field"] == "id"
        assert escape["request_id"] is None and escape["attempts"] == 0
    assert not list(runs.root.rglob("evil*"))
