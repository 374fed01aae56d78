"""Bad input, table-driven: every broken row is refused with its row, field and reason, is never
submitted, and never stops the good rows of the same manifest; broken manifests stop the CLI.

The row-level cases are rows of ONE JSON manifest, mixed with good rows and run ONCE through
`make_videos` in-process (the session's Prefect server, a module-scoped emulator); each case
is then checked against the run's report and the emulator's counters. Manifest-level cases
run the `grok-video` command in subprocesses, which refuse them before Prefect starts.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures_cli import cli_environment, run_cli
from fixtures_emulator import TEST_KNOBS, credentials_for, input_key, set_polls
from fixtures_media import data_url, jpeg, png
from fixtures_prefect import delete_limit, drain_prefect_workers, report_of

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.emulator import EmulatorConfig, EmulatorServer
from prefect_grok_video.flows import make_videos
from prefect_grok_video.flows.engine.gate import DEFAULT_LIMIT_NAME
from prefect_grok_video.images import MAX_IMAGE_BYTES
from prefect_grok_video.manifest import InvalidRow, ValidRow, load_manifest
from prefect_grok_video.report import ItemResult, RunReport

CDN = "https://cdn.test/bad-input/{}.mp4"
#: Placeholders of `video` and `image` values, replaced by real files when the manifest is
#: written.
GOOD_CLIP = "clips/good.mp4"  # relative to the manifest's folder: a copy of `h264_clip`
MEDIA = (
    "<good-data-url>", "<short>", "<long>", "<ten-s>", "<mpeg4>", "<vp9>", "<truncated>",
    "<not-mp4>", "<empty>", "<folder>", "<missing>", "<mpeg4-data-url>", "<png>",
    "<jpeg-data-url>", "<gif>", "<still-text>", "<still-huge>", "<still-missing>",
    "<still-folder>",
)  # fmt: skip
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


@dataclass(frozen=True)
class Case:
    """One row of the big manifest: valid (`field` None, must succeed), what must be refused,
    or a valid row whose upstream (`video: @<id>`) ends `upstream_ends`, so it must not run."""

    name: str
    #: The row as written to the JSON manifest; `MEDIA` placeholders become real values.
    row: Any
    #: The field the report must blame; None for a valid row.
    field: str | None = None
    #: Phrases the message must hold (what is wrong).
    phrases: tuple[str, ...] = ()
    #: The id the message must name, when it is not the row's own text id or `row-<n>`.
    shown_id: str | None = None
    #: The status its upstream ends with, for a row that must end `upstream_failed`.
    upstream_ends: str | None = None

    @property
    def status(self) -> str:
        """The status the row must end with."""
        if self.field is not None:
            return "invalid"
        return "succeeded" if self.upstream_ends is None else "upstream_failed"


def _row(name: str, prompt: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row `id: name` with `row` on top of a plain prompt and (but for a generation) a
    unique https video; a value of `...` leaves that key out."""
    values = {"id": name, "prompt": f"{prompt} ({name})"}
    if row.get("action") != "generate":
        values["video"] = CDN.format(name)
    values.update(row)
    return {k: v for k, v in values.items() if v is not ...}


def bad(name: str, field: str, *phrases: str, shown_id: str | None = None, **row: Any) -> Case:
    """A bad row blamed on `field` (see `_row` for what it holds)."""
    return Case(name, _row(name, "the scene goes on", row), field, phrases, shown_id)


def good(name: str, **row: Any) -> Case:
    """A valid row that must succeed."""
    return Case(name, _row(name, "the camera drifts on", row))


def blocked(name: str, upstream: str, ends: str, **row: Any) -> Case:
    """A valid row whose video is the result of row `upstream`, which ends `ends`."""
    return Case(name, _row(name, "it goes on", {"video": f"@{upstream}", **row}),
                upstream_ends=ends)  # fmt: skip


LONG_ID = "x" * 129
CASES: tuple[Case, ...] = (
    # -- good rows, which the bad ones around them must not disturb
    good("good-url-1", duration=4),
    good("good-url-2", duration="8"),
    good("good-local", video=GOOD_CLIP),
    good("good-data-url", video="<good-data-url>", duration=2),
    good("unicode-prompt", prompt="雪が静かに降り始め、café の灯りがともる 🎥 Ωμέγα"),
    good("rtl-prompt", prompt="השמש שוקעת מעל הים والغيوم تتحرك ببطء"),
    good("prompt-4096", prompt=("the waves roll in " * 300)[:4096]),
    good("café-ñandú"),  # an id of non-ASCII letters is a fine file name
    good("good-generate", action="generate", duration=3, aspect_ratio="9:16", resolution="480p"),
    good("good-i2v-png", action="generate", image="<png>", duration=2),
    good("good-i2v-jpeg", action="generate", image="<jpeg-data-url>", aspect_ratio="1:1"),
    good("good-edit", action="edit"),
    good("good-action-case", action=" Extend "),
    good("gen-10", action="generate", duration=10),  # a two-step chain: 10 s, then 18 s
    good("gen-10-ext", action="extend", video="@gen-10", duration=8),
    # -- prompt
    bad("prompt-empty", "prompt", "is empty", prompt=""),
    bad("prompt-whitespace", "prompt", "is empty", prompt=" \t\n  "),
    bad("prompt-4097", "prompt", "4097 characters, over the 4096-character limit",
        prompt="w" * 4097),
    bad("prompt-missing", "prompt", "missing", prompt=...),
    bad("prompt-number", "prompt", "must be text", prompt=42),
    # -- duration
    bad("duration-0", "duration", "from 2 to 10 seconds, got 0", duration=0),
    bad("duration-1", "duration", "from 2 to 10 seconds, got 1", duration=1),
    bad("duration-11", "duration", "from 2 to 10 seconds, got 11", duration=11),
    bad("duration-six", "duration", "whole number of seconds", "got 'six'", duration="six"),
    bad("duration-6.5", "duration", "whole number of seconds", "got 6.5", duration=6.5),
    bad("duration-6.5-text", "duration", "whole number of seconds", "got '6.5'", duration="6.5"),
    bad("duration-true", "duration", "whole number of seconds", "got True", duration=True),
    bad("duration-negative", "duration", "from 2 to 10 seconds, got -4", duration=-4),
    # -- video: files
    bad("video-missing-file", "video", "file not found", "missing.mp4", video="<missing>"),
    bad("video-folder", "video", "is a folder, not a video file", video="<folder>"),
    bad("video-text-file", "video", "not an MP4 file", video="<not-mp4>"),
    bad("video-empty-file", "video", "is empty (0 bytes)", video="<empty>"),
    bad("video-truncated", "video", "truncated MP4", video="<truncated>"),
    bad("video-mpeg4-part2", "video", "codec is MPEG-4 Part 2", "H.264, H.265 or AV1",
        video="<mpeg4>"),
    bad("video-vp9", "video", "codec is VP9", "H.264, H.265 or AV1", video="<vp9>"),
    bad("video-1s", "video", "1 s long", "2 to 15 s", video="<short>"),
    bad("video-20s", "video", "20 s long", "2 to 15 s", video="<long>"),
    # -- video: URLs and other values
    bad("video-ftp", "video", "unsupported URL scheme 'ftp'", video="ftp://cdn.test/clip.mp4"),
    bad("video-gopher", "video", "unsupported URL scheme 'gopher'",
        video="gopher://cdn.test/clip.mp4"),
    bad("data-url-not-base64", "video", "not base64-encoded",
        video="data:video/mp4,AAAAIGZ0eXBpc29t"),
    bad("data-url-bad-base64", "video", "not valid base64", video="data:video/mp4;base64,@@@@"),
    bad("data-url-not-video", "video", "holds 'text/plain', not a video",
        video=data_url(b"hello", "text/plain")),
    bad("data-url-not-mp4", "video", "not an MP4 file",
        video=data_url(b"plain words, no ftyp")),
    bad("data-url-mpeg4", "video", "codec is MPEG-4 Part 2", video="<mpeg4-data-url>"),
    bad("file-id-empty", "video", "needs an id after it", video="file_id:"),
    bad("video-blank", "video", "is empty", video="   "),
    bad("video-missing", "video", "missing", video=...),
    bad("video-number", "video", "must be text", video=7),
    # -- id
    bad("dup-1", "id", "duplicate id 'good-url-1' (first on row 1)", id="good-url-1"),
    bad("dup-2", "id", "duplicate id 'GOOD-URL-2' (first on row 2 as 'good-url-2'",
        id="GOOD-URL-2"),
    bad("id-slash", "id", "contains '/'", "outside the output folder", id="clips/escape"),
    bad("id-backslash", "id", f"contains {chr(92)!r}", "outside the output folder",
        id="clips\\escape"),
    bad("id-dotdot", "id", "contains '..'", "outside the output folder", id=".."),
    bad("id-nul", "id", "control character '\\x00'", id="nul\x00byte", shown_id="nul\\x00byte"),
    bad("id-blank", "id", "is blank", id="   ", shown_id=" "),  # whitespace runs shown as one
    bad("id-bidi", "id", "control character '\\u202e'", id="\u202eevil", shown_id="\\u202eevil"),
    bad("id-too-long", "id", "129 characters long, over 128", id=LONG_ID),
    bad("id-dash", "id", "command-line option", id="-rf"),
    bad("id-device", "id", "device name on Windows", id="CON"),
    bad("id-colon", "id", "contains ':'", id="a:b"),
    bad("id-list", "id", "must be text, got a list", id=["a"], shown_id="<a list>"),
    # -- model
    bad("model-spaces", "model", "without spaces", model="grok imagine video"),
    bad("model-padded", "model", "without spaces", model=" grok-imagine-video"),
    bad("model-number", "model", "must be a model id", model=3),
    # -- keys that are no field: refused, not run with the defaults
    bad("key-duraton", "duraton", "unknown key", "did you mean 'duration'?", duraton=4),
    bad("key-promt", "promt", "unknown key", "did you mean 'prompt'?", promt="the sea calms"),
    bad("key-acton", "acton", "unknown key", "did you mean 'action'?", acton="extend"),
    # -- action
    bad("action-unknown", "action", "must be generate, edit or extend, got 'animate'",
        action="animate"),
    bad("action-misspelt", "action", "got 'extnd': did you mean 'extend'?", action="extnd"),
    bad("action-number", "action", "got the number 2", action=2),
    # -- fields the action does not take
    bad("generate-video", "video", "generate takes no video", action="generate",
        video=CDN.format("generate-video")),
    bad("edit-image", "image", "edit takes no image", action="edit", image="<png>"),
    bad("extend-image", "image", "extend takes no image", action="extend", image="<png>"),
    bad("edit-duration", "duration", "edit takes no duration", action="edit", duration=4),
    bad("edit-aspect-ratio", "aspect_ratio", "edit takes no aspect_ratio", action="edit",
        aspect_ratio="16:9"),
    bad("extend-aspect-ratio", "aspect_ratio", "extend takes no aspect_ratio",
        aspect_ratio="16:9"),
    bad("edit-resolution", "resolution", "edit takes no resolution", action="edit",
        resolution="720p"),
    bad("extend-resolution", "resolution", "extend takes no resolution", action="extend",
        resolution="480p"),
    # -- each action's limits
    bad("generate-duration-0", "duration", "from 1 to 15 seconds, got 0", action="generate",
        duration=0),
    bad("generate-duration-16", "duration", "from 1 to 15 seconds, got 16", action="generate",
        duration=16),
    bad("extend-duration-1", "duration", "from 2 to 10 seconds, got 1", action="extend",
        duration=1),
    bad("extend-duration-11", "duration", "from 2 to 10 seconds, got 11", action="extend",
        duration="11"),
    bad("aspect-ratio-5-4", "aspect_ratio", "must be one of 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3",
        "got '5:4'", action="generate", aspect_ratio="5:4"),
    bad("aspect-ratio-number", "aspect_ratio", "must be text", "got the number 969",
        'YAML reads an unquoted 16:9 as 969: quote it, "16:9"', action="generate",
        aspect_ratio=969),
    bad("resolution-1080p", "resolution", "must be one of 480p, 720p, got '1080p'",
        "grok-imagine-video offers these", action="generate", resolution="1080p"),
    bad("edit-clip-10s", "video", "10 s long", "1 to 8.7 s", "(what edit accepts)",
        action="edit", video="<ten-s>"),
    bad("edit-file-id", "video", "edit cannot take a Files API id", action="edit",
        video="file_id:file-bad-input"),
    # -- image: stills that are not PNG or JPEG
    bad("image-gif", "image", "the still is GIF", "PNG or JPEG", action="generate",
        image="<gif>"),
    bad("image-text", "image", "the still is not an image", action="generate",
        image="<still-text>"),
    bad("image-mp4", "image", "a video, not a still", action="generate", image=GOOD_CLIP),
    bad("image-empty-file", "image", "is empty (0 bytes)", action="generate", image="<empty>"),
    bad("image-missing-file", "image", "file not found", "missing.png", action="generate",
        image="<still-missing>"),
    bad("image-folder", "image", "is a folder, not an image file", action="generate",
        image="<still-folder>"),
    bad("image-data-url-gif", "image", "holds 'image/gif', not an image", action="generate",
        image=data_url(GIF, "image/gif")),
    bad("image-data-url-text", "image", "the still is not an image", action="generate",
        image=data_url(b"plain words", "image/png")),
    bad("image-data-url-not-base64", "image", "not base64-encoded", action="generate",
        image="data:image/png,iVBORw0KGgo"),
    bad("image-data-url-bad-base64", "image", "not valid base64", action="generate",
        image="data:image/jpeg;base64,@@@@"),
    bad("image-over-limit", "image", f"up to {MAX_IMAGE_BYTES // 2**20} MiB", action="generate",
        image="<still-huge>"),
    bad("image-file-id", "image", "an image cannot be given as a Files API id",
        action="generate", image="file_id:file-bad-input"),
    bad("image-number", "image", "must be text", action="generate", image=5),
    # -- chains: video @<id>
    bad("upstream-blank", "video", "@ needs the id of the row", video="@"),
    bad("upstream-nobody", "video", "@nobody names no row of this manifest", video="@nobody"),
    bad("upstream-typo", "video", "@gen-1O names no row", "did you mean @gen-10?",
        video="@gen-1O"),
    bad("self-loop", "video", "@self-loop makes a cycle (self-loop → self-loop)",
        video="@self-loop"),
    bad("loop-a", "video", "makes a cycle (loop-a → loop-b → loop-c → loop-a)", video="@loop-b"),
    bad("loop-b", "video", "makes a cycle (loop-b → loop-c → loop-a → loop-b)", video="@loop-c"),
    bad("loop-c", "video", "makes a cycle (loop-c → loop-a → loop-b → loop-c)", video="@loop-a"),
    bad("chain-over-15", "video", "the result of @gen-10-ext will be 18 s long",
        "(10 s generated by gen-10 + 8 s added by gen-10-ext); extend accepts 2 to 15 s",
        "shorten the durations along the chain", video="@gen-10-ext"),
    bad("chain-edit-10", "video", "will be 10 s long (10 s generated by gen-10)",
        "edit accepts 1 to 8.7 s", action="edit", video="@gen-10"),
    # -- rows whose upstream ends without a result: not sent, nothing paid
    blocked("after-invalid", "action-unknown", "invalid"),
    blocked("after-loop", "loop-a", "invalid", action="edit"),
    blocked("after-chain-over", "chain-over-15", "invalid", duration=2),
    blocked("after-upstream-failed", "after-invalid", "upstream_failed"),
    # -- the row as a whole
    Case("row-list", [CDN.format("row-list"), "a list"], "row", ("is a list, not an object",)),
    Case("row-string", "just a string", "row", ("is a string, not an object",)),
    Case("row-null", None, "row", ("is null, not an object",)),
    # -- several problems: the first field is blamed, the message lists them all
    bad("several", "id", "id: contains '/'", "prompt: is empty", "duration: must be from 2",
        id="a/b", prompt="", duration=0),
)  # fmt: skip
GOOD = tuple(case for case in CASES if case.status == "succeeded")
BAD = tuple(case for case in CASES if case.status == "invalid")
BLOCKED = tuple(case for case in CASES if case.status == "upstream_failed")
ROW_OF = {case.name: number for number, case in enumerate(CASES, 1)}


async def run_flow(
    manifest: Path, output: Path, credentials: GrokVideoCredentials | None
) -> tuple[Any, RunReport]:
    """Run `make_videos`; the final state and the report, whatever the state."""
    state = await make_videos(
        str(manifest), output=str(output), credentials=credentials, submit_rate=50.0,
        return_state=True,
    )  # fmt: skip
    return state, await report_of(state)


# -- the big run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BigRun:
    """The one run of the big manifest: what was written, what came back, what was sent."""

    manifest: Path
    output: Path
    rows: list[Any]  # the rows as written, in order
    state: Any
    report: RunReport
    accepted_by_input: dict[str, int]
    accepted: int
    #: The operation of each (input key, prompt) the emulator received.
    sent: dict[tuple[str, str], str]

    def item(self, case: Case) -> ItemResult:
        """The report's item for `case` (found by row number: ids may repeat or be bad)."""
        number = ROW_OF[case.name]
        (item,) = [item for item in self.report.items if item.row == number]
        return item

    def row(self, case: Case) -> Any:
        """`case`'s row as written to the manifest."""
        return self.rows[ROW_OF[case.name] - 1]

    def key(self, case: Case) -> str | None:
        """The emulator's key of `case`'s job (relative paths from the manifest's folder; a
        chained row's: the result URL of its upstream's job)."""
        key = input_key(self.row(case), self.manifest.parent)
        if key is not None and key.startswith("@"):
            above = [item for item in self.report.items if item.id == key[1:]]
            return above[0].video_url if above else None
        return key

    def was_sent(self, case: Case) -> bool:
        """Whether the emulator received `case`'s input with `case`'s prompt."""
        row = self.row(case)
        prompt = row.get("prompt") if isinstance(row, dict) else None
        return (self.key(case), prompt) in self.sent


def materialise(row: Any, media: dict[str, str]) -> Any:
    """`row` with its `MEDIA` placeholders (if any) replaced by the real values."""
    if not isinstance(row, dict):
        return row
    return {key: media.get(value, value) if isinstance(value, str) else value
            for key, value in row.items()}  # fmt: skip


@pytest.fixture(scope="module")
async def big_run(
    prefect_harness: str,
    tmp_path_factory: pytest.TempPathFactory,
    mp4_factory: Callable[..., Path],
    h264_clip: Path,
    short_clip: Path,
    long_clip: Path,
    mpeg4_clip: Path,
    vp9_clip: Path,
    truncated_clip: Path,
    not_mp4_file: Path,
    empty_file: Path,
) -> BigRun:
    """Write the big JSON manifest, run it once through `make_videos` against an emulator."""
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "clips").mkdir()
    (folder / GOOD_CLIP).write_bytes(h264_clip.read_bytes())
    (folder / "clips" / "folder.mp4").mkdir()
    stills = folder / "stills"
    (stills / "folder.png").mkdir(parents=True)
    (stills / "still.png").write_bytes(png(32, 18))
    (stills / "anim.gif").write_bytes(GIF)
    (stills / "notes.png").write_text("these are notes, not a picture\n")
    with open(stills / "huge.png", "wb") as f:  # sparse: a PNG header, then nothing
        f.write(png())
        f.truncate(MAX_IMAGE_BYTES + 1_000_000)
    media = {
        "<good-data-url>": data_url(mp4_factory(seconds=4.0)),
        "<mpeg4-data-url>": data_url(mpeg4_clip),
        "<short>": str(short_clip),
        "<long>": str(long_clip),
        "<ten-s>": str(mp4_factory(seconds=10.0)),
        "<png>": "stills/still.png",
        "<jpeg-data-url>": data_url(jpeg(), "image/jpeg"),
        "<gif>": "stills/anim.gif",
        "<still-text>": "stills/notes.png",
        "<still-huge>": "stills/huge.png",
        "<still-missing>": "stills/missing.png",
        "<still-folder>": "stills/folder.png",
        "<mpeg4>": str(mpeg4_clip),
        "<vp9>": str(vp9_clip),
        "<truncated>": str(truncated_clip),
        "<not-mp4>": str(not_mp4_file),
        "<empty>": str(empty_file),
        "<folder>": "clips/folder.mp4",
        "<missing>": "clips/missing.mp4",
    }
    assert set(media) == set(MEDIA)
    rows = [materialise(case.row, media) for case in CASES]
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    output = folder / "out"

    server = EmulatorServer(EmulatorConfig(**TEST_KNOBS)).start()
    try:
        with pytest.MonkeyPatch.context() as env:
            set_polls(env)  # FAST_POLL: a module-scoped fixture cannot use `fast_polls`
            await delete_limit(DEFAULT_LIMIT_NAME)  # this run creates it at its own rate
            state, report = await run_flow(manifest, output, credentials_for(server))
    finally:
        server.stop()
        await drain_prefect_workers()
    sent = {(r.input_key, r.prompt): r.action for r in server.state.submissions}
    return BigRun(
        manifest, output, rows, state, report, server.state.accepted_by_input,
        server.state.accepted, sent,
    )  # fmt: skip


def expected_id(case: Case, number: int) -> str:
    """The id a message and the report must name for `case` at row `number`."""
    if case.shown_id is not None:
        return case.shown_id
    given = case.row.get("id") if isinstance(case.row, dict) else None
    return given if isinstance(given, str) and given else f"row-{number}"


@pytest.mark.parametrize("case", BAD, ids=[case.name for case in BAD])
def test_bad_row_is_invalid_names_row_field_and_reason_and_is_never_sent(
    big_run: BigRun, case: Case
) -> None:
    """A bad row ends `invalid`, blaming its field with its row, id and reason; never sent."""
    number = ROW_OF[case.name]
    item = big_run.item(case)
    shown = expected_id(case, number)
    assert item.status == "invalid", item
    assert item.error is not None
    assert item.error.code == "invalid_input"
    assert item.error.field == case.field
    assert item.error.message.startswith(f"row {number} (id {shown!r}): {case.field}: "), (
        item.error.message
    )
    for phrase in case.phrases:
        assert phrase in item.error.message
    assert item.id == shown
    assert (item.request_id, item.attempts, item.output) == (None, 0, None)
    assert not big_run.was_sent(case)


@pytest.mark.parametrize("case", BLOCKED, ids=[case.name for case in BLOCKED])
def test_a_row_whose_upstream_ended_without_a_result_is_upstream_failed_and_unpaid(
    big_run: BigRun, case: Case
) -> None:
    """A valid row whose video is the result of an invalid (or itself blocked) row ends
    `upstream_failed`, naming that row and how it ended; nothing is sent for it."""
    item = big_run.item(case)
    upstream = case.row["video"][1:]
    assert (item.status, item.id, item.upstream) == ("upstream_failed", case.name, upstream)
    assert item.error is not None
    assert (item.error.code, item.error.field) == ("upstream_failed", None)
    assert item.error.message == (
        f"its video is the result of row {ROW_OF[upstream]} (id {upstream!r}), which ended "
        f"{case.upstream_ends}: not submitted, nothing paid"
    )
    assert big_run.item(CASES[ROW_OF[upstream] - 1]).status == case.upstream_ends
    assert (item.request_id, item.attempts, item.output) == (None, 0, None)
    assert not big_run.was_sent(case)


@pytest.mark.parametrize("case", GOOD, ids=[case.name for case in GOOD])
def test_good_row_next_to_bad_ones_succeeds_with_its_file(big_run: BigRun, case: Case) -> None:
    """Every good row (unicode and right-to-left prompts too; generations from a prompt, a PNG
    and a JPEG, an edit, a chain) is sent once, to its operation, and downloaded."""
    item = big_run.item(case)
    assert item.status == "succeeded", item.error
    assert item.id == case.row["id"]
    assert item.prompt == case.row["prompt"]
    destination = big_run.output / f"{case.row['id']}.mp4"
    assert item.output == str(destination)
    assert destination.stat().st_size == item.size
    assert hashlib.sha256(destination.read_bytes()).hexdigest() == item.sha256
    key = big_run.key(case)
    assert key is not None
    assert big_run.accepted_by_input.get(key) == 1
    action = case.row.get("action", "extend").strip().lower()
    assert big_run.sent[key, case.row["prompt"]] == action  # unicode and RTL text intact


def test_only_the_good_rows_were_submitted_and_written(big_run: BigRun) -> None:
    """The emulator got exactly the good rows, once each; the output holds only their files."""
    assert big_run.accepted_by_input == {big_run.key(case): 1 for case in GOOD}
    assert big_run.accepted == len(GOOD)
    files = sorted(path.name for path in big_run.output.glob("*.mp4"))
    assert files == sorted(f"{case.row['id']}.mp4" for case in GOOD)


def test_report_accounts_for_every_row_and_the_run_ends_failed(big_run: BigRun) -> None:
    """One item per row in order; the totals; the run is Failed because rows were invalid."""
    report = big_run.report
    assert [item.row for item in report.items] == list(range(1, len(CASES) + 1))
    assert [item.status for item in report.items] == [case.status for case in CASES]
    assert report.totals["succeeded"] == len(GOOD)
    assert report.totals["invalid"] == len(BAD)
    assert report.totals["upstream_failed"] == len(BLOCKED)
    assert sum(report.totals.values()) == len(CASES)
    assert big_run.state.is_failed()
    assert big_run.state.message == (
        f"{len(GOOD)} of {len(CASES)} rows succeeded; {len(BAD)} invalid, "
        f"{len(BLOCKED)} upstream_failed"
    )


def test_the_suite_is_big_enough() -> None:
    """At least 75 bad cases and a few rows blocked by them, each name unique."""
    assert len(BAD) >= 75
    assert len(BLOCKED) >= 3
    assert len({case.name for case in CASES}) == len(CASES)


# -- manifests whose rows are all refused, or that must run ----------------------------------


async def test_a_manifest_without_a_prompt_column_makes_every_row_invalid(
    prefect_server: str, emulator: EmulatorServer, fast_polls: None, tmp_path: Path
) -> None:
    """No `prompt` column: every row is invalid on field prompt, naming the column; none sent."""
    manifest = tmp_path / "no-prompt.csv"
    manifest.write_text(
        "id,video,duration\n"
        f"first,{CDN.format('no-prompt-1')},4\n"
        f"second,{CDN.format('no-prompt-2')},6\n"
    )
    state, report = await run_flow(manifest, tmp_path / "out", credentials_for(emulator))
    assert [item.status for item in report.items] == ["invalid", "invalid"]
    for number, item in enumerate(report.items, 1):
        assert item.error is not None and item.error.field == "prompt"
        assert item.error.message.startswith(f"row {number} (id {item.id!r}): prompt: missing")
        assert "the manifest has no 'prompt' column (columns: id, video, duration)" in (
            item.error.message
        )
    assert [item.id for item in report.items] == ["first", "second"]
    assert emulator.state.accepted == 0
    assert state.is_failed()


async def test_a_csv_with_a_byte_order_mark_runs(
    prefect_server: str, emulator: EmulatorServer, fast_polls: None, tmp_path: Path
) -> None:
    """A UTF-8 BOM before the header does not hide the `id` column: the row runs as written."""
    manifest = tmp_path / "bom.csv"
    manifest.write_bytes(
        f"\ufeffid,video,prompt,duration\nbom-row,{CDN.format('bom')},the tide turns,4\n".encode()
    )
    assert manifest.read_bytes().startswith(b"\xef\xbb\xbfid,")
    state, report = await run_flow(manifest, tmp_path / "out", credentials_for(emulator))
    (item,) = report.items
    assert (item.status, item.id, item.duration) == ("succeeded", "bom-row", 4), item.error
    assert (tmp_path / "out" / "bom-row.mp4").is_file()
    assert emulator.state.accepted_by_input == {CDN.format("bom"): 1}
    assert state.is_completed()


# -- the upload limit ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["data URL", "local file"])
@pytest.mark.parametrize("over", [True, False], ids=["over", "at"])
def test_a_video_over_the_upload_limit_is_refused_by_load_manifest(
    mp4_factory: Callable[..., Path], form: str, over: bool
) -> None:
    """`load_manifest(max_upload_bytes=...)` refuses a clip one byte over it, names the setting."""
    clip = mp4_factory(seconds=3.5)
    video = data_url(clip) if form == "data URL" else str(clip)
    size = clip.stat().st_size
    manifest = load_manifest(
        [{"id": "big", "video": video, "prompt": "the sun sets"}],
        max_upload_bytes=size - 1 if over else size,
    )
    (row,) = manifest.rows
    if not over:
        assert isinstance(row, ValidRow)
        return
    assert isinstance(row, InvalidRow)
    assert [problem.field for problem in row.problems] == ["video"]
    assert row.message.startswith("row 1 (id 'big'): video: ")
    assert "over the" in row.message and "upload limit (GROK_VIDEO_MAX_UPLOAD_BYTES)" in row.message
    assert "base64," not in row.message  # never the data URL's body


def test_an_unquoted_ratio_in_a_yaml_manifest_is_refused_with_its_fix(tmp_path: Path) -> None:
    """YAML 1.1 reads `aspect_ratio: 16:9` as the number 969: the row says so and to quote it;
    the quoted value runs."""
    manifest = tmp_path / "ratios.yaml"
    manifest.write_text(
        "- id: bare\n  action: generate\n  prompt: dawn\n  aspect_ratio: 16:9\n"
        '- id: quoted\n  action: generate\n  prompt: dusk\n  aspect_ratio: "16:9"\n'
    )
    bare, quoted = load_manifest(str(manifest)).rows
    assert isinstance(bare, InvalidRow)
    assert bare.message == (
        "row 1 (id 'bare'): aspect_ratio: must be text, one of 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, "
        '2:3: got the number 969 (YAML reads an unquoted 16:9 as 969: quote it, "16:9")'
    )
    assert isinstance(quoted, ValidRow) and quoted.aspect_ratio == "16:9"


async def test_the_flow_honours_grok_video_max_upload_bytes(
    prefect_server: str,
    emulator: EmulatorServer,
    fast_polls: None,
    tmp_path: Path,
    mp4_factory: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run configured from the environment refuses a data URL over GROK_VIDEO_MAX_UPLOAD_BYTES."""
    clip = mp4_factory(seconds=3.5)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"id": "big", "video": data_url(clip), "prompt": "dusk"}]))
    monkeypatch.setenv("GROK_VIDEO_API_KEY", emulator.api_key)
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", emulator.base_url)
    monkeypatch.setenv("GROK_VIDEO_MAX_UPLOAD_BYTES", str(clip.stat().st_size - 1))
    _, report = await run_flow(manifest, tmp_path / "out", None)
    (item,) = report.items
    assert emulator.state.accepted == 0, "the clip over the limit was uploaded"
    assert item.status == "invalid"
    assert item.error is not None and item.error.field == "video"
    assert "upload limit" in item.error.message


# -- the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreadable:
    """A manifest the CLI must refuse as a whole, and what its one-line message must say."""

    name: str
    file: str
    content: str | bytes | None  # None: no such file; "/": a folder
    phrase: str


UNREADABLE = (
    # The cases the issue lists, each run by both commands in a subprocess.
    Unreadable(
        "malformed-json",
        "m.json",
        '[{"video": "https://cdn.test/x.mp4", "prompt": ',
        "is not valid JSON",
    ),
    Unreadable(
        "malformed-yaml",
        "m.yaml",
        "- video: https://cdn.test/x.mp4\n  prompt: [oops\n",
        "is not valid YAML",
    ),
    Unreadable("missing", "missing.csv", None, "manifest not found"),
    Unreadable("unknown-extension", "rows.txt", "id,video,prompt\n", "unsupported manifest format"),
    Unreadable("empty", "empty.csv", "", "is empty"),
)
#: More ways a manifest cannot be read, checked in-process (a subprocess each would be slow).
MORE_UNREADABLE = (
    Unreadable("whitespace-json", "blank.json", " \n\t\n", "is empty"),
    Unreadable("folder", "folder.csv", "/", "is a folder"),
    Unreadable("not-utf8", "latin1.csv", b"id,video,prompt\na,https://cdn.test/a.mp4,caf\xe9\n",
               "is not UTF-8"),
    Unreadable("json-single-row", "one.json", '{"video": "https://cdn.test/x.mp4", "prompt": "x"}',
               "a single row, not a list of rows"),
    Unreadable("json-number", "n.json", "42", "list of rows"),
    Unreadable("json-empty-list", "none.json", "[]", "has no rows"),
    Unreadable("csv-header-only", "head.csv", "id,video,prompt\n", "has a header but no rows"),
    Unreadable("csv-two-prompt-columns", "two.csv",
               "id,video,prompt,prompt\na,https://cdn.test/a.mp4,x,y\n", "2 'prompt' columns"),
    Unreadable("ftp-manifest", "ftp://cdn.test/m.csv", None, "unsupported manifest URL scheme"),
)  # fmt: skip


def write_unreadable(case: Unreadable, folder: Path) -> str:
    """Create `case`'s manifest in `folder`; return what to give the command."""
    if "://" in case.file:
        return case.file
    path = folder / case.file
    if case.content == "/":
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content)
    return str(path)


COMMANDS = ("run", "validate")


@dataclass(frozen=True)
class Refusal:
    """What one command did with an unreadable manifest."""

    done: subprocess.CompletedProcess[str]
    wrote_output: bool
    started_prefect: bool


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Refusal]]:
    """Every command on every unreadable manifest, in parallel subprocesses, against one
    emulator; then checks it received nothing."""
    folders = {
        (case.name, command): tmp_path_factory.mktemp(f"{case.name}-{command}")
        for case in UNREADABLE
        for command in COMMANDS
    }
    cases = {case.name: case for case in UNREADABLE}
    server = EmulatorServer(EmulatorConfig(**TEST_KNOBS)).start()

    def attempt(name: str, command: str) -> Refusal:
        folder = folders[name, command]
        manifest = write_unreadable(cases[name], folder)
        output, home = folder / "out", folder / "prefect-home"
        args = [command, manifest, *(["--output", str(output)] if command == "run" else [])]
        done = run_cli(*args, env=cli_environment(home, api=server), cwd=folder)
        return Refusal(done, output.exists(), home.exists())

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {key: pool.submit(attempt, *key) for key in folders}
            results = {key: future.result() for key, future in futures.items()}
    finally:
        server.stop()
    yield results
    assert server.state.accepted == 0


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", UNREADABLE, ids=[case.name for case in UNREADABLE])
def test_an_unreadable_manifest_exits_2_with_one_line_and_submits_nothing(
    refusals: dict[tuple[str, str], Refusal], case: Unreadable, command: str
) -> None:
    """Exit 2, one line naming the problem, no traceback, nothing written, Prefect not started."""
    refusal = refusals[case.name, command]
    done = refusal.done
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"grok-video {command}: ")
    assert case.phrase in done.stderr
    assert "Traceback" not in done.stderr
    assert not refusal.wrote_output
    assert not refusal.started_prefect


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", MORE_UNREADABLE, ids=[case.name for case in MORE_UNREADABLE])
def test_more_unreadable_manifests_exit_2_with_one_line(
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: Unreadable,
    command: str,
) -> None:
    """In-process `main`: exit 2 and one line naming the problem; nothing sent or written."""
    from prefect_grok_video import cli as grok_video

    for name, value in cli_environment(tmp_path / "prefect-home", api=emulator).items():
        if name.startswith("GROK_VIDEO_"):
            monkeypatch.setenv(name, value)
    manifest = write_unreadable(case, tmp_path)
    output = tmp_path / "out"
    args = [command, manifest, *(["--output", str(output)] if command == "run" else [])]
    assert grok_video.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"grok-video {command}: ")
    assert case.phrase in err
    assert emulator.state.accepted == 0
    assert not output.exists()


def test_validate_lists_every_bad_row_of_the_big_manifest_as_the_run_reported_it(
    big_run: BigRun, tmp_path: Path
) -> None:
    """`validate` exits 1 with one line per invalid row, the very messages of the run's report."""
    done = run_cli("validate", str(big_run.manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    expected = [item.error.message for item in big_run.report.items if item.status == "invalid"]
    # rows blocked by an invalid upstream are valid rows, named as waiting on it
    items = {item.id: item for item in big_run.report.items}

    def invalid_above(item: Any) -> Any:
        while item.status != "invalid":
            item = items[item.upstream]
        return item

    waiting = [
        f"row {item.row} (id {item.id!r}): video: waits for row {invalid_above(item).row} "
        f"(id {invalid_above(item).id!r}), which is invalid: it will not run"
        for item in big_run.report.items
        if item.status == "upstream_failed"
    ]
    assert len(waiting) == len(BLOCKED)
    valid = len(GOOD) + len(BLOCKED)
    summary = (
        f"{big_run.manifest}: {len(CASES)} rows, {valid} valid, {len(BAD)} invalid, "
        f"{len(BLOCKED)} waiting on an invalid row"
    )
    lines = done.stdout.splitlines()
    assert lines[:-1] == [*expected, *waiting, summary]
    assert lines[-1].startswith("Estimated cost: $")


def test_validate_accepts_a_csv_with_a_byte_order_mark(tmp_path: Path, h264_clip: Path) -> None:
    """A BOM CSV validates (exit 0) with its ids read from the first column."""
    manifest = tmp_path / "bom.csv"
    manifest.write_bytes(
        "\ufeffid,video,prompt\n"
        f"local,{h264_clip},the sun rises\n"
        f"remote,{CDN.format('bom-validate')},a wave breaks\n".encode()
    )
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"{manifest}: 2 rows, 2 valid, 0 invalid"
    assert done.stdout.splitlines()[1].startswith("Estimated cost: ")
    assert [row.id for row in load_manifest(str(manifest)).rows] == ["local", "remote"]


@pytest.mark.parametrize(
    ("name", "content", "lines"),
    [
        (
            "prompts.csv",
            "id,video,prompts\na,https://cdn.test/a.mp4,x\nb,https://cdn.test/b.mp4,y\n",
            [
                "row 1 (id 'a'): prompt: missing: the manifest has no 'prompt' column "
                "(columns: id, video, prompts); rename 'prompts' to 'prompt'",
                "row 2 (id 'b'): prompt: missing: the manifest has no 'prompt' column "
                "(columns: id, video, prompts); rename 'prompts' to 'prompt'",
            ],
        ),
        (
            "lines.jsonl",
            '{"id": "a", "video": "https://cdn.test/a.mp4", "prompt": "x"}\n'
            '{"id": "b", "video": \n'
            '["https://cdn.test/c.mp4", "y"]\n',
            [
                "row 2 (id 'row-2'): row: line 2 is not valid JSON",
                "row 3 (id 'row-3'): row: is a list, not an object",
            ],
        ),
    ],
    ids=["csv-misspelt-prompt-column", "jsonl-broken-lines"],
)
def test_validate_exits_1_listing_each_bad_row(
    tmp_path: Path, name: str, content: str, lines: list[str]
) -> None:
    """Per-row problems are not a broken manifest: exit 1, one line per bad row, then a count."""
    manifest = tmp_path / name
    manifest.write_text(content)
    done = run_cli("validate", str(manifest), env=cli_environment(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    *out, estimate = done.stdout.splitlines()
    assert estimate.startswith("Estimated cost: ")
    assert len(out) == len(lines) + 1
    for line, start in zip(out, lines, strict=False):
        assert line.startswith(start), line
    assert out[-1].startswith(f"{manifest}: ")
    assert out[-1].endswith(f"{len(lines)} invalid")


def test_validate_honours_grok_video_max_upload_bytes(
    tmp_path: Path, mp4_factory: Callable[..., Path]
) -> None:
    """`validate` refuses a data URL over GROK_VIDEO_MAX_UPLOAD_BYTES, as docs/configuration.md
    documents."""
    clip = mp4_factory(seconds=3.5)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"id": "big", "video": data_url(clip), "prompt": "dusk"}]))
    env = cli_environment(tmp_path)
    env["GROK_VIDEO_MAX_UPLOAD_BYTES"] = str(clip.stat().st_size - 1)
    done = run_cli("validate", str(manifest), env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "upload limit" in done.stdout
