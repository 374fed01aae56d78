"""Checking a manifest: raw rows into `ValidRow`s and `InvalidRow`s, before anything is paid.

Each row is checked completely (its fields against its action's limits, its id against the
others, its video or still resolved and preflighted in a thread pool, and, for a row whose video
is another row's result, the chain it belongs to), so an `InvalidRow` lists every problem found
at once.

About 610 lines: one check per field, all of them here, since a row's problems are gathered
together and many checks read other fields of the same row.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prefect_grok_video.display import kind_of, shown
from prefect_grok_video.errors import InputError, PreflightError
from prefect_grok_video.inputs import (
    ImageInput,
    MediaInput,
    VideoInput,
    check_choice,
    check_duration,
    check_prompt,
    resolve_image,
    resolve_video,
)
from prefect_grok_video.manifest.reading import raw_row, read_rows
from prefect_grok_video.manifest.rows import (
    FIELDS,
    UPSTREAM_PREFIX,
    InvalidRow,
    Manifest,
    ManifestRow,
    RawRow,
    RowProblem,
    ValidRow,
    closest,
    did_you_mean,
)
from prefect_grok_video.mp4 import check_length
from prefect_grok_video.operations import ACTIONS, DEFAULT_ACTION, Action, Limits, limits_for
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
_VIDEO_FORMS = "a path, an http(s) URL, a data URL, file_id:<id> or @<id> (another row's result)"
#: Why an action takes no such field, and what to do instead.
_NOT_TAKEN = {
    "video": "it makes a clip from the prompt, or from a still in image: leave video empty, "
    "or set action to edit or extend",
    "image": "only generate starts from a still: leave image empty, or set action to generate",
    "duration": "an edit is as long as its input: leave duration empty, or set action to extend",
    "aspect_ratio": "the result matches the input video: leave aspect_ratio empty, or set "
    "action to generate",
    "resolution": "the result matches the input video: leave resolution empty, or set action "
    "to generate",
}


@dataclass
class _Draft:
    """What the checks found in one row before its inputs, id uniqueness and chain are known."""

    row: int
    id: str | None  # None: the id is invalid
    derived: bool
    shown_id: str
    problems: dict[str, str]
    action: Action = DEFAULT_ACTION
    model: str = DEFAULT_MODEL
    video: Any = None
    upstream: str | None = None
    image: Any = None
    prompt: Any = None
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    #: Seconds the input and the result last, once known.
    input_seconds: float | None = None
    output_seconds: float | None = None
    refs: dict[str, Any] = field(default_factory=dict)

    @property
    def limits(self) -> Limits:
        return limits_for(self.action, self.model)


@dataclass(frozen=True)
class _MediaCheck:
    """One distinct video or image value, resolved, preflighted and fingerprinted."""

    media: MediaInput | None
    source: str
    fingerprint: str | None
    problem: str | None
    #: How long a video lasts, when its content was read.
    seconds: float | None = None


def load_manifest(
    source: str | os.PathLike[str] | Sequence[ManifestRow | Mapping[str, Any]],
    *,
    default_model: str = DEFAULT_MODEL,
    max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
    preflight: bool = True,
    workers: int = 8,
    rows: Collection[int] | None = None,
) -> Manifest:
    """Read and validate every row; invalid rows are kept (with every problem found), never raised.

    Videos and stills are resolved against the manifest's folder, then preflighted (unless
    `preflight` is False) and fingerprinted in a pool of `workers` threads, once per distinct
    value. `rows` (1-based row numbers) keeps only those rows and the rows their videos come
    from (`@<id>`): ids, duplicates and chains are still worked out over the whole manifest, so
    a row's id and number never depend on the selection, but only the kept rows' files are read.
    Raises `ManifestError` only when the manifest as a whole cannot be read, and `ValueError`
    for a bad `default_model`, `workers` or `rows`.
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
    by_id = _check_upstreams(drafts)
    if rows is not None:
        drafts = _selected(drafts, by_id, rows)

    def check_video(value: str) -> _MediaCheck:
        return _check_media(resolve_video, value, base_dir, max_upload_bytes, preflight)

    def check_image(value: str) -> _MediaCheck:
        return _check_media(resolve_image, value, base_dir, max_upload_bytes, preflight)

    videos = _checked(drafts, "video", check_video, workers)
    images = _checked(drafts, "image", check_image, workers)
    for draft in drafts:
        _apply_media(draft, videos, images)
    _check_chains(drafts, by_id)
    return Manifest(described, base_dir, tuple(_finish(draft) for draft in drafts))


def _as_raw(row: Any) -> RawRow:
    return row if isinstance(row, RawRow) else raw_row(row)


def _checked(
    drafts: list[_Draft], name: str, check: Callable[[str], _MediaCheck], workers: int
) -> dict[str, _MediaCheck]:
    """Each distinct value of the field `name` among the drafts, checked once, in threads."""
    values = list(
        dict.fromkeys(
            getattr(draft, name)
            for draft in drafts
            if isinstance(getattr(draft, name), str) and name not in draft.problems
        )
    )
    if not values:
        return {}
    with ThreadPoolExecutor(min(workers, len(values)), "grok-video-manifest") as pool:
        return dict(zip(values, pool.map(check, values), strict=True))


def _apply_media(
    draft: _Draft, videos: dict[str, _MediaCheck], images: dict[str, _MediaCheck]
) -> None:
    """Record a draft's checked video and still, and the problems they have for its action."""
    for name, checks in (("video", videos), ("image", images)):
        value = getattr(draft, name)
        checked = checks.get(value) if isinstance(value, str) else None
        if checked is None:
            continue
        draft.refs[name] = checked
        if checked.problem is not None:
            draft.problems.setdefault(name, checked.problem)
    video = draft.refs.get("video")
    media = video.media if video is not None else None
    if media is not None and media.kind == "file_id" and draft.action != "extend":
        draft.problems.setdefault(
            "video", f"{draft.action} cannot take a Files API id: give a path or a URL of the clip"
        )
    if video is not None and video.seconds is not None and "video" not in draft.problems:
        draft.input_seconds = video.seconds
        bounds = draft.limits.input_seconds
        if bounds is not None:
            try:
                check_length(video.seconds, bounds)
            except PreflightError as exc:
                draft.problems["video"] = f"{exc.message} (what {draft.action} accepts)"
    if draft.upstream is None:
        draft.output_seconds = draft.limits.output_seconds(draft.input_seconds, draft.duration)


def _finish(draft: _Draft) -> ValidRow | InvalidRow:
    video: _MediaCheck | None = draft.refs.get("video")
    image: _MediaCheck | None = draft.refs.get("image")
    if draft.upstream is not None:
        source = f"{UPSTREAM_PREFIX}{draft.upstream}"
    else:
        source = video.source if video is not None else shown(draft.video)
    row_id = draft.id if draft.id is not None else draft.shown_id
    if draft.problems:
        order = {name: number for number, name in enumerate(_PROBLEM_ORDER)}
        names = sorted(draft.problems, key=lambda name: order.get(name, len(order)))
        problems = tuple(RowProblem(name, draft.problems[name]) for name in names)
        # A row that could not be read whole (e.g. a CSV row shifted by an unquoted comma) may
        # hold anything in its prompt column, even the body of a data URL: leave it out.
        readable = "row" not in draft.problems and isinstance(draft.prompt, str)
        prompt = draft.prompt if readable else None
        action = None if "action" in draft.problems else draft.action
        return InvalidRow(draft.row, row_id, source, prompt, problems, action, draft.upstream)
    assert draft.duration is not None or draft.limits.durations is None
    return ValidRow(
        row=draft.row,
        id=row_id,
        action=draft.action,
        video=video.media if video is not None else None,  # type: ignore[arg-type]
        source=source,
        prompt=draft.prompt,
        duration=draft.duration,
        model=draft.model,
        fingerprint=video.fingerprint if video is not None else None,
        upstream=draft.upstream,
        image=image.media if image is not None else None,  # type: ignore[arg-type]
        image_source=image.source if image is not None else "",
        image_fingerprint=image.fingerprint if image is not None else None,
        aspect_ratio=draft.aspect_ratio,
        resolution=draft.resolution,
        input_seconds=draft.input_seconds,
        output_seconds=draft.output_seconds,
    )


def _check_fields(number: int, raw: RawRow, default_model: str) -> _Draft:
    """Check a row's id, action, model, prompt and its action's fields (without reading files)."""
    problems: dict[str, str] = {}
    for problem in raw.problems:
        problems.setdefault(problem.field, problem.message)
    draft = _Draft(number, f"row-{number}", True, f"row-{number}", problems)
    if "row" in problems and not raw:
        return draft  # nothing could be read of it
    unknown = [key for key in raw if key not in FIELDS]
    _check_id(draft, raw.get("id"))
    _check_action(draft, raw.get("action"))
    model = raw.get("model")
    if model is None or model == "":
        draft.model = default_model
    else:
        model_problem = _model_problem(model)
        if model_problem:
            problems.setdefault("model", model_problem)
            draft.model = default_model
        else:
            draft.model = model
    limits = draft.limits

    draft.prompt = raw.get("prompt")
    if "prompt" not in problems:
        if draft.prompt is None:
            problems["prompt"] = "missing: describe what happens in the video" + did_you_mean(
                "prompt", unknown
            )
        elif not isinstance(draft.prompt, str):
            problems["prompt"] = f"must be text, got {kind_of(draft.prompt)}: quote it"
        else:
            try:
                check_prompt(draft.prompt)
            except InputError as exc:
                problems["prompt"] = exc.message

    if "action" in problems:
        return draft  # what the other fields may hold depends on the action
    given = {name: raw.get(name) for name in ("video", "image", "duration", "aspect_ratio",
                                               "resolution")}  # fmt: skip
    given = {name: value for name, value in given.items() if value is not None and value != ""}
    for name in given:
        if not limits.takes(name) and name not in problems:
            problems[name] = f"{draft.action} takes no {name} ({_NOT_TAKEN[name]})"
    if limits.takes_video and "video" not in problems:
        _check_video_value(draft, given.get("video"), unknown, raw.columns)
    if "image" in given and "image" not in problems:
        if isinstance(given["image"], str):
            draft.image = given["image"]
        else:
            problems["image"] = f"must be text (a path or a URL), got {kind_of(given['image'])}"
    if limits.durations is not None:
        try:
            duration = _parse_duration(given.get("duration"))
            draft.duration = check_duration(
                limits.default_duration if duration is None else duration, limits.durations
            )
        except InputError as exc:
            problems.setdefault("duration", exc.message)
    for name, choices in (("aspect_ratio", limits.aspect_ratios),
                          ("resolution", limits.resolutions)):  # fmt: skip
        if name in given and name not in problems and not isinstance(given[name], str):
            problems[name] = _not_text(given[name], choices)
        elif name in given and name not in problems:
            try:
                setattr(draft, name, check_choice(_text(given[name]), choices, name))
            except InputError as exc:
                problems[name] = _with_model(exc.message, name, draft)
    return draft


def _not_text(value: Any, choices: Sequence[str]) -> str:
    """Why a choice that is not text is refused, and how it may have become a number."""
    message = f"must be text, one of {', '.join(choices)}: got {kind_of(value)}"
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 16:9 as a base-60 number, 16 * 60 + 9
        ratio = "{}:{}".format(*divmod(value, 60))
        if ratio in choices:
            message += f' (YAML reads an unquoted {ratio} as {value}: quote it, "{ratio}")'
    return message


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _with_model(message: str, name: str, draft: _Draft) -> str:
    """A refusal of a value some other model would take says so."""
    if name != "resolution":
        return message
    return f"{message} ({draft.model} offers these; another model may offer more)"


def _check_id(draft: _Draft, given: Any) -> None:
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if given is None or given == "":
        return
    draft.derived = False
    draft.shown_id = shown(given)
    problem = (
        _id_problem(given) if isinstance(given, str) else f"must be text, got {kind_of(given)}"
    )
    if problem:
        draft.id = None
        draft.problems.setdefault("id", problem)
    else:
        draft.id = given


def _check_action(draft: _Draft, given: Any) -> None:
    if given is None or given == "":
        return
    text = given.strip().lower() if isinstance(given, str) else None
    if text in ACTIONS:
        draft.action = text
        return
    shown_value = repr(shown(given, 40)) if isinstance(given, str) else kind_of(given)
    match = closest(text or "", ACTIONS) or next(
        (action for action in ACTIONS if text and len(text) >= 2 and action.startswith(text)),
        None,
    )
    hint = f": did you mean {match!r}?" if match else ""
    draft.problems.setdefault(
        "action", f"must be generate, edit or extend, got {shown_value}{hint}"
    )


def _check_video_value(
    draft: _Draft, value: Any, unknown: list[str], columns: Sequence[str] | None
) -> None:
    """The video of an edit or extend row: given, text, and an `@<id>` or something to resolve."""
    if value is None and columns is not None and "video" not in columns:
        draft.problems["video"] = (
            f"missing: the manifest has no 'video' column (columns: "
            f"{', '.join(shown(c) for c in columns)}); give {_VIDEO_FORMS} for each row that "
            "edits or extends a clip" + did_you_mean("video", unknown)
        )
    elif value is None:
        draft.problems["video"] = (
            f"missing: give {_VIDEO_FORMS}; {draft.action} needs a clip"
            + did_you_mean("video", unknown)
        )
    elif not isinstance(value, str):
        draft.problems["video"] = f"must be text ({_VIDEO_FORMS}), got {kind_of(value)}"
    elif value.strip().startswith(UPSTREAM_PREFIX):
        upstream = value.strip()[len(UPSTREAM_PREFIX) :].strip()
        if not upstream:
            draft.problems["video"] = "@ needs the id of the row whose result to use, e.g. @intro"
        else:
            draft.upstream = upstream
    else:
        draft.video = value


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


def _check_upstreams(drafts: list[_Draft]) -> dict[str, _Draft]:
    """Mark rows whose `@<id>` names no row, or whose chain comes back to itself; return the
    rows by id (the first of each id)."""
    by_id: dict[str, _Draft] = {}
    for draft in drafts:
        if draft.id is not None:
            by_id.setdefault(draft.id, draft)
    for draft in drafts:
        if draft.upstream is not None and draft.upstream not in by_id:
            match = closest(draft.upstream, by_id)
            hint = f": did you mean @{match}?" if match else ": give the id of a row above or below"
            draft.problems.setdefault(
                "video", f"@{shown(draft.upstream, 40)} names no row of this manifest{hint}"
            )
    for draft in drafts:
        path, seen = [draft], {draft.row}
        while (above := by_id.get(path[-1].upstream or "")) is not None:
            if above.row in seen:
                if above is draft:
                    ids = " → ".join(shown(step.id or "", 40) for step in [*path, draft])
                    draft.problems.setdefault(
                        "video", f"@{draft.upstream} makes a cycle ({ids}): a chain must start "
                        "from a row that needs no other row's result"
                    )  # fmt: skip
                break
            path.append(above)
            seen.add(above.row)
    return by_id


def _selected(
    drafts: list[_Draft], by_id: dict[str, _Draft], rows: Collection[int]
) -> list[_Draft]:
    """The drafts numbered in `rows`, with every row their videos come from, in row order."""
    wanted = set(rows)
    if not wanted or min(wanted) < 1:
        raise ValueError(f"rows must be row numbers from 1, got {sorted(wanted)[:5]}")
    keep: set[int] = set()
    for number in wanted:
        draft = drafts[number - 1] if number <= len(drafts) else None
        while draft is not None and draft.row not in keep:
            keep.add(draft.row)
            draft = by_id.get(draft.upstream or "")
    return [draft for draft in drafts if draft.row in keep]


def _check_chains(drafts: list[_Draft], by_id: dict[str, _Draft]) -> None:
    """Work out how long each chained row's input will be (its upstream's result), and mark
    those whose input would break their action's limits, before anything is paid."""
    done: set[int] = set()

    def visit(draft: _Draft) -> None:
        if draft.row in done:
            return
        done.add(draft.row)
        if draft.upstream is None or "video" in draft.problems:
            return
        above = by_id[draft.upstream]
        visit(above)
        if above.output_seconds is None or above.problems:
            return
        draft.input_seconds = above.output_seconds
        draft.output_seconds = draft.limits.output_seconds(draft.input_seconds, draft.duration)
        bounds = draft.limits.input_seconds
        assert bounds is not None
        low, high = bounds
        if not low <= draft.input_seconds <= high:
            draft.problems["video"] = (
                f"the result of @{draft.upstream} will be {draft.input_seconds:g} s long "
                f"({_chain(above, by_id)}); {draft.action} accepts {low:g} to {high:g} s: "
                + ("shorten the durations along the chain" if draft.input_seconds > high
                   else "make the clip before it longer")
            )  # fmt: skip

    for draft in drafts:
        visit(draft)


def _chain(draft: _Draft, by_id: dict[str, _Draft]) -> str:
    """How a row's result length adds up along its chain, e.g. `8 s generate + 6 s extend`."""
    steps = []
    while draft is not None:
        if draft.action == "generate":
            steps.append(f"{draft.output_seconds:g} s generated by {draft.id}")
        elif draft.action == "extend":
            steps.append(f"{draft.duration} s added by {draft.id}")
        if draft.upstream is None:
            if draft.action != "generate" and draft.input_seconds is not None:
                steps.append(f"a {draft.input_seconds:g} s clip")
            break
        draft = by_id[draft.upstream]
    return " + ".join(reversed(steps))


def _parse_duration(value: Any) -> Any:
    """The duration given: absent or empty is None; whole numbers and their text pass as `int`;
    anything else is returned as given, for `check_duration` to refuse."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return value
        return int(number) if number.is_integer() else value
    return value


def _model_problem(value: Any) -> str | None:
    """Why `value` cannot be a model id, or None."""
    if not isinstance(value, str):
        return f"must be a model id such as {DEFAULT_MODEL}, got {kind_of(value)}"
    if not value or any(char.isspace() for char in value):
        return f"must be a model id without spaces such as {DEFAULT_MODEL}, got {shown(value)!r}"
    return None


def _check_media(
    resolve: Callable[..., MediaInput],
    value: str,
    base_dir: str | None,
    max_bytes: int | None,
    preflight: bool,
) -> _MediaCheck:
    """Resolve, preflight and fingerprint one `video` or `image` value; a problem instead of
    raising. A video's length is checked against each row's action later."""
    try:
        media = resolve(value, base_dir=base_dir, max_bytes=max_bytes)
    except InputError as exc:
        return _MediaCheck(None, shown(value), None, exc.message)
    source = media.describe()
    seconds = None
    try:
        if preflight and isinstance(media, VideoInput):
            info = media.preflight((0.0, float("inf")))
            seconds = info.duration if info is not None else None
        elif preflight and isinstance(media, ImageInput):
            media.preflight()
        fingerprint = media.fingerprint()
    except InputError as exc:
        return _MediaCheck(media, source, None, exc.message)
    except OSError as exc:
        return _MediaCheck(media, source, None, f"cannot read {source}: {exc.strerror or exc}")
    return _MediaCheck(media, source, fingerprint, None, seconds)
