"""`shown` and `kind_of`: the one way values reach messages, logs and tables."""

from __future__ import annotations

import base64

import pytest

from prefect_grok_video.display import SHOWN_CHARS, kind_of, shown

BODY = base64.b64encode(bytes(range(256)) * 40).decode()


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
    url = f"data:video/mp4;base64,{BODY}"
    assert shown(url) == f"data:… ({len(url)} chars)"
    assert shown(f"  {url}\n") == f"data:… ({len(url)} chars)"
    inner = shown(f"cannot read {url} today", 500)
    assert inner == f"cannot read data:… ({len(url)} chars) today"
    for text in (shown(url, 10_000), inner):
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
