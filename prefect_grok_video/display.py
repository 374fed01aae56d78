"""Values shown in messages, logs and tables: short, on one line, never a video's body.

What a user gives (an id, a prompt, a `video` value, a column name) and what a service answers
may hold anything: a whole video as a data URL, newlines, NUL, or bidi controls that make a
name read as another. `shown` turns any of it into a short text safe to print; `kind_of` names
what a value is without showing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SHOWN_CHARS", "kind_of", "shown"]

#: The default length of a shown value.
SHOWN_CHARS = 200
_DATA_URL = re.compile(r"data:[^,\s]{0,200},\S*", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`value` as a short safe line (data URLs summarised, controls escaped) for any message."""
    if value is None:
        return ""
    if not isinstance(value, str):
        text = f"<{kind_of(value)}>"
    elif value.strip().lower().startswith("data:"):
        text = f"data:… ({len(value.strip())} chars)"
    else:
        text = _DATA_URL.sub(lambda match: f"data:… ({len(match.group())} chars)", value)
        text = _WHITESPACE.sub(" ", text)
        # Control and format characters (NUL, bidi overrides) are shown escaped: they are often
        # what made the value wrong, and some databases refuse NUL in text.
        text = "".join(
            ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode()
            for ch in text
        )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_of(value: Any) -> str:
    """What a value is, in words, without showing it (it may be a data URL)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    names = {str: "a string", list: "a list", tuple: "a list", dict: "an object"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"
