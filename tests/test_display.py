"""`shown` and `kind_of`: the one way values reach messages, logs and tables."""

from __future__ import annotations

import pytest
from fixtures_media import data_url

from prefect_grok_video.display import SHOWN_CHARS, kind_of, shown

#: A 10 KiB video data URL, and its base64 body.
URL = data_url(bytes(range(256)) * 40)
BODY = URL.partition(",")[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("clips/a.mp4", "clips/a.mp4"),
        ("  two   spaces\n\tand a tab ", " two spaces and a tab "),
        ("nul\x00byte", "nul\\x00byte"),
        ("\u202eevil", "\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("café ✨ שלום", "café ✨ שלום"),
        (["a"], "<a list>"),
        (7, "<the number 7>"),
        (True, "<the boolean true>"),
        ({"a": 1}, "<an object>"),
    ],
)
def test_values_are_shown_on_one_safe_line(value, expected):
    assert shown(value) == expected


def test_a_data_url_is_summarised_with_its_length_never_its_body():
    assert shown(URL) == f"data:… ({len(URL)} chars)"
    assert shown(f"  {URL}\n") == f"data:… ({len(URL)} chars)"
    inner = shown(f"cannot read {URL} today", 500)
    assert inner == f"cannot read data:… ({len(URL)} chars) today"
    for text in (shown(URL, 10_000), inner):
        assert BODY[:20] not in text and BODY[-20:] not in text


def test_long_text_is_cut_to_the_limit_with_an_ellipsis():
    assert len(shown("x" * 1000)) == SHOWN_CHARS
    assert shown("abcdefgh", 5) == "abcd…"
    assert shown("abcde", 5) == "abcde"
    assert shown("a\x00bcdef", 6) == "a\\x00…"  # cut after escaping: never longer than asked


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), (False, "the boolean false"), (6.5, "the number 6.5"), ("x", "a string"),
     ((1,), "a list"), (b"x", "a bytes")],
)  # fmt: skip
def test_kind_of_names_a_value_without_showing_it(value, kind):
    assert kind_of(value) == kind
