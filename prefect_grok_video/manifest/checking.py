"""Checking a manifest: raw rows into `ValidRow`s and `InvalidRow`s, before anything is paid.

Each row is checked completely (its fields, its id against the others, its video resolved and
preflighted in a thread pool), so an `InvalidRow` lists every problem found at once.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prefect_grok_video.display import kind_of, shown
from prefect_grok_video.errors import InputError
from prefect_grok_video.inputs import VideoInput, check_duration, check_prompt, resolve_video
from prefect_grok_video.manifest.reading import raw_row, read_rows
from prefect_grok_video.manifest.rows import (
    DEFAULT_DURATION,
    FIELDS,
    InvalidRow,
    Manifest,
    ManifestRow,
    RawRow,
    RowProblem,
    ValidRow,
    did_you_mean,
)
from prefect_grok_video.settings import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MODEL

__all__ = ["MAX_ID_CHARS", "load_manifest"]

#: Problems of a row are listed in this order ("row": the row as a whole could not be read),
#: then those of unknown columns, in the order given.
_PROBLEM_ORDER = ("row", *FIELDS)
#: Longest id: it becomes a file name, and names past 255 bytes fail on most file systems.
MAX_ID_CHARS = 128
_ID_FORBIDDEN = '<>:"|?*'
#: Unicode controls that reorder text: an id holding one can display as a different file name.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10)}
)
_ID_ADVICE = "use letters, digits, '-' and '_'"


@dataclass
class _Draft:
    """What the checks found in one row before its video and id uniqueness are known."""

    row: int
    id: str | None  # None: the id is invalid
    derived: bool
    shown_id: str
    video: Any
    prompt: Any
    duration: int | None
    model: str | None
    problems: dict[str, str]


@dataclass(frozen=True)
class _VideoCheck:
    video: VideoInput | None
    source: str
    fingerprint: str | None
    problem: str | None


def load_manifest(
    source: str | os.PathLike[str] | Sequence[ManifestRow | Mapping[str, Any]],
    *,
    default_model: str = DEFAULT_MODEL,
    max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
    preflight: bool = True,
    workers: int = 8,
    rows: tuple[int, int] | None = None,
) -> Manifest:
    """Read and validate every row; invalid rows are kept (with every problem found), never raised.

    Videos are resolved against the manifest's folder, then preflighted (unless `preflight` is
    False) and fingerprinted in a pool of `workers` threads, once per distinct value. `rows`
    (first, last; 1-based, inclusive) keeps only those rows: ids and duplicates are still
    worked out over the whole manifest, so a row's id and number never depend on the
    selection, but only the selected rows' videos are read. Raises `ManifestError` only when
    the manifest as a whole cannot be read, and `ValueError` for a bad `default_model`,
    `workers` or `rows`.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    problem = _model_problem(default_model)
    if problem:
        raise ValueError(f"default_model {problem}")
    raw_rows, base_dir, described = read_rows(source)
    drafts = [
        _check_fields(number, _as_raw(raw), default_model) for number, raw in enumerate(raw_rows, 1)
    ]
    _check_unique_ids(drafts)
    if rows is not None:
        first, last = rows
        if not 1 <= first <= last:
            raise ValueError(f"rows must be (first, last) with 1 <= first <= last, got {rows}")
        drafts = drafts[first - 1 : last]
    values = list(
        dict.fromkeys(
            draft.video
            for draft in drafts
            if isinstance(draft.video, str) and "video" not in draft.problems
        )
    )
    checks: dict[str, _VideoCheck] = {}
    if values:

        def check(value: str) -> _VideoCheck:
            return _check_video(value, base_dir, max_upload_bytes, preflight)

        with ThreadPoolExecutor(min(workers, len(values)), "grok-video-manifest") as pool:
            checks = dict(zip(values, pool.map(check, values), strict=True))
    return Manifest(described, base_dir, tuple(_finish(draft, checks) for draft in drafts))


def _as_raw(row: Any) -> RawRow:
    return row if isinstance(row, RawRow) else raw_row(row)


def _finish(draft: _Draft, checks: dict[str, _VideoCheck]) -> ValidRow | InvalidRow:
    checked = checks.get(draft.video) if isinstance(draft.video, str) else None
    if checked is not None and checked.problem is not None:
        draft.problems["video"] = checked.problem
    source = checked.source if checked is not None else shown(draft.video)
    row_id = draft.id if draft.id is not None else draft.shown_id
    if draft.problems:
        order = {name: number for number, name in enumerate(_PROBLEM_ORDER)}
        names = sorted(draft.problems, key=lambda name: order.get(name, len(order)))
        problems = tuple(RowProblem(name, draft.problems[name]) for name in names)
        # A row that could not be read whole (e.g. a CSV row shifted by an unquoted comma) may
        # hold anything in its prompt column, even the body of a data URL: leave it out.
        readable = "row" not in draft.problems and isinstance(draft.prompt, str)
        prompt = draft.prompt if readable else None
        return InvalidRow(draft.row, row_id, source, prompt, problems)
    assert checked is not None and checked.video is not None and checked.fingerprint is not None
    assert draft.duration is not None and draft.model is not None
    return ValidRow(
        row=draft.row,
        id=row_id,
        video=checked.video,
        source=source,
        prompt=draft.prompt,
        duration=draft.duration,
        model=draft.model,
        fingerprint=checked.fingerprint,
    )


def _check_fields(number: int, raw: RawRow, default_model: str) -> _Draft:
    """Check a row's id, prompt, duration and model, and whether it has a video value."""
    problems: dict[str, str] = {}
    for problem in raw.problems:
        problems.setdefault(problem.field, problem.message)
    draft = _Draft(number, f"row-{number}", True, f"row-{number}", None, None, None, None, problems)
    if "row" in problems and not raw:
        return draft  # nothing could be read of it
    unknown = [key for key in raw if key not in FIELDS]

    given = raw.get("id")
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if given is not None and given != "":
        draft.derived = False
        draft.shown_id = shown(given)
        if isinstance(given, str):
            problem = _id_problem(given)
        else:
            problem = f"must be text, got {kind_of(given)}"
        if problem:
            draft.id = None
            problems.setdefault("id", problem)
        else:
            draft.id = given

    draft.video = raw.get("video")
    if "video" not in problems:
        if draft.video is None:
            problems["video"] = (
                "missing: give a path, an http(s) URL, a data URL or file_id:<id>"
                + did_you_mean("video", unknown)
            )
        elif not isinstance(draft.video, str):
            problems["video"] = (
                f"must be text (a path, an http(s) URL, a data URL or file_id:<id>), "
                f"got {kind_of(draft.video)}"
            )

    draft.prompt = raw.get("prompt")
    if "prompt" not in problems:
        if draft.prompt is None:
            problems["prompt"] = "missing: describe what happens next in the video" + (
                did_you_mean("prompt", unknown)
            )
        elif not isinstance(draft.prompt, str):
            problems["prompt"] = f"must be text, got {kind_of(draft.prompt)}: quote it"
        else:
            try:
                check_prompt(draft.prompt)
            except InputError as exc:
                problems["prompt"] = exc.message

    try:
        draft.duration = _parse_duration(raw.get("duration"))
    except InputError as exc:
        problems.setdefault("duration", exc.message)

    model = raw.get("model")
    if model is None or model == "":
        draft.model = default_model
    else:
        problem = _model_problem(model)
        if problem:
            problems.setdefault("model", problem)
        else:
            draft.model = model
    return draft


def _id_problem(value: str) -> str | None:
    """Why `value` cannot be an id (it becomes the output file name `<id>.mp4`), or None."""
    why = f"the id names the output file <id>.mp4: {_ID_ADVICE}"
    if not value.strip():
        return f"is blank: leave it out to use row-<n>, or {_ID_ADVICE}"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long, over {MAX_ID_CHARS}: shorten it ({why})"
    for char in value:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return f"contains the control character {char!r} ({why})"
    for part in ("/", "\\", ".."):
        if part in value:
            return f"contains {part!r}, which would reach outside the output folder ({why})"
    for char in _ID_FORBIDDEN:
        if char in value:
            return f"contains {char!r}, which many file systems refuse in file names ({why})"
    if value[0] in ".-":
        kind = "a hidden file" if value[0] == "." else "a command-line option"
        return f"starts with {value[0]!r}, which makes the file look like {kind} ({why})"
    if value != value.strip():
        return f"starts or ends with whitespace, easily lost when the file is copied ({why})"
    if value.endswith("."):
        return f"ends with '.', which Windows drops from file names ({why})"
    if value.split(".")[0].lower() in _WINDOWS_DEVICES:
        return f"is a device name on Windows ({value.split('.')[0]!r}): choose another ({why})"
    return None


def _check_unique_ids(drafts: list[_Draft]) -> None:
    """Mark every repeat of an id invalid; the first row with it stays as it is."""
    first: dict[str, _Draft] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        # Case-insensitive file systems (macOS, Windows) would store both rows in one file.
        key = unicodedata.normalize("NFC", draft.id).casefold()
        earlier = first.setdefault(key, draft)
        if earlier is draft:
            continue
        message = f"duplicate id {shown(draft.id)!r} (first on row {earlier.row}"
        if earlier.id != draft.id:
            message += f" as {shown(earlier.id or '')!r}, the same file name on many systems"
        if earlier.derived:
            message += ", which has no id and was named after its position"
        message += ")"
        if draft.derived:
            message += f": this row has no id and was named {draft.id!r}; give it an id"
        else:
            message += ": each id names an output file <id>.mp4, so give each row its own"
        draft.problems.setdefault("id", message)


def _parse_duration(value: Any) -> int:
    """The duration as sent: absent/empty is the default; whole numbers and their text pass."""
    if value is None:
        return DEFAULT_DURATION
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return DEFAULT_DURATION
        try:
            return check_duration(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and number.is_integer():
            return check_duration(int(number))
    return check_duration(value)


def _model_problem(value: Any) -> str | None:
    """Why `value` cannot be a model id, or None."""
    if not isinstance(value, str):
        return f"must be a model id such as {DEFAULT_MODEL}, got {kind_of(value)}"
    if not value or any(char.isspace() for char in value):
        return f"must be a model id without spaces such as {DEFAULT_MODEL}, got {shown(value)!r}"
    return None


def _check_video(
    value: str, base_dir: str | None, max_bytes: int | None, preflight: bool
) -> _VideoCheck:
    """Resolve, preflight and fingerprint one `video` value; a problem instead of raising."""
    try:
        video = resolve_video(value, base_dir=base_dir, max_bytes=max_bytes)
    except InputError as exc:
        return _VideoCheck(None, shown(value), None, exc.message)
    source = video.describe()
    try:
        if preflight:
            video.preflight()
        fingerprint = video.fingerprint()
    except InputError as exc:
        return _VideoCheck(video, source, None, exc.message)
    except OSError as exc:
        return _VideoCheck(video, source, None, f"cannot read {source}: {exc.strerror or exc}")
    return _VideoCheck(video, source, fingerprint, None)
