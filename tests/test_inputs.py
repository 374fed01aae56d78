"""Resolving `video` values and encoding upload bodies, with real MP4 files."""

from __future__ import annotations

import json

import fsspec
import pytest
from fixtures_media import data_url, sha256_key

from prefect_grok_video.errors import InputError, PreflightError
from prefect_grok_video.inputs import (
    MAX_PROMPT_CHARS,
    check_duration,
    check_prompt,
    resolve_video,
)


async def _body(video_input, fields=None) -> tuple[int, bytes]:
    length, stream = video_input.encode_body(fields or {"model": "m", "prompt": "p"})
    return length, b"".join([chunk async for chunk in stream])


@pytest.mark.parametrize("url", ["https://cdn.example.com/a.mp4", "HTTP://x.test/b"])
def test_http_urls_pass_through(url):
    resolved = resolve_video(url)
    assert (resolved.kind, resolved.wire_value(), resolved.preflight()) == ("url", url, None)
    assert resolved.fingerprint() == url


def test_file_ids_need_their_prefix(tmp_path):
    assert resolve_video("file_id:file-abc").wire_value() == "file-abc"
    with pytest.raises(InputError, match="file not found"):
        resolve_video("file-abc", base_dir=tmp_path)  # a bare id is a (missing) path


def test_local_file_is_streamed_as_a_data_url_of_exact_length(h264_clip):
    resolved = resolve_video(str(h264_clip))
    assert resolved.kind == "file"
    assert resolved.size == h264_clip.stat().st_size
    assert resolved.preflight().codec == "avc1"

    async def check():
        length, body = await _body(resolved, {"model": "m", "prompt": "ünïcode ✓", "duration": 6})
        assert length == len(body)
        sent = json.loads(body)
        assert sent["prompt"] == "ünïcode ✓"
        assert sent["video"] == data_url(h264_clip)

    import asyncio

    asyncio.run(check())


async def test_body_for_every_size_modulo_three(tmp_path):
    """Base64 padding is right whatever the size's remainder by 3, across chunk boundaries."""
    for size in (1, 2, 3, 196607, 196608, 196609, 400001):
        path = tmp_path / f"f{size}"
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        path.write_bytes(data)
        length, body = await _body(resolve_video(str(path)))
        assert length == len(body)
        assert json.loads(body)["video"] == data_url(data)


async def test_file_that_changes_while_sent_stops_the_request(tmp_path):
    path = tmp_path / "growing.mp4"
    path.write_bytes(b"x" * 1000)
    resolved = resolve_video(str(path))
    path.write_bytes(b"x" * 2000)
    with pytest.raises(InputError, match="changed while it was being sent"):
        await _body(resolved)


def test_relative_paths_resolve_against_the_base_folder(h264_clip):
    resolved = resolve_video(h264_clip.name, base_dir=h264_clip.parent)
    assert resolved.location == str(h264_clip)
    assert resolve_video(f"file://{h264_clip}").location == str(h264_clip)


def test_fingerprint_is_the_content_not_the_path(h264_clip, tmp_path):
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(h264_clip.read_bytes())
    expected = sha256_key(h264_clip)
    assert resolve_video(str(h264_clip)).fingerprint() == expected
    assert resolve_video(str(copy)).fingerprint() == expected
    assert resolve_video(data_url(h264_clip)).fingerprint() == expected


def test_fsspec_memory_urls_are_read(h264_clip):
    fs = fsspec.filesystem("memory")
    fs.pipe("/clips/a.mp4", h264_clip.read_bytes())
    resolved = resolve_video("memory://clips/a.mp4")
    assert resolved.kind == "file"
    assert resolved.preflight().duration == pytest.approx(3.0, abs=0.05)
    relative = resolve_video("a.mp4", base_dir="memory://clips")
    assert relative.fingerprint() == resolved.fingerprint()


def test_data_url_is_preflighted_and_described_without_its_body(h264_clip):
    inline = data_url(h264_clip)
    resolved = resolve_video(inline)
    assert resolved.preflight().codec == "avc1"
    assert resolved.wire_value() == inline
    description = resolved.describe()
    assert "base64" not in description and len(description) < 60
    assert "KB" in description or "B inline" in description


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("ftp://host/a.mp4", "unsupported URL scheme 'ftp'"),
        ("gopher://x", "unsupported URL scheme"),
        ("data:video/mp4,AAAA", "not base64"),
        ("data:video/mp4;base64,@@@@", "not valid base64"),
        ("data:image/png;base64,AAAA", "not a video"),
        ("data:video/mp4;base64", "no ','"),
        ("file_id:", "needs an id"),
    ],
)
def test_values_that_are_nothing_sendable_are_refused(value, message):
    with pytest.raises(InputError, match=message) as caught:
        resolve_video(value)
    assert caught.value.field == "video"


def test_missing_path_directory_and_empty_file_are_refused(tmp_path, empty_file):
    with pytest.raises(InputError, match="file not found"):
        resolve_video(str(tmp_path / "nope.mp4"))
    with pytest.raises(InputError, match="is a folder"):
        resolve_video(str(tmp_path))
    with pytest.raises(InputError, match="is empty"):
        resolve_video(str(empty_file))


def test_size_limits_apply_before_reading(h264_clip):
    with pytest.raises(InputError, match="upload limit"):
        resolve_video(str(h264_clip), max_bytes=100)
    with pytest.raises(InputError, match="upload limit"):
        resolve_video(data_url(h264_clip), max_bytes=100)


@pytest.mark.parametrize(
    ("clip", "rule"),
    [("mpeg4_clip", "codec"), ("vp9_clip", "codec"), ("short_clip", "duration"),
     ("long_clip", "duration"), ("truncated_clip", "container"), ("not_mp4_file", "container"),
     ("webm_clip", "container")],
)  # fmt: skip
def test_preflight_refuses_files_and_data_urls_alike(request, clip, rule):
    path = request.getfixturevalue(clip)
    for value in (str(path), data_url(path)):
        with pytest.raises(PreflightError) as caught:
            resolve_video(value).preflight()
        assert caught.value.rule == rule


@pytest.mark.parametrize("prompt", ["", " \n\t", None, 3])
def test_empty_prompts_are_refused(prompt):
    with pytest.raises(InputError, match="is empty") as caught:
        check_prompt(prompt)
    assert caught.value.field == "prompt"


def test_prompt_length_and_unicode():
    rtl = "הַמַּצְלֵמָה עוֹלָה אֶל הַשָּׁמַיִם — الكاميرا ترتفع"
    assert check_prompt(rtl) == rtl
    assert check_prompt("x" * MAX_PROMPT_CHARS)
    with pytest.raises(InputError, match="over the 4096-character limit"):
        check_prompt("x" * (MAX_PROMPT_CHARS + 1))


@pytest.mark.parametrize(("value", "expected"), [(2, 2), (10, 10), (6.0, 6)])
def test_durations_accepted(value, expected):
    assert check_duration(value) == expected


@pytest.mark.parametrize("value", [0, 1, 11, -3, 6.5, "six", "6", None, True])
def test_durations_refused(value):
    with pytest.raises(InputError) as caught:
        check_duration(value)
    assert caught.value.field == "duration"
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)
