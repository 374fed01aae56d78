"""The `GrokVideoCredentials` block: Prefect's block standards, validation, secrecy, its clients
against the emulator, and save / load / register against a real temporary Prefect server."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from fixtures_emulator import FAST_POLL, FAST_RETRY
from prefect import flow
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockTypeUpdate
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr, ValidationError

import prefect_grok_video
from prefect_grok_video import AsyncGrokVideoClient, GrokVideoClient, GrokVideoSettings, PollPolicy
from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.errors import AuthenticationError, ConfigurationError
from prefect_grok_video.settings import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_TIMEOUT

CANARY = "xai-canary-5f3c9e1d7a2b"
SLUG = "grok-video-credentials"
URL_INPUT = "https://cdn.test/a.mp4"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".webp", ".gif")
IMAGE_HOSTS = {"avatars.githubusercontent.com", "images.ctfassets.net", "cdn.sanity.io"}


# -- helpers ----------------------------------------------------------------------------------


@contextmanager
def captured_logs(*names: str) -> Iterator[list[str]]:
    """Every record, formatted with its args, that reaches the named loggers at DEBUG and up."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name}: {record.getMessage()} {record.__dict__}")

    handler = Collect(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("", *names)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200", **extra}


# -- Prefect's block standards ----------------------------------------------------------------


class TestGrokVideoCredentials(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return GrokVideoCredentials

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """Offline in place of the suite's download: the logo is an https image URL."""
        url = urlsplit(str(block._logo_url))
        assert url.scheme == "https"
        assert url.path.lower().endswith(IMAGE_SUFFIXES) or url.hostname in IMAGE_HOSTS


def test_block_metadata():
    assert GrokVideoCredentials.get_block_type_name() == "Grok Video Credentials"
    assert GrokVideoCredentials.get_block_type_slug() == SLUG
    assert str(GrokVideoCredentials._documentation_url).startswith("https://")
    assert GrokVideoCredentials.get_description().startswith("Credentials and connection")
    schema = GrokVideoCredentials.model_json_schema()
    assert schema["secret_fields"] == ["api_key"]
    assert schema["required"] == ["api_key"]
    assert all(field.title for field in GrokVideoCredentials.model_fields.values())


def test_lazy_export_from_the_package():
    """Listed by `dir()` before Prefect is imported; imported (with Prefect) on first access."""
    script = (
        "import sys, prefect_grok_video as p\n"
        "loaded = lambda: any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules)\n"
        "print('GrokVideoCredentials' in dir(p), loaded())\n"
        "from prefect_grok_video import GrokVideoCredentials\n"
        "print(GrokVideoCredentials.__module__, loaded())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_subprocess_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True False", "prefect_grok_video.blocks.credentials True"]
    assert prefect_grok_video.GrokVideoCredentials is GrokVideoCredentials
    assert "GrokVideoCredentials" in dir(prefect_grok_video)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        prefect_grok_video.Nope  # noqa: B018


def test_prefect_finds_the_block_through_the_collections_entry_point(tmp_path):
    """A fresh process that never imported this package resolves the slug to the block class."""
    script = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "from prefect.blocks.core import Block\n"
        "print(any(m.startswith('prefect_grok_video') for m in sys.modules))\n"
        "print(sorted(ep.name for ep in entry_points(group='prefect.collections')))\n"
        f"cls = Block.get_block_class_from_key({SLUG!r})\n"
        "print(f'{cls.__module__}.{cls.__qualname__}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    before, names, found = done.stdout.splitlines()[-3:]
    assert before == "False"
    assert "prefect_grok_video" in names
    assert found == "prefect_grok_video.blocks.credentials.GrokVideoCredentials"


# -- fields and validation --------------------------------------------------------------------


def test_defaults_come_from_the_settings_module():
    block = GrokVideoCredentials(api_key="k-123")
    assert block.base_url == DEFAULT_BASE_URL
    assert block.model == DEFAULT_MODEL
    assert block.timeout == DEFAULT_TIMEOUT
    assert (block.connect_timeout, block.read_timeout, block.write_timeout) == (
        DEFAULT_TIMEOUT.connect,
        DEFAULT_TIMEOUT.read,
        DEFAULT_TIMEOUT.write,
    )


def test_base_url_loses_its_trailing_slash():
    block = GrokVideoCredentials(api_key="k-123", base_url="https://api.x.ai/v1/")
    assert block.base_url == "https://api.x.ai/v1"


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"api_key": ""},
        {"api_key": "   "},
        {"api_key": "k", "base_url": "ftp://example.com"},
        {"api_key": "k", "base_url": "not a url"},
        {"api_key": "k", "model": ""},
        {"api_key": "k", "connect_timeout": 0},
        {"api_key": "k", "read_timeout": -1},
        {"api_key": "k", "write_timeout": 0},
    ],
)
def test_invalid_fields_are_refused(fields):
    with pytest.raises(ValidationError):
        GrokVideoCredentials(**fields)


# -- secrecy ----------------------------------------------------------------------------------


def test_the_key_never_shows_in_repr_str_or_dumps():
    block = GrokVideoCredentials(api_key=CANARY)
    assert isinstance(block.api_key, SecretStr)
    assert block.api_key.get_secret_value() == CANARY
    dumped = block.model_dump()
    for text in (
        repr(block),
        str(block),
        f"{block}",
        str(dumped),
        block.model_dump_json(),
        str(block.model_dump(mode="json")),
        repr(block.get_client()),
    ):
        assert CANARY not in text
    assert dumped["model"] == DEFAULT_MODEL  # the dump is otherwise complete


def test_the_block_document_carries_the_key_in_its_secret_field_only():
    block = GrokVideoCredentials(api_key=CANARY)

    def document():  # a fresh one each time: Prefect's serializer rewrites `data` in place
        return block._to_block_document(
            name="x", block_schema_id=uuid.uuid4(), block_type_id=uuid.uuid4()
        )

    assert document().data["api_key"].get_secret_value() == CANARY
    assert CANARY not in document().model_dump_json()
    assert document().model_dump_json(context={"include_secrets": True}).count(CANARY) == 1


# -- from_settings ----------------------------------------------------------------------------


def test_from_settings_reads_the_environment(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_API_KEY", CANARY)
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", "https://api.x.ai/v1/")
    monkeypatch.setenv("GROK_VIDEO_MODEL", "grok-video-test")
    monkeypatch.setenv("GROK_VIDEO_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("GROK_VIDEO_READ_TIMEOUT", "12.5")
    monkeypatch.setenv("GROK_VIDEO_WRITE_TIMEOUT", "99")
    monkeypatch.setenv("GROK_VIDEO_MAX_DOWNLOAD_BYTES", "1000")
    monkeypatch.setenv("GROK_VIDEO_POLL_FIRST", "0.5")
    block = GrokVideoCredentials.from_settings()
    assert block.max_download_bytes == 1000
    assert block.get_client().poll.first_poll == 0.5
    assert block.api_key.get_secret_value() == CANARY
    assert block.base_url == "https://api.x.ai/v1"
    assert block.model == "grok-video-test"
    assert block.timeout == httpx.Timeout(connect=3, read=12.5, write=99, pool=3)


def test_from_settings_takes_explicit_settings():
    settings = GrokVideoSettings(api_key="k-explicit", base_url="http://127.0.0.1:9/v1")
    block = GrokVideoCredentials.from_settings(settings)
    assert block.api_key.get_secret_value() == "k-explicit"
    assert block.base_url == "http://127.0.0.1:9/v1"


#: Where each setting shows on a client built from it; a setting missing here fails the test
#: below, so a new one cannot be added without reaching the client.
REACHES_THE_CLIENT = {
    "api_key": (SecretStr("k-every-field"), lambda c: c._api_key),
    "base_url": ("http://127.0.0.1:9/every", lambda c: c.base_url),
    "model": ("grok-other-model", lambda c: c.model),
    "connect_timeout": (1.5, lambda c: c._http.timeout.connect),
    "read_timeout": (2.5, lambda c: c._http.timeout.read),
    "write_timeout": (3.5, lambda c: c._http.timeout.write),
    "max_upload_bytes": (1234, lambda c: c.max_upload_bytes),
    "max_download_bytes": (5678, lambda c: c.max_download_bytes),
    "poll_first": (0.25, lambda c: c.poll.first_poll),
    "poll_min_interval": (0.5, lambda c: c.poll.min_interval),
    "poll_max_interval": (7.0, lambda c: c.poll.max_interval),
}


@pytest.mark.parametrize("build", ["async", "sync", "client_from_settings"])
def test_every_setting_reaches_the_client(build):
    # every setting but the price list (a run's, not a client's: see test_spending.py)
    assert set(REACHES_THE_CLIENT) == set(GrokVideoSettings.model_fields) - {"prices"}
    values = {name: value for name, (value, _) in REACHES_THE_CLIENT.items()}
    settings = GrokVideoSettings(**values)
    for name in values:
        assert getattr(settings, name) != GrokVideoSettings.model_fields[name].default, name
    if build == "client_from_settings":
        client = AsyncGrokVideoClient.from_settings(settings)
    else:
        block = GrokVideoCredentials.from_settings(settings)
        client = block.get_client() if build == "async" else block.get_sync_client()._async
    for name, (value, seen) in REACHES_THE_CLIENT.items():
        assert seen(client) == value, name
    # the download pool waits as long for an answer as the API pool
    assert client._downloads._http.timeout.read == client._http.timeout.read


def test_an_explicit_client_ignores_the_environment(monkeypatch):
    """Arguments rule: an unrelated bad GROK_VIDEO_* variable breaks nothing, and a good one
    changes nothing, for a client built with explicit arguments."""
    monkeypatch.setenv("GROK_VIDEO_POLL_FIRST", "not-a-number")
    monkeypatch.setenv("GROK_VIDEO_MAX_DOWNLOAD_BYTES", "1000")
    client = AsyncGrokVideoClient("k", base_url="http://127.0.0.1:9/v1", poll=FAST_POLL)
    assert client.poll == FAST_POLL
    assert client.max_download_bytes == GrokVideoSettings.model_fields["max_download_bytes"].default
    monkeypatch.setenv("GROK_VIDEO_POLL_FIRST", "42")
    assert AsyncGrokVideoClient("k").poll == PollPolicy()


@pytest.mark.parametrize("key", [None, "", "  "])
def test_from_settings_without_a_key_says_what_to_do(monkeypatch, key):
    if key is None:
        monkeypatch.delenv("GROK_VIDEO_API_KEY", raising=False)
    else:
        monkeypatch.setenv("GROK_VIDEO_API_KEY", key)
    with pytest.raises(ConfigurationError, match="GROK_VIDEO_API_KEY") as caught:
        GrokVideoCredentials.from_settings()
    assert "GrokVideoCredentials" in str(caught.value)


def test_from_settings_with_a_bad_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_API_KEY", CANARY)
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", "ftp://example.com")
    with pytest.raises(ConfigurationError, match="GROK_VIDEO_BASE_URL") as caught:
        GrokVideoCredentials.from_settings()
    assert CANARY not in str(caught.value)


# -- clients ----------------------------------------------------------------------------------


async def test_get_client_is_built_from_the_fields_and_passes_overrides():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"request_id": "req_1"})

    block = GrokVideoCredentials(
        api_key=CANARY,
        base_url="https://grok.test/v1/",
        model="grok-video-test",
        connect_timeout=1.5,
        read_timeout=2.5,
        write_timeout=3.5,
    )
    client = block.get_client(transport=httpx.MockTransport(answer), poll=FAST_POLL)
    async with client:
        assert isinstance(client, AsyncGrokVideoClient)
        assert client.poll is FAST_POLL
        assert client.logger is not None
        assert client.logger.name == "prefect.GrokVideoCredentials"
        assert await client.submit_extension(video=URL_INPUT, prompt="p") == "req_1"
    (request,) = seen
    assert str(request.url) == "https://grok.test/v1/videos/extensions"
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert b'"model":"grok-video-test"' in request.content.replace(b" ", b"")
    assert request.extensions["timeout"] == {
        "connect": 1.5,
        "read": 2.5,
        "write": 3.5,
        "pool": 1.5,
    }


async def test_get_client_submits_and_polls_against_the_emulator(emulator):
    block = GrokVideoCredentials(api_key=emulator.api_key, base_url=emulator.base_url)
    async with block.get_client(poll=FAST_POLL, retry=FAST_RETRY) as client:
        request_id = await client.submit_extension(video=URL_INPUT, prompt="the sun rises")
        job = await client.wait_for_video(request_id, timeout=10)
    assert job.outcome == "succeeded"
    assert job.video.url
    assert emulator.state.accepted_by_input == {URL_INPUT: 1}


def test_get_sync_client_submits_and_polls_against_the_emulator(emulator):
    block = GrokVideoCredentials(api_key=emulator.api_key, base_url=emulator.base_url)
    with block.get_sync_client(poll=FAST_POLL, retry=FAST_RETRY) as client:
        assert isinstance(client, GrokVideoClient)
        assert client.base_url == emulator.base_url.rstrip("/")
        request_id = client.submit_extension(video=URL_INPUT, prompt="the sun sets")
        job = client.wait_for_video(request_id, timeout=10)
    assert job.outcome == "succeeded"
    assert emulator.state.accepted_by_input == {URL_INPUT: 1}


async def test_the_key_never_reaches_a_log_line(emulator_factory):
    server = emulator_factory(api_key=CANARY)
    block = GrokVideoCredentials(api_key=CANARY, base_url=server.base_url)
    wrong = GrokVideoCredentials(api_key=CANARY + "-revoked", base_url=server.base_url)
    with captured_logs(
        "prefect", "prefect.GrokVideoCredentials", "prefect_grok_video", "httpx", "httpcore"
    ) as lines:
        block.logger.info("using %r", block)
        async with block.get_client(poll=FAST_POLL, retry=FAST_RETRY) as client:
            job = await client.wait_for_video(
                await client.submit_extension(video=URL_INPUT, prompt="p"), timeout=10
            )
        with block.get_sync_client(poll=FAST_POLL, retry=FAST_RETRY) as sync_client:
            sync_client.get_video(job.request_id)
        async with wrong.get_client(retry=FAST_RETRY) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.submit_extension(video=URL_INPUT, prompt="p")
            logging.getLogger("prefect_grok_video").error("failed: %s", caught.value)
    text = "\n".join(lines)
    assert "Submitted" in text and "HTTP Request" in text  # the capture did see the traffic
    assert CANARY not in text
    assert CANARY not in str(caught.value) and CANARY not in repr(caught.value)


# -- against a temporary Prefect server -------------------------------------------------------


async def test_get_client_logs_to_the_run_logger_inside_a_flow(prefect_api):
    block = GrokVideoCredentials(api_key=CANARY)

    @flow
    async def build_client() -> tuple[str, str | None, str]:
        from prefect.runtime import flow_run

        client = block.get_client()
        await client.aclose()
        extra = getattr(client.logger, "extra", None) or {}
        return type(client.logger).__name__, extra.get("flow_run_id"), flow_run.id

    adapter, logged_run_id, run_id = await build_client()
    assert adapter == "PrefectLogAdapter"
    assert logged_run_id == run_id


async def test_save_and_load_round_trip_keeps_the_key_secret(prefect_api):
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    name = f"grok-{uuid.uuid4().hex[:12]}"
    block = GrokVideoCredentials(
        api_key=CANARY, base_url="https://api.x.ai/v1/", model="grok-video-test", read_timeout=7
    )
    await block.save(name)

    loaded = await GrokVideoCredentials.load(name)
    assert isinstance(loaded, GrokVideoCredentials)
    assert loaded.api_key.get_secret_value() == CANARY
    assert loaded.model_dump(exclude={"api_key"}) == block.model_dump(exclude={"api_key"})
    assert loaded.base_url == "https://api.x.ai/v1" and loaded.read_timeout == 7

    async with get_client() as client:
        hidden = await client.read_block_document_by_name(
            name, block_type_slug=SLUG, include_secrets=False
        )
        shown = await client.read_block_document_by_name(
            name, block_type_slug=SLUG, include_secrets=True
        )
    assert hidden.data["api_key"] == "********"
    assert CANARY not in hidden.model_dump_json(context={"include_secrets": True})
    assert hidden.data["model"] == "grok-video-test"
    assert hidden.block_schema.fields["secret_fields"] == ["api_key"]
    revealed = shown.data["api_key"]
    revealed = revealed.get_secret_value() if isinstance(revealed, SecretStr) else revealed
    assert revealed == CANARY

    # at rest the server keeps block data encrypted: the key is nowhere in the database files
    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert name.encode() in stored  # the right database: the document's name is there
    assert CANARY.encode() not in stored


async def test_prefect_block_register_finds_the_block(prefect_api, tmp_path):
    """`prefect block register -m prefect_grok_video` walks the lazy export and registers it."""
    stale = "stale description"
    async with get_client() as client:
        try:
            existing = await client.read_block_type_by_slug(SLUG)
        except Exception:  # not registered yet: the CLI must create it
            existing = None
        if existing is not None:  # registered at server start: make the CLI's update visible
            await client.update_block_type(existing.id, BlockTypeUpdate(description=stale))
            assert (await client.read_block_type_by_slug(SLUG)).description == stale

    started = time.perf_counter()
    done = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_grok_video"],
            cwd=tmp_path,
            env=_subprocess_env(PREFECT_API_URL=prefect_api),
            capture_output=True,
            text=True,
            timeout=180,
        )
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully registered 1 block" in done.stdout, done.stdout
    assert "Grok Video Credentials" in done.stdout
    assert time.perf_counter() - started < 180

    async with get_client() as client:
        block_type = await client.read_block_type_by_slug(SLUG)
        listed = {t.slug for t in await client.read_block_types()}
        schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
    assert SLUG in listed
    assert block_type.name == "Grok Video Credentials"
    assert block_type.description == GrokVideoCredentials.get_description()
    assert str(block_type.logo_url) == str(GrokVideoCredentials._logo_url)
    assert "GrokVideoCredentials.load(" in block_type.code_example
    assert schema is not None and schema.fields["secret_fields"] == ["api_key"]
