"""Reading and checking manifests: every format, every bad row, with real MP4 files."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml
from fixtures_media import data_url, png, sha256_key

from prefect_grok_video.errors import GrokVideoError, ManifestError
from prefect_grok_video.inputs import MAX_PROMPT_CHARS
from prefect_grok_video.manifest import (
    FIELDS,
    InvalidRow,
    Manifest,
    ManifestRow,
    RawRow,
    RowProblem,
    ValidRow,
    load_manifest,
    read_rows,
)
from prefect_grok_video.settings import DEFAULT_MODEL

# --------------------------------------------------------------------------- media and writers


@pytest.fixture(scope="module")
def root(tmp_path_factory, h264_clip, mp4_factory, short_clip, long_clip, mpeg4_clip, vp9_clip,
         truncated_clip, not_mp4_file) -> Path:  # fmt: skip
    """A folder with `clips/` holding good and bad videos; manifests are written beside it."""
    folder = tmp_path_factory.mktemp("manifests")
    clips = folder / "clips"
    (clips / "sub").mkdir(parents=True)
    for name, path in {
        "a.mp4": h264_clip,
        "a-copy.mp4": h264_clip,
        "b.mp4": mp4_factory(seconds=4.0),
        "short.mp4": short_clip,
        "long.mp4": long_clip,
        "mpeg4.mp4": mpeg4_clip,
        "vp9.mp4": vp9_clip,
        "truncated.mp4": truncated_clip,
        "notes.mp4": not_mp4_file,
    }.items():
        shutil.copyfile(path, clips / name)
    return folder


def _write(folder: Path, suffix: str, content: str | bytes) -> Path:
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """A CSV of `rows` with a messy but valid header, an unnamed column and blank lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([" ID ", "Video", "PROMPT ", "duration", " Model", " "])
    for row in rows:
        out.write("\r\n")  # a blank line before each row
        cells = [row.get(name, "") for name in ("id", "video", "prompt", "duration", "model")]
        writer.writerow([f" {cell} " if cell != "" else "" for cell in cells] + ["ignored"])
    return out.getvalue()


#: The known columns, as messages list them.
KNOWN = ", ".join(FIELDS)

#: The same rows, written in every format; the second has no id, duration nor model.
ROWS: list[dict[str, Any]] = [
    {"id": "sunrise", "video": "clips/a.mp4", "prompt": "the sun rises", "duration": 8},
    {"video": "clips/b.mp4", "prompt": "a wave, then foam"},
    {"id": "nuit", "video": "clips/a.mp4", "prompt": 'night "falls"', "model": "grok-x"},
]


def _memory_manifest(root: Path) -> str:
    base = f"memory://manifest-tests/{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    for name in ("a.mp4", "b.mp4"):
        fs.pipe(f"{base}/clips/{name}", (root / "clips" / name).read_bytes())
    fs.pipe(f"{base}/m.csv", _csv_text(ROWS).encode())
    return f"{base}/m.csv"


#: format name -> (write ROWS somewhere under root, return the source to load)
WRITERS: dict[str, Callable[[Path], Any]] = {
    "csv": lambda root: _write(root, ".csv", _csv_text(ROWS)),
    "csv-bom": lambda root: _write(root, ".CSV", _csv_text(ROWS).encode("utf-8-sig")),
    "json-list": lambda root: str(_write(root, ".json", json.dumps(ROWS))),
    "json-rows": lambda root: _write(root, ".json", json.dumps({"rows": ROWS}, indent=2)),
    "jsonl": lambda root: _write(root, ".jsonl", "\n".join(map(json.dumps, ROWS)) + "\n\n"),
    "ndjson": lambda root: _write(root, ".ndjson", "\r\n".join(map(json.dumps, ROWS))),
    "yaml": lambda root: _write(root, ".yaml", yaml.safe_dump(ROWS, allow_unicode=True)),
    "yml-rows": lambda root: _write(root, ".yml", yaml.safe_dump({"rows": ROWS})),
    "file-url": lambda root: _write(root, ".json", json.dumps(ROWS)).as_uri(),
    "inline-models": lambda root: [ManifestRow(**row) for row in ROWS],
    "inline-dicts": lambda root: [dict(row) for row in ROWS],
    "memory": _memory_manifest,
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_format_reads_the_same_rows(fmt, root, monkeypatch):
    monkeypatch.chdir(root)  # inline rows resolve against the current folder
    source = WRITERS[fmt](root)
    manifest = load_manifest(source)
    a, b = sha256_key(root / "clips" / "a.mp4"), sha256_key(root / "clips" / "b.mp4")
    assert [
        (r.row, r.id, r.source, r.prompt, r.duration, r.model, r.fingerprint, r.output_name)
        for r in manifest.rows
    ] == [
        (1, "sunrise", "clips/a.mp4", "the sun rises", 8, DEFAULT_MODEL, a, "sunrise.mp4"),
        (2, "row-2", "clips/b.mp4", "a wave, then foam", 6, DEFAULT_MODEL, b, "row-2.mp4"),
        (3, "nuit", "clips/a.mp4", 'night "falls"', 6, "grok-x", a, "nuit.mp4"),
    ]
    assert manifest.valid == manifest.rows and manifest.invalid == ()
    if fmt.startswith("inline"):
        assert (manifest.base_dir, manifest.source) == (None, "inline (3 rows)")
    elif fmt == "memory":
        assert manifest.base_dir == source.rsplit("/", 1)[0]
        assert manifest.rows[0].video.location == f"{manifest.base_dir}/clips/a.mp4"
    else:
        assert manifest.base_dir == str(root)
        assert manifest.source == str(source)
        assert manifest.rows[1].video.location == str(root / "clips" / "b.mp4")


def test_relative_paths_resolve_against_the_manifest_folder_not_the_current_one(
    root, tmp_path, monkeypatch
):
    nested = root / "nested" / uuid.uuid4().hex
    (nested / "clips").mkdir(parents=True)
    shutil.copyfile(root / "clips" / "b.mp4", nested / "clips" / "a.mp4")  # same name, other clip
    monkeypatch.chdir(tmp_path)
    manifest = load_manifest(_write(nested, ".json", json.dumps(ROWS[:1])))
    assert manifest.rows[0].fingerprint == sha256_key(root / "clips" / "b.mp4")
    assert manifest.rows[0].video.location == str(nested / "clips" / "a.mp4")


# --------------------------------------------------------------------------- one bad row


GOOD_1 = {"id": "good-1", "video": "clips/a.mp4", "prompt": "the sun rises"}
GOOD_2 = {"id": "good-2", "video": "clips/b.mp4", "prompt": "the wave breaks", "duration": 4}
_MISSING = object()


def _long_data_url(root: Path) -> str:
    return data_url(root / "clips" / "long.mp4")


def _limit_between(root: Path) -> dict[str, Any]:
    good = max((root / "clips" / name).stat().st_size for name in ("a.mp4", "b.mp4"))
    assert (root / "clips" / "long.mp4").stat().st_size > good
    return {"max_upload_bytes": good}


BAD_ROWS = [
    # (case id, fields the bad row changes, expected field, message pattern, load_manifest kwargs)
    ("missing-video", {"video": _MISSING}, "video", r"^missing: give a path", None),
    ("null-video", {"video": None}, "video", r"^missing", None),
    ("video-not-text", {"video": 5}, "video", r"must be text .*got the number 5", None),
    ("empty-prompt", {"prompt": ""}, "prompt", r"^is empty: describe what happens next", None),
    ("blank-prompt", {"prompt": " \t "}, "prompt", r"^is empty", None),
    ("missing-prompt", {"prompt": _MISSING}, "prompt", r"^missing: describe what happens", None),
    ("prompt-not-text", {"prompt": 7}, "prompt", r"must be text, got the number 7", None),
    (
        "prompt-too-long",
        {"prompt": "x" * (MAX_PROMPT_CHARS + 1)},
        "prompt",
        rf"is {MAX_PROMPT_CHARS + 1} characters, over the {MAX_PROMPT_CHARS}-character limit",
        None,
    ),
    ("duration-0", {"duration": 0}, "duration", r"from 2 to 10 seconds, got 0$", None),
    ("duration-1", {"duration": 1}, "duration", r"from 2 to 10 seconds, got 1$", None),
    ("duration-11", {"duration": 11}, "duration", r"from 2 to 10 seconds, got 11$", None),
    ("duration-11-text", {"duration": "11"}, "duration", r"got 11$", None),
    ("duration-six", {"duration": "six"}, "duration", r"whole number .* got 'six'$", None),
    ("duration-6.5", {"duration": 6.5}, "duration", r"whole number .* got 6\.5$", None),
    ("duration-6.5-text", {"duration": "6.5"}, "duration", r"whole number .* got '6\.5'$", None),
    ("duration-bool", {"duration": True}, "duration", r"whole number .* got True$", None),
    ("duration-list", {"duration": [6]}, "duration", r"whole number .* got \[6\]$", None),
    (
        "no-such-file",
        {"video": "clips/missing.mp4"},
        "video",
        r"^file not found: /.*/clips/missing\.mp4$",
        None,
    ),
    (
        "directory",
        {"video": "clips/sub"},
        "video",
        r"clips/sub is a folder, not a video file",
        None,
    ),
    ("not-mp4", {"video": "clips/notes.mp4"}, "video", r"^not an MP4 file", None),
    ("truncated", {"video": "clips/truncated.mp4"}, "video", r"^truncated MP4", None),
    ("mpeg4", {"video": "clips/mpeg4.mp4"}, "video", r"codec is MPEG-4 Part 2", None),
    ("vp9", {"video": "clips/vp9.mp4"}, "video", r"codec is VP9", None),
    ("1s-clip", {"video": "clips/short.mp4"}, "video", r"is 1 s long.*use a longer clip", None),
    ("20s-clip", {"video": "clips/long.mp4"}, "video", r"is 20 s long.*trim it", None),
    (
        "ftp-url",
        {"video": "ftp://example.com/a.mp4"},
        "video",
        r"unsupported URL scheme 'ftp'",
        None,
    ),
    ("data-not-base64", {"video": "data:video/mp4,AAAA"}, "video", r"not base64-encoded", None),
    (
        "data-not-video",
        {"video": "data:text/plain;base64,aGk="},
        "video",
        r"'text/plain', not a video",
        None,
    ),
    (
        "data-bad-base64",
        {"video": "data:video/mp4;base64,%%%%"},
        "video",
        r"not valid base64",
        None,
    ),
    (
        "data-over-limit",
        {"video": _long_data_url},
        "video",
        r"^the data URL is .* over the .* upload limit",
        _limit_between,
    ),
    ("id-slash", {"id": "a/b"}, "id", r"^contains '/'.*output file <id>\.mp4", None),
    ("id-backslash", {"id": "a\\b"}, "id", r"^contains '\\\\'", None),
    ("id-dotdot", {"id": "a..b"}, "id", r"^contains '\.\.'", None),
    ("id-nul", {"id": "a\x00b"}, "id", r"^contains the control character '\\x00'", None),
    ("id-newline", {"id": "a\nb"}, "id", r"control character", None),
    ("id-bidi", {"id": "abc\u202egpj"}, "id", r"control character", None),
    ("id-blank", {"id": "   "}, "id", r"^is blank", None),
    ("id-leading-dot", {"id": ".hidden"}, "id", r"^starts with '\.'.*hidden file", None),
    ("id-leading-dash", {"id": "-rf"}, "id", r"^starts with '-'", None),
    ("id-colon", {"id": "a:b"}, "id", r"^contains ':'", None),
    ("id-star", {"id": "a*"}, "id", r"^contains '\*'", None),
    ("id-too-long", {"id": "x" * 129}, "id", r"^is 129 characters long, over 128", None),
    ("id-trailing-space", {"id": "a "}, "id", r"whitespace", None),
    ("id-device", {"id": "con"}, "id", r"device name on Windows", None),
    ("id-not-text", {"id": ["a"]}, "id", r"must be text, got a list", None),
    ("model-space", {"model": "grok video"}, "model", r"without spaces.*got 'grok video'", None),
    ("model-not-text", {"model": 3}, "model", r"got the number 3", None),
]


@pytest.mark.parametrize(
    ("changes", "field", "pattern", "kwargs"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ROWS],
)
def test_a_bad_row_gets_its_field_and_reason_while_the_others_go_on(
    root, changes, field, pattern, kwargs
):
    bad = {"id": "bad", "video": "clips/a.mp4", "prompt": "the sky darkens"}
    for name, value in changes.items():
        if value is _MISSING:
            del bad[name]
        else:
            bad[name] = value(root) if callable(value) else value
    path = _write(root, ".json", json.dumps([GOOD_1, bad, GOOD_2]))
    manifest = load_manifest(path, **(kwargs(root) if kwargs else {}))
    first, row, last = manifest.rows
    assert isinstance(first, ValidRow) and isinstance(last, ValidRow)
    assert (first.id, last.id, last.duration) == ("good-1", "good-2", 4)
    assert isinstance(row, InvalidRow), row
    assert row.row == 2
    assert [problem.field for problem in row.problems] == [field], row.problems
    assert re.search(pattern, row.problems[0].message), row.problems[0].message
    assert row.message.startswith("row 2 (id ")
    assert manifest.valid == (first, last) and manifest.invalid == (row,)


@pytest.mark.parametrize(
    ("row", "kind"),
    [([GOOD_1["video"], "prompt"], "a list"), ("clips/a.mp4", "a string"), (None, "null")],
)
def test_a_row_that_is_not_an_object_is_an_invalid_row(root, row, kind):
    manifest = load_manifest(_write(root, ".json", json.dumps([GOOD_1, row, GOOD_2])))
    assert [type(r) for r in manifest.rows] == [ValidRow, InvalidRow, ValidRow]
    invalid = manifest.rows[1]
    assert (invalid.id, invalid.source, invalid.prompt) == ("row-2", "", None)
    assert invalid.problems == (
        RowProblem(
            "row",
            f"is {kind}, not an object: write each row as an object with a 'prompt' key "
            "(and 'video', 'action', ... as the row needs)",
        ),
    )


def test_a_malformed_jsonl_line_is_an_invalid_row(root):
    text = "\n".join([json.dumps(GOOD_1), '{"id": "x", "video": "clips/a.mp4",', "", "[1]"])
    text += "\n" + json.dumps(GOOD_2)
    manifest = load_manifest(_write(root, ".jsonl", text))
    assert [type(r) for r in manifest.rows] == [ValidRow, InvalidRow, InvalidRow, ValidRow]
    malformed, not_object = manifest.invalid
    assert [p.field for p in malformed.problems] == ["row"]
    assert re.fullmatch(
        r"line 2 is not valid JSON: .* \(column \d+\)", malformed.problems[0].message
    )
    assert not_object.problems[0].message.startswith("is a list, not an object")
    assert manifest.rows[3].row == 4  # rows are counted among non-blank lines


def test_a_csv_without_a_prompt_column_makes_every_row_invalid_and_says_why(root):
    text = "id,video,promt\nsun,clips/a.mp4,the sun rises\nsea,clips/b.mp4,a wave\n"
    manifest = load_manifest(_write(root, ".csv", text))
    assert manifest.valid == ()
    for row, row_id in zip(manifest.invalid, ("sun", "sea"), strict=True):
        assert row.id == row_id and row.prompt is None
        assert row.problems == (
            RowProblem(
                "prompt",
                "missing: the manifest has no 'prompt' column (columns: id, video, promt); "
                "rename 'promt' to 'prompt'",
            ),
            RowProblem("promt", f"unknown column (known columns: {KNOWN}): did you mean 'prompt'?"),
        )


def test_a_csv_without_a_video_column_still_checks_the_rest(root):
    manifest = load_manifest(_write(root, ".csv", "id,prompt,duration\nx,,12\n"))
    (row,) = manifest.rows
    assert [p.field for p in row.problems] == ["video", "prompt", "duration"]
    assert row.problems[0].message == (
        "missing: the manifest has no 'video' column (columns: id, prompt, duration); give "
        "a path, an http(s) URL, a data URL, file_id:<id> or @<id> (another row's result) "
        "for each row that edits or extends a clip"
    )


def test_a_csv_row_with_an_unquoted_comma_is_invalid(root):
    text = "id,video,prompt,duration\na,clips/a.mp4,the sun rises, then sets,6\nb,clips/b.mp4,ok\n"
    manifest = load_manifest(_write(root, ".csv", text))
    bad, good = manifest.rows
    assert isinstance(good, ValidRow) and good.duration == 6
    assert [p.field for p in bad.problems] == ["row", "duration"]
    assert bad.problems[0].message.startswith("has 5 values but the header has 4 columns: quote")


def test_csv_cells_are_stripped_and_empty_cells_mean_not_given(root):
    text = "Video , PROMPT,id,duration,model, \n  clips/a.mp4 ,  go on  , , ,  ,x\n\n,,,\n"
    (row,) = load_manifest(_write(root, ".csv", text), default_model="m-1").rows
    assert (row.id, row.source, row.prompt, row.duration, row.model) == (
        "row-1", "clips/a.mp4", "go on", 6, "m-1",
    )  # fmt: skip


def test_csv_cells_larger_than_the_csv_modules_default_limit_are_read(root, mp4_factory):
    clip = mp4_factory(noise=True)  # compresses badly: a data URL well over 128 KiB
    inline = data_url(clip)
    assert len(inline) > 131072
    text = f'video,prompt\n"{inline}",go on\n'
    (row,) = load_manifest(_write(root, ".csv", text)).rows
    assert isinstance(row, ValidRow) and row.fingerprint == sha256_key(clip)


def test_an_unquoted_data_url_in_a_csv_is_an_invalid_row_that_does_not_show_it(root):
    inline = data_url(root / "clips" / "a.mp4")
    body = inline.partition(",")[2]
    text = f"id,video,prompt\nx,{inline},go on\n"
    manifest = load_manifest(_write(root, ".csv", text))
    (row,) = manifest.invalid
    assert row.problems[0] == RowProblem(
        "row",
        "has 4 values but the header has 3 columns: quote values that contain commas, "
        'e.g. "data:video/mp4;base64,..."',
    )
    assert row.prompt is None and body[:40] not in repr(manifest) + row.message


# --------------------------------------------------------------------------- unknown columns

URL = "https://cdn.test/unknown-columns/{}.mp4"
GOOD_ROW = {"id": "good", "video": URL.format("good"), "prompt": "the sun rises"}
#: `duraton` for `duration`: such a row used to run (and be paid) with 6 s, not the 4 asked.
TYPO_ROW = {"id": "typo", "video": URL.format("typo"), "prompt": "the tide turns", "duraton": 4}

#: format name -> the rows written in that format, or given inline
UNKNOWN_KEY_WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], Any]] = {
    "json": lambda root, rows: _write(root, ".json", json.dumps(rows)),
    "json-rows": lambda root, rows: _write(root, ".json", json.dumps({"rows": rows})),
    "jsonl": lambda root, rows: _write(root, ".jsonl", "\n".join(map(json.dumps, rows))),
    "yaml": lambda root, rows: _write(root, ".yaml", yaml.safe_dump(rows)),
    "inline-dicts": lambda root, rows: rows,
    "inline-models": lambda root, rows: [ManifestRow(**row) for row in rows],
}


@pytest.mark.parametrize("fmt", list(UNKNOWN_KEY_WRITERS))
def test_an_unknown_key_makes_its_row_invalid_naming_the_key_and_the_closest_field(root, fmt):
    manifest = load_manifest(UNKNOWN_KEY_WRITERS[fmt](root, [GOOD_ROW, TYPO_ROW]))
    good, typo = manifest.rows
    assert isinstance(good, ValidRow), good
    assert isinstance(typo, InvalidRow), typo
    assert typo.problems == (
        RowProblem("duraton", f"unknown key (known keys: {KNOWN}): did you mean 'duration'?"),
    )
    assert typo.message == (
        f"row 2 (id 'typo'): duraton: unknown key (known keys: {KNOWN}): did you mean 'duration'?"
    )


def test_an_unknown_csv_column_makes_every_row_invalid_like_a_missing_one(root):
    text = (
        f"id,video,prompt,Duraton\na,{URL.format('a')},the sun rises,4\nb,{URL.format('b')},go,\n"
    )
    manifest = load_manifest(_write(root, ".csv", text))
    assert manifest.valid == ()
    assert [(row.id, row.prompt) for row in manifest.invalid] == [
        ("a", "the sun rises"),
        ("b", "go"),
    ]
    for row in manifest.invalid:
        assert row.problems == (
            RowProblem(
                "duraton", f"unknown column (known columns: {KNOWN}): did you mean 'duration'?"
            ),
        )


@pytest.mark.parametrize(
    ("suffix", "content", "word"),
    [
        (".csv", f"video,prompt,colour\n{URL.format('a')},go,red\n", "column"),
        (".json", json.dumps([{"video": URL.format("a"), "prompt": "go", "colour": "red"}]),
         "key"),
        (".yml", "- video: https://cdn.test/a.mp4\n  prompt: go\n  colour: red\n", "key"),
    ],
    ids=["csv", "json", "yaml"],
)  # fmt: skip
def test_a_column_no_field_resembles_is_named_with_the_known_ones(root, suffix, content, word):
    (row,) = load_manifest(_write(root, suffix, content)).rows
    assert isinstance(row, InvalidRow), row
    assert row.problems == (
        RowProblem(
            "colour",
            f"unknown {word} (known {word}s: {KNOWN}): rename it to one of them or remove it",
        ),
    )


def test_every_unknown_key_is_reported_after_the_known_fields(root):
    row = {"Duraton": 4, "video": URL.format("x"), "promt": "go on", "notes": "n"}
    (invalid,) = load_manifest(_write(root, ".json", json.dumps([row]))).rows
    assert [p.field for p in invalid.problems] == ["prompt", "duraton", "promt", "notes"]
    assert invalid.problems[0].message.endswith("; rename 'promt' to 'prompt'")
    assert invalid.problems[2].message.endswith(": did you mean 'prompt'?")


def test_empty_csv_header_cells_are_still_ignored(root):
    text = f"id,video,prompt,, \na,{URL.format('a')},the sun rises,,x\n"
    (row,) = load_manifest(_write(root, ".csv", text)).rows
    assert isinstance(row, ValidRow), row


def test_an_unknown_key_is_named_safely(root):
    data_key = data_url(root / "clips" / "a.mp4")
    body = data_key.partition(",")[2]
    row = {"id": "k", "video": URL.format("k"), "prompt": "p", data_key: 1, "a\x00b": 2,
           "k" * 300: 3}  # fmt: skip
    (invalid,) = load_manifest([row]).rows
    assert [p.field for p in invalid.problems] == [
        f"data:… ({len(data_key)} chars)", "a\\x00b", "k" * 39 + "…",
    ]  # fmt: skip
    for piece in (body[:40], body[-40:]):
        assert piece.lower() not in invalid.message.lower()  # keys are read lower-cased


def test_the_flow_parameter_keeps_unknown_keys_so_they_are_reported():
    """Inline rows given to the flow (the UI form, the API) are checked like a file's rows."""
    from prefect_grok_video.flows import make_videos

    rows = [GOOD_ROW, {"video": URL.format("p"), "prompt": "p", "promt": "x"}]
    parameters = make_videos.validate_parameters({"manifest": rows})
    good, typo = load_manifest(parameters["manifest"]).rows
    assert isinstance(good, ValidRow), good
    assert isinstance(typo, InvalidRow), typo
    assert [p.field for p in typo.problems] == ["promt"]
    assert "additionalProperties" not in ManifestRow.model_json_schema()  # the form is unchanged


# --------------------------------------------------------------------------- accepted values


ACCEPTED = [
    # (case id, fields the row changes, attribute, expected value)
    ("duration-int", {"duration": 6}, "duration", 6),
    ("duration-min", {"duration": 2}, "duration", 2),
    ("duration-max", {"duration": 10}, "duration", 10),
    ("duration-text", {"duration": "7"}, "duration", 7),
    ("duration-padded-text", {"duration": " 7 "}, "duration", 7),
    ("duration-whole-float-text", {"duration": "7.0"}, "duration", 7),
    ("duration-whole-float", {"duration": 7.0}, "duration", 7),
    ("duration-null", {"duration": None}, "duration", 6),
    ("duration-empty", {"duration": ""}, "duration", 6),
    ("model-empty", {"model": ""}, "model", "default-model"),
    ("model-null", {"model": None}, "model", "default-model"),
    ("model-given", {"model": "grok-imagine-video-2"}, "model", "grok-imagine-video-2"),
    ("id-empty", {"id": ""}, "id", "row-1"),
    ("id-null", {"id": None}, "id", "row-1"),
    ("id-number", {"id": 42}, "id", "42"),
    ("id-unicode", {"id": "café-日本_01"}, "id", "café-日本_01"),
    ("id-128", {"id": "x" * 128}, "id", "x" * 128),
    ("id-inner-dot", {"id": "v1.2"}, "id", "v1.2"),
    ("prompt-unicode", {"prompt": "日の出 ✨ — ünïcode"}, "prompt", "日の出 ✨ — ünïcode"),
    ("prompt-rtl", {"prompt": "الشمس تشرق فوق البحر"}, "prompt", "الشمس تشرق فوق البحر"),
    ("prompt-hebrew", {"prompt": "השמש זורחת"}, "prompt", "השמש זורחת"),
    ("prompt-at-limit", {"prompt": "y" * MAX_PROMPT_CHARS}, "prompt", "y" * MAX_PROMPT_CHARS),
    (
        "https-url",
        {"video": "https://cdn.example.com/a.mp4"},
        "fingerprint",
        "https://cdn.example.com/a.mp4",
    ),
    ("file-id", {"video": "file_id:file-abc"}, "fingerprint", "file-abc"),
    ("key-case", {"video": _MISSING, " VIDEO ": "clips/b.mp4"}, "source", "clips/b.mp4"),
]


@pytest.mark.parametrize(
    ("changes", "attribute", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ACCEPTED],
)
def test_accepted_values(root, changes, attribute, expected):
    row = {"video": "clips/a.mp4", "prompt": "go on"}
    for name, value in changes.items():
        if value is _MISSING:
            del row[name]
        else:
            row[name] = value
    path = _write(root, ".json", json.dumps([row], ensure_ascii=False))
    (result,) = load_manifest(path, default_model="default-model").rows
    assert isinstance(result, ValidRow), result
    assert getattr(result, attribute) == expected


def test_absolute_paths_file_urls_and_data_urls_are_accepted(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = root / "clips" / "a.mp4"
    rows = [
        {"video": str(clip), "prompt": "p"},
        {"video": clip.as_uri(), "prompt": "p"},
        {"video": data_url(clip), "prompt": "p"},
    ]
    manifest = load_manifest(rows)
    assert all(isinstance(r, ValidRow) for r in manifest.rows)
    assert {r.fingerprint for r in manifest.rows} == {sha256_key(clip)}
    assert manifest.rows[2].source == f"data:video/mp4 ({clip.stat().st_size / 1000:.1f} KB inline)"


def test_the_same_content_at_two_paths_has_one_fingerprint(root):
    rows = [
        {"video": "clips/a.mp4", "prompt": "p"},
        {"video": "clips/a-copy.mp4", "prompt": "p"},
        {"video": "clips/b.mp4", "prompt": "p"},
    ]
    a, copy, b = load_manifest(_write(root, ".yaml", yaml.safe_dump(rows))).rows
    assert a.fingerprint == copy.fingerprint == sha256_key(root / "clips" / "a.mp4")
    assert b.fingerprint != a.fingerprint
    assert (a.source, copy.source) == ("clips/a.mp4", "clips/a-copy.mp4")


# --------------------------------------------------------------------------- whole rows


def test_duplicate_ids_keep_the_first_and_refuse_every_repeat(root):
    rows = [
        {"id": "x", "video": "clips/a.mp4", "prompt": "p"},
        {"id": "y", "video": "clips/a.mp4", "prompt": "p"},
        {"id": "x", "video": "clips/b.mp4", "prompt": "p"},
        {"id": "X", "video": "clips/b.mp4", "prompt": "p"},
        {"id": "row-6", "video": "clips/b.mp4", "prompt": "p"},
        {"video": "clips/b.mp4", "prompt": "p"},
        {"id": "x", "video": "clips/missing.mp4", "prompt": "p"},
    ]
    manifest = load_manifest(_write(root, ".json", json.dumps(rows)))
    assert [r.row for r in manifest.valid] == [1, 2, 5]
    messages = {r.row: r.problems[0].message for r in manifest.invalid}
    assert messages[3].startswith("duplicate id 'x' (first on row 1): each id names an output")
    assert messages[4].startswith("duplicate id 'X' (first on row 1 as 'x', the same file name")
    assert messages[6] == (
        "duplicate id 'row-6' (first on row 5): this row has no id and was named 'row-6'; "
        "give it an id"
    )
    assert [p.field for p in manifest.rows[6].problems] == ["id", "video"]
    assert all(p.field == "id" for r in manifest.invalid[:3] for p in r.problems)


def test_every_problem_of_a_row_is_reported_in_field_order(root):
    row = {"id": "a/b", "prompt": " ", "duration": "six", "model": "a b", "extra": 1}
    (invalid,) = load_manifest(_write(root, ".json", json.dumps([row]))).rows
    assert [p.field for p in invalid.problems] == [
        "id", "video", "prompt", "duration", "model", "extra",
    ]  # fmt: skip
    assert (invalid.id, invalid.source, invalid.prompt) == ("a/b", "", " ")


def test_invalid_row_message_names_row_id_fields_and_reasons(root):
    row = {"id": "late", "video": "clips/missing.mp4", "prompt": "p", "duration": 11}
    manifest = load_manifest(_write(root, ".json", json.dumps([GOOD_1, row])))
    assert manifest.rows[1].message == (
        f"row 2 (id 'late'): video: file not found: {root / 'clips' / 'missing.mp4'}; "
        "duration: must be from 2 to 10 seconds, got 11"
    )
    assert manifest.rows[1].source == "clips/missing.mp4"


def test_no_data_url_body_reaches_any_source_message_or_repr(root):
    clip = (root / "clips" / "a.mp4").read_bytes()
    body = base64.b64encode(clip).decode()
    rows = [
        {"id": "ok", "video": data_url(clip), "prompt": "p"},
        {"id": "bad-duration", "video": data_url(clip), "prompt": "p", "duration": 0},
        {"id": "not-video", "video": data_url(clip, "text/plain"), "prompt": "p"},
        {"id": "big", "video": data_url(clip + clip), "prompt": "p"},
        {"id": data_url(clip), "video": "clips/a.mp4", "prompt": "p"},
        {"id": "vp9", "video": data_url(root / "clips" / "vp9.mp4"), "prompt": "p"},
    ]
    manifest = load_manifest(rows, max_upload_bytes=len(clip) + 1)
    assert [type(r).__name__ for r in manifest.rows] == ["ValidRow"] + ["InvalidRow"] * 5
    texts = [repr(manifest), *(r.source for r in manifest.rows)]
    texts += [r.message for r in manifest.invalid]
    for text in texts:
        for piece in (body[:40], body[len(body) // 2 : len(body) // 2 + 40], body[-40:]):
            assert piece not in text
    assert manifest.rows[0].source.startswith("data:video/mp4 (")
    assert re.fullmatch(r"data:… \(\d+ chars\)", manifest.rows[2].source)
    assert re.fullmatch(r"data:… \(\d+ chars\)", manifest.rows[4].id)
    assert manifest.rows[0].video.source == data_url(clip)  # what is sent stays whole


def test_row_order_survives_the_thread_pool(root):
    names = ["a.mp4", "b.mp4", "a-copy.mp4", "vp9.mp4"]
    rows = [{"id": f"r{i}", "video": f"clips/{names[i % 4]}", "prompt": "p"} for i in range(40)]
    path = _write(root, ".json", json.dumps(rows))
    for workers in (1, 3, 16):
        manifest = load_manifest(path, workers=workers)
        assert [(r.row, r.id, r.source) for r in manifest.rows] == [
            (i + 1, f"r{i}", f"clips/{names[i % 4]}") for i in range(40)
        ]
        assert [r.row for r in manifest.invalid] == list(range(4, 41, 4))


def test_preflight_false_skips_only_the_mp4_checks(root):
    rows = [
        {"video": "clips/vp9.mp4", "prompt": "p"},
        {"video": "clips/missing.mp4", "prompt": "p"},
    ]
    checked = load_manifest(rows := _write(root, ".json", json.dumps(rows)))
    unchecked = load_manifest(rows, preflight=False)
    assert [type(r) for r in checked.rows] == [InvalidRow, InvalidRow]
    assert [type(r) for r in unchecked.rows] == [ValidRow, InvalidRow]
    assert unchecked.rows[0].fingerprint == sha256_key(root / "clips" / "vp9.mp4")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"workers": 0}, "workers must be at least 1"), ({"default_model": "a b"}, "default_model")],
)
def test_bad_arguments_raise_value_error(root, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_manifest([GOOD_1], **kwargs)


# --------------------------------------------------------------------------- whole manifest


def _missing_memory(root: Path) -> str:
    return f"memory://manifest-tests/{uuid.uuid4().hex}/m.csv"


MANIFEST_ERRORS = [
    # (case id, make the source under root, message pattern)
    ("not-found", lambda root: root / "nope.csv", r"^manifest not found: /.*/nope\.csv$"),
    ("not-found-memory", _missing_memory, r"^manifest not found: memory://"),
    ("empty-path", lambda root: "", r"^manifest not found"),
    ("a-folder", lambda root: root / "clips", r"is a folder"),
    (
        "unknown-extension",
        lambda root: _write(root, ".txt", "video,prompt\na.mp4,p\n"),
        r"unsupported manifest format \('\.txt'\).*\.csv, \.json, \.jsonl, \.ndjson, \.yaml, \.yml$",  # noqa: E501
    ),
    ("no-extension", lambda root: _write(root, "", "x"), r"\(no extension\)"),
    ("ftp-manifest", lambda root: "ftp://example.com/m.csv", r"unsupported manifest URL scheme"),
    (
        "malformed-json",
        lambda root: _write(root, ".json", '[\n  {"video": "a.mp4",\n   "prompt": }\n]'),
        r"is not valid JSON: Expecting value \(line 3, column 14\)$",
    ),
    (
        "malformed-yaml",
        lambda root: _write(root, ".yaml", "- video: a.mp4\n  prompt: [unclosed\n- x\n"),
        r"is not valid YAML: .* \(line \d+, column \d+\)$",
    ),
    (
        "yaml-bad-date",
        lambda root: _write(root, ".yaml", "- video: a.mp4\n  prompt: 2024-13-45\n"),
        r"is not valid YAML",
    ),
    ("empty-csv", lambda root: _write(root, ".csv", ""), r"is empty"),
    ("blank-json", lambda root: _write(root, ".json", " \n\n"), r"is empty"),
    ("empty-yaml", lambda root: _write(root, ".yml", "# nothing\n"), r"is empty"),
    ("blank-jsonl", lambda root: _write(root, ".jsonl", "\n\n"), r"is empty"),
    ("bom-only-csv", lambda root: _write(root, ".csv", b"\xef\xbb\xbf\r\n"), r"is empty"),
    (
        "header-only-csv",
        lambda root: _write(root, ".csv", "video,prompt\n\n"),
        r"header but no rows",
    ),
    ("empty-json-list", lambda root: _write(root, ".json", "[]"), r"has no rows$"),
    ("empty-rows", lambda root: _write(root, ".yaml", "rows: []\n"), r"has no rows$"),
    (
        "json-object-without-rows",
        lambda root: _write(root, ".json", '{"items": []}'),
        r"must be a JSON list of rows or an object with a 'rows' list, got an object with keys items",  # noqa: E501
    ),
    (
        "json-single-row",
        lambda root: _write(root, ".json", '{"video": "a.mp4", "prompt": "p"}'),
        r"is a single row, not a list of rows",
    ),
    (
        "json-rows-not-a-list",
        lambda root: _write(root, ".json", '{"rows": {"video": "a.mp4"}}'),
        r"'rows' in the manifest .* must be a list of rows, got an object",
    ),
    ("json-number", lambda root: _write(root, ".json", "42"), r"got the number 42$"),
    ("yaml-scalar", lambda root: _write(root, ".yaml", "hello\n"), r"got a string$"),
    (
        "not-utf8",
        lambda root: _write(root, ".csv", "video,prompt\nclips/a.mp4,café\n".encode("latin-1")),
        r"is not UTF-8 text \(byte 0xe9 at offset \d+\): save it as UTF-8",
    ),
    (
        "duplicate-column",
        lambda root: _write(root, ".csv", "video,prompt,Prompt\na,b,c\n"),
        r"has 2 'prompt' columns: keep one",
    ),
    ("inline-empty", lambda root: [], r"^the inline manifest has no rows"),
    ("inline-mapping", lambda root: dict(GOOD_1), r"got a mapping: wrap a single row in a list"),
]


@pytest.mark.parametrize(
    ("make", "pattern"), [pytest.param(*case[1:], id=case[0]) for case in MANIFEST_ERRORS]
)
def test_an_unreadable_manifest_raises_manifest_error(root, make, pattern):
    with pytest.raises(ManifestError) as caught:
        load_manifest(make(root))
    assert isinstance(caught.value, GrokVideoError)
    assert re.search(pattern, str(caught.value)), str(caught.value)


def test_a_yaml_error_message_does_not_quote_the_file(root):
    inline = data_url(root / "clips" / "a.mp4")
    body = inline.partition(",")[2]
    path = _write(root, ".yaml", f"- video: {inline}\n  prompt: [x\n- y\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert body[:20] not in str(caught.value)


def test_a_password_in_a_manifest_url_is_not_shown():
    with pytest.raises(ManifestError) as caught:
        load_manifest("ftp://user:hunter22@example.com/m.csv")
    assert "hunter22" not in str(caught.value) and "user:***@" in str(caught.value)


# --------------------------------------------------------------------------- read_rows, ManifestRow


def test_read_rows_gives_raw_rows_base_folder_and_description(root):
    path = _write(root, ".jsonl", '{"Video": "a.mp4", "prompt": "p", "x": 1}\n{"video"\n')
    rows, base_dir, description = read_rows(path)
    assert (base_dir, description) == (str(root), str(path))
    assert rows == [{"video": "a.mp4", "prompt": "p", "x": 1}, {}]
    assert all(isinstance(row, RawRow) for row in rows)
    assert rows[0].problems == (
        RowProblem(
            "x", f"unknown key (known keys: {KNOWN}): rename it to one of them or remove it"
        ),
    )
    assert [p.field for p in rows[1].problems] == ["row"]
    inline, base_dir, description = read_rows([ManifestRow(video="v", prompt="p"), {"ID": "x"}])
    assert (base_dir, description) == (None, "inline (2 rows)")
    assert inline == [{"action": "extend", "video": "v", "prompt": "p"}, {"id": "x"}]
    assert read_rows([{"video": "v"}])[2] == "inline (1 row)"


def test_manifest_row_schema_shows_the_range_but_does_not_enforce_it(root, monkeypatch):
    schema = ManifestRow.model_json_schema()
    assert schema["required"] == ["prompt"]
    duration = schema["properties"]["duration"]
    # the widest range of any action (generate: 1-15); each action's is checked per row
    assert (duration["type"], duration["minimum"], duration["maximum"]) == ("integer", 1, 15)
    assert duration["default"] is None
    assert schema["properties"]["action"]["enum"] == ["generate", "edit", "extend"]
    assert schema["properties"]["action"]["default"] == "extend"
    for name in FIELDS:
        assert schema["properties"][name]["description"].endswith(".")
    rows = [
        ManifestRow(video="clips/a.mp4", prompt="p", duration=11, unknown="kept"),
        ManifestRow.model_validate({"video": "clips/a.mp4", "prompt": "p", "duration": "six"}),
        ManifestRow(video="clips/a.mp4", prompt="p", duration="8"),
    ]
    assert rows[0].model_extra == {"unknown": "kept"}  # to be reported, not dropped unseen
    monkeypatch.chdir(root)
    manifest = load_manifest(rows)
    assert [p.message for r in manifest.invalid for p in r.problems] == [
        "must be from 2 to 10 seconds, got 11",
        f"unknown key (known keys: {KNOWN}): rename it to one of them or remove it",
        "must be a whole number of seconds from 2 to 10, got 'six'",
    ]
    assert manifest.rows[2].duration == 8


def test_results_are_frozen_and_picklable(root, monkeypatch):
    import pickle

    monkeypatch.chdir(root)
    manifest = load_manifest([GOOD_1, {"video": "clips/missing.mp4", "prompt": "p"}])
    assert isinstance(manifest, Manifest)
    assert pickle.loads(pickle.dumps(manifest)) == manifest
    with pytest.raises(AttributeError):
        manifest.rows[0].id = "other"  # type: ignore[misc]


def test_a_row_range_keeps_ids_numbers_and_duplicates_of_the_whole_manifest(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,video,prompt\n"
        ",https://cdn.test/1.mp4,a\n"
        "x,https://cdn.test/2.mp4,b\n"
        ",https://cdn.test/3.mp4,c\n"
        "x,https://cdn.test/4.mp4,d\n"
        ",missing.mp4,e\n"
    )
    chunk = load_manifest(manifest, rows=(3, 4))
    assert [(r.row, r.id) for r in chunk.rows] == [(3, "row-3"), (4, "x")]
    assert isinstance(chunk.rows[1], InvalidRow)  # the duplicate of row 2, outside the range
    assert "first on row 2" in chunk.rows[1].message
    # rows outside the range are not read: the missing file of row 5 is not reported
    assert load_manifest(manifest, rows=(1, 2)).invalid == ()
    with pytest.raises(ValueError, match="rows must be"):
        load_manifest(manifest, rows=[0, 2])


# -- actions and chains ---------------------------------------------------------------------


def test_each_action_takes_its_own_fields_with_its_defaults(root, monkeypatch):
    monkeypatch.chdir(root)
    (root / "still.png").write_bytes(png(16, 9))
    generate, image_to_video, edit, extend = load_manifest([
        {"id": "g", "action": "generate", "prompt": "a fox", "aspect_ratio": "9:16"},
        {"id": "i", "action": "Generate ", "prompt": "it moves", "image": "still.png",
         "duration": 12, "resolution": "720p"},
        {"id": "e", "action": "edit", "video": "clips/a.mp4", "prompt": "at night"},
        {"id": "x", "video": "clips/b.mp4", "prompt": "on"},
    ]).rows  # fmt: skip
    assert (generate.action, generate.duration, generate.aspect_ratio, generate.video) == (
        "generate",
        8,
        "9:16",
        None,
    )
    assert generate.output_seconds == 8 and generate.source == ""
    assert (image_to_video.duration, image_to_video.resolution) == (12, "720p")
    assert image_to_video.image is not None and image_to_video.image_source == "still.png"
    assert image_to_video.image_fingerprint == sha256_key(root / "still.png")
    assert (edit.duration, edit.input_seconds, edit.output_seconds) == (None, 3.0, 3.0)
    assert (extend.action, extend.duration, extend.output_seconds) == ("extend", 6, 10.0)
    # the same prompt and fields as another action is another job
    assert len({row.identity for row in (generate, image_to_video, edit, extend)}) == 4


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"action": "generate", "video": "clips/a.mp4"}, "video", "generate takes no video"),
        ({"action": "edit", "video": "clips/a.mp4", "image": "x.png"}, "image",
         "only generate starts from a still"),
        ({"action": "edit", "video": "clips/a.mp4", "duration": 5}, "duration",
         "an edit is as long as its input"),
        ({"video": "clips/a.mp4", "resolution": "720p"}, "resolution", "extend takes no"),
        ({"action": "generate", "duration": 16}, "duration", "from 1 to 15 seconds, got 16"),
        ({"action": "generate", "duration": 0}, "duration", "from 1 to 15 seconds, got 0"),
        ({"video": "clips/a.mp4", "duration": 1}, "duration", "from 2 to 10 seconds, got 1"),
        ({"action": "generate", "aspect_ratio": "21:9"}, "aspect_ratio", "got '21:9'"),
        ({"action": "generate", "resolution": "1080p"}, "resolution",
         "grok-imagine-video offers these"),
        ({"action": "edit", "video": "clips/long.mp4"}, "video",
         "20 s long; the service accepts 1 to 8.7 s: trim it (what edit accepts)"),
        ({"action": "edit"}, "video", "edit needs a clip"),
        ({"action": "edit", "video": "file_id:file-1"}, "video", "Files API id"),
        ({"action": "extend", "video": "@"}, "video", "@ needs the id of the row"),
        ({"action": "make"}, "action", "must be generate, edit or extend, got 'make'"),
        ({"action": 3}, "action", "got the number 3"),
    ],
    ids=lambda value: "-".join(map(str, value.values())) if isinstance(value, dict) else None,
)  # fmt: skip
def test_what_an_action_does_not_take_or_allow_is_refused(root, monkeypatch, fields, field, words):
    monkeypatch.chdir(root)
    (row,) = load_manifest([{"prompt": "p", **fields}]).rows
    assert isinstance(row, InvalidRow), row
    assert [p.field for p in row.problems] == [field], row.problems
    assert words in row.problems[0].message


def test_resolution_follows_the_model(root):
    rows = [{"action": "generate", "prompt": "p", "resolution": "1080p", "model": model}
            for model in ("grok-imagine-video-1.5", "grok-imagine-video")]  # fmt: skip
    fine, refused = load_manifest(rows).rows
    assert isinstance(fine, ValidRow) and fine.resolution == "1080p"
    assert isinstance(refused, InvalidRow)


def test_chains_know_their_lengths_before_anything_runs(root, monkeypatch):
    monkeypatch.chdir(root)
    _, grown, edited, far, url, after_url = load_manifest([
        {"id": "gen", "action": "generate", "prompt": "p"},
        {"id": "grown", "video": "@gen", "prompt": "p", "duration": 9},
        {"id": "edited", "action": "edit", "video": "@gen", "prompt": "p"},
        {"id": "far", "video": "@grown", "prompt": "p", "duration": 2},
        {"id": "url", "video": "https://cdn.test/x.mp4", "prompt": "p"},
        {"id": "after-url", "video": "@url", "prompt": "p"},
    ]).rows  # fmt: skip
    assert (grown.upstream, grown.source, grown.input_seconds, grown.output_seconds) == (
        "gen", "@gen", 8.0, 17.0
    )  # fmt: skip
    assert (edited.input_seconds, edited.output_seconds) == (8.0, 8.0)
    assert isinstance(far, InvalidRow)
    assert far.problems == (RowProblem("video", (
        "the result of @grown will be 17 s long (8 s generated by gen + 9 s added by grown); "
        "extend accepts 2 to 15 s: shorten the durations along the chain"
    )),)  # fmt: skip
    # a URL's length is not known before it runs: its chain is checked when it does
    assert isinstance(after_url, ValidRow) and after_url.input_seconds is None
    assert grown.identity != url.identity and after_url.request().video is None


def test_a_chain_that_passes_the_limit_names_how_it_adds_up(root, monkeypatch):
    monkeypatch.chdir(root)
    rows = load_manifest([
        {"id": "clip", "video": "clips/b.mp4", "prompt": "p", "duration": 10},
        {"id": "more", "video": "@clip", "prompt": "p", "duration": 2},
        {"id": "last", "video": "@more", "prompt": "p"},
    ]).rows  # fmt: skip
    assert isinstance(rows[1], ValidRow) and rows[1].output_seconds == 16
    assert (
        rows[2]
        .problems[0]
        .message.startswith(
            "the result of @more will be 16 s long (a 4 s clip + 10 s added by clip + 2 s added by "
            "more); extend accepts"
        )
    )


def test_missing_ids_and_cycles_are_invalid_and_what_waits_on_them_is_blocked(root):
    rows = load_manifest([
        {"id": "a", "video": "@b", "prompt": "p"},
        {"id": "b", "video": "@c", "prompt": "p"},
        {"id": "c", "video": "@a", "prompt": "p"},
        {"id": "self", "video": "@self", "prompt": "p"},
        {"id": "typo", "video": "@lighthose", "prompt": "p"},
        {"id": "lighthouse", "action": "generate", "prompt": "p", "aspect_ratio": "5:4"},
        {"id": "waits", "video": "@lighthouse", "prompt": "p"},
    ])  # fmt: skip
    a, b, c, self_loop, typo, gen, waits = rows.rows
    assert a.problems[0].message.startswith("@b makes a cycle (a → b → c → a)")
    assert b.problems[0].message.startswith("@c makes a cycle (b → c → a → b)")
    assert isinstance(c, InvalidRow)
    assert self_loop.problems[0].message.startswith("@self makes a cycle (self → self)")
    assert typo.problems[0].message == (
        "@lighthose names no row of this manifest: did you mean @lighthouse?"
    )
    assert isinstance(gen, InvalidRow) and isinstance(waits, ValidRow)
    assert rows.blocked_by() == {7: gen}


def test_selected_rows_bring_their_upstreams(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,action,video,prompt\none,generate,,p\ntwo,generate,,p\nthree,,@one,p\nfour,,@three,p\n"
    )
    assert [r.id for r in load_manifest(manifest, rows=[4]).rows] == ["one", "three", "four"]
    assert [r.id for r in load_manifest(manifest, rows=[2]).rows] == ["two"]
