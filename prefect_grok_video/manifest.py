"""Manifests: the rows of clips and prompts to extend, read and checked before anything is paid.

A manifest is a CSV, JSON, JSONL or YAML file (a local path or any storage URL fsspec reads,
such as ``s3://bucket/m.csv`` or ``memory://m.csv``), or an inline list of rows (what the
Prefect UI renders as a form). Every row has these fields:

==========  ========  ===================================================================
field       needed    meaning
==========  ========  ===================================================================
id          no        unique name of the row and of its output file ``<id>.mp4``; ``row-<n>``
video       yes       the clip: a path (relative to the manifest's folder), storage URL,
                      http(s) URL, data URL or ``file_id:<id>`` (see `prefect_grok_video.inputs`)
prompt      yes       what happens next in the video
duration    no        seconds of new video, a whole number from 2 to 10 (default 6)
model       no        model id (default: the caller's, ``grok-imagine-video``)
==========  ========  ===================================================================

`load_manifest` reads the rows and checks each one completely (including the MP4 preflight of
local and storage files, in a thread pool): a good row becomes a `ValidRow`, a bad one an
`InvalidRow` listing every problem found, and the good rows go on. Only a manifest that cannot
be read as a whole (not found, unknown format, malformed JSON/YAML/CSV) raises `ManifestError`.
No message, description or repr here ever holds the body of a data URL.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from prefect_grok_video.display import kind_of, shown
from prefect_grok_video.errors import InputError, ManifestError
from prefect_grok_video.inputs import (
    MAX_DURATION,
    MIN_DURATION,
    STORAGE_PROTOCOLS,
    VideoInput,
    check_duration,
    check_prompt,
    resolve_video,
)
from prefect_grok_video.settings import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MODEL

__all__ = [
    "DEFAULT_DURATION",
    "FIELDS",
    "FORMATS",
    "MAX_ID_CHARS",
    "InvalidRow",
    "Manifest",
    "ManifestRow",
    "RawRow",
    "RowProblem",
    "ValidRow",
    "load_manifest",
    "read_rows",
]

#: The fields of a row, in the order their problems are reported.
FIELDS = ("id", "video", "prompt", "duration", "model")
_REQUIRED = ("video", "prompt")
#: Problems of a row are listed in this order ("row": the row as a whole could not be read).
_PROBLEM_ORDER = ("row", *FIELDS)
DEFAULT_DURATION = 6
#: Longest id: it becomes a file name, and names past 255 bytes fail on most file systems.
MAX_ID_CHARS = 128
#: File extension -> manifest format.
FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
}
_ID_FORBIDDEN = '<>:"|?*'
#: Unicode controls that reorder text: an id holding one can display as a different file name.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10)}
)
_ID_ADVICE = "use letters, digits, '-' and '_'"
#: Largest CSV cell read (the csv module's default of 128 KiB refuses small data URLs).
_CSV_FIELD_LIMIT = 2**31 - 1


def _as_given(value: Any) -> Any:
    return value


class ManifestRow(BaseModel):
    """One row as given: what the Prefect UI renders as a form for inline manifests."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(
        default=None,
        description=(
            "Unique name of the row and of its output file <id>.mp4 (letters, digits, '-' and "
            "'_'); row-<n> when empty."
        ),
    )
    video: str = Field(
        description=(
            "The clip to extend: a path (relative to the manifest's folder), a storage URL such "
            "as s3://bucket/clip.mp4, an http(s) URL, a data URL or file_id:<id>."
        ),
    )
    prompt: str = Field(description="What happens next in the video.")
    # Kept as given, so that an out-of-range or malformed value makes an invalid *row* (reported
    # with the others) rather than failing the whole flow's parameters; the form still shows 2-10.
    duration: Annotated[
        int | float | str | None,
        PlainValidator(_as_given),
        PlainSerializer(_as_given),
        WithJsonSchema({"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION}),
    ] = Field(
        default=DEFAULT_DURATION,
        description=(
            f"Seconds of new video to generate, a whole number from {MIN_DURATION} to "
            f"{MAX_DURATION}."
        ),
    )
    model: str | None = Field(
        default=None, description="Model id; the flow's default model when empty."
    )


@dataclass(frozen=True)
class RowProblem:
    """One problem of one row: the field it is in and what is wrong, with the fix."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RawRow(dict[str, Any]):
    """A row as read, keys lower-cased; `problems` holds what reading it found wrong.

    A row that could not be read at all (a malformed JSONL line, a value that is not an object)
    is empty with a `row` problem; a CSV without a required column gives that column's problem.
    """

    def __init__(
        self, values: Mapping[str, Any] | None = None, problems: Sequence[RowProblem] = ()
    ) -> None:
        super().__init__(values or {})
        self.problems = tuple(problems)

    def __repr__(self) -> str:
        return f"RawRow({dict.__repr__(self)}, problems={self.problems!r})"


@dataclass(frozen=True)
class InvalidRow:
    """A row that cannot be sent, with every problem found in it."""

    #: 1-based position among the data rows (a CSV header is not counted).
    row: int
    #: The id as given (cut to 200 characters, a data URL's body left out), or `row-<n>`.
    id: str
    #: The video value described safely (never a data URL's body).
    source: str
    prompt: str | None
    problems: tuple[RowProblem, ...]

    @property
    def message(self) -> str:
        """All problems on one line: ``row 3 (id 'x'): duration: ...; video: ...``."""
        problems = "; ".join(str(problem) for problem in self.problems)
        return f"row {self.row} (id {shown(self.id)!r}): {problems}"


@dataclass(frozen=True)
class ValidRow:
    """A row ready to send: its video resolved (and preflighted) and its values checked."""

    row: int
    id: str
    #: Resolved video; left out of the repr because a data URL input holds the whole video.
    video: VideoInput = field(repr=False)
    #: `video.describe()`: safe to log and report.
    source: str
    prompt: str
    duration: int
    model: str
    #: `VideoInput.fingerprint()`: sha256 of the content for files and data URLs, else the
    #: URL or file id; the same clip at two paths has the same fingerprint.
    fingerprint: str

    @property
    def output_name(self) -> str:
        """The name of this row's result file."""
        return f"{self.id}.mp4"


@dataclass(frozen=True)
class Manifest:
    """Every row of a manifest, valid or not, in row order, and where they came from."""

    #: Where the rows came from, safe to show: the path or URL, or "inline (n rows)".
    source: str
    #: The folder relative video paths resolve against (None: the current folder).
    base_dir: str | None
    rows: tuple[ValidRow | InvalidRow, ...]

    @property
    def valid(self) -> tuple[ValidRow, ...]:
        """The rows that can be sent, in row order."""
        return tuple(row for row in self.rows if isinstance(row, ValidRow))

    @property
    def invalid(self) -> tuple[InvalidRow, ...]:
        """The rows that cannot be sent, in row order."""
        return tuple(row for row in self.rows if isinstance(row, InvalidRow))


# --------------------------------------------------------------------------- reading


def read_rows(
    source: str | os.PathLike[str] | Sequence[ManifestRow | Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], str | None, str]:
    """Raw rows, the base folder for relative paths, and a description; ManifestError if unreadable.

    Each row is a `RawRow` (a dict with lower-cased keys); rows that could not be read as an
    object come back empty with their problem, so that one bad row never hides the others.
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source))
    if isinstance(source, (bytes, bytearray, Mapping)) or not isinstance(source, Sequence):
        kind = "a mapping" if isinstance(source, Mapping) else type(source).__name__
        raise ManifestError(
            f"a manifest is a path, a storage URL or a list of rows, got {kind}: "
            "wrap a single row in a list"
        )
    rows: list[dict[str, Any]] = [
        RawRow(item.model_dump()) if isinstance(item, ManifestRow) else _raw_row(item)
        for item in source
    ]
    if not rows:
        raise ManifestError("the inline manifest has no rows: give at least one row")
    return rows, None, f"inline ({len(rows)} row{'s' * (len(rows) != 1)})"


def _read_file(text: str) -> tuple[list[dict[str, Any]], str | None, str]:
    described = _redact_userinfo(text)
    if not text.strip():
        raise ManifestError("manifest not found: the path is empty")
    scheme, sep, rest = text.partition("://")
    remote = False
    if sep:
        protocol = scheme.lower()
        if protocol not in STORAGE_PROTOCOLS:
            raise ManifestError(
                f"unsupported manifest URL scheme {scheme!r} ({described}): use a local path or a "
                "storage URL such as s3://, gs://, az:// or memory://"
            )
        remote = protocol not in ("file", "local")
    if remote:
        parent = rest.rsplit("/", 1)[0] if "/" in rest.rstrip("/") else ""
        base_dir = f"{scheme}://{parent}"
        suffix = PurePosixPath(rest).suffix.lower()
        data = _read_remote(text, described)
    else:
        path = Path(fsspec.core.strip_protocol(text) if sep else text).expanduser().absolute()
        base_dir, suffix = str(path.parent), path.suffix.lower()
        data = _read_local(path)
    where = described if remote else str(path)  # errors name the absolute path of a local file
    fmt = FORMATS.get(suffix)
    if fmt is None:
        accepted = ", ".join(FORMATS)
        found = f"'{suffix}'" if suffix else "no extension"
        raise ManifestError(
            f"unsupported manifest format ({found}) for {where}: name it with one of {accepted}"
        )
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"the manifest {where} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}): save it as UTF-8"
        ) from None
    if not content.strip():
        raise ManifestError(f"the manifest {where} is empty: it has no rows")
    rows = _PARSERS[fmt](content, where)
    if not rows:
        raise ManifestError(f"the manifest {where} has no rows")
    return rows, base_dir, described


def _read_local(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ManifestError(
                f"the manifest {path} is a folder: give the path of a manifest file"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None


def _read_remote(url: str, where: str) -> bytes:
    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
        if info.get("type") == "directory":
            raise ManifestError(
                f"the manifest {where} is a folder: give the URL of a manifest file"
            )
        with fs.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {where}") from None
    except (ImportError, OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {where}: {exc}") from None


def _parse_csv(content: str, where: str) -> list[dict[str, Any]]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(content, newline=""))
    header: list[str] | None = None
    missing: list[RowProblem] = []
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (or one of empty cells)
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                missing = _missing_columns(header, where)
                continue
            values: dict[str, str] = {}
            for name, cell in zip(header, cells, strict=False):
                if name:
                    values[name] = cell.strip()
            problems = list(missing)
            extra = [cell for cell in cells[len(header) :] if cell.strip()]
            if extra:
                example = (
                    '"data:video/mp4;base64,..."'
                    if any(cell.strip().lower().startswith("data:") for cell in cells)
                    else '"the sun rises, then sets"'
                )
                problems.insert(
                    0,
                    RowProblem(
                        "row",
                        f"has {len(cells)} values but the header has {len(header)} columns: "
                        f"quote values that contain commas, e.g. {example}",
                    ),
                )
            rows.append(RawRow(values, problems))
    except csv.Error as exc:
        raise ManifestError(
            f"the manifest {where} is not valid CSV: {exc} (line {reader.line_num})"
        ) from None
    if header is not None and not rows:
        raise ManifestError(f"the manifest {where} has a header but no rows")
    return rows


def _missing_columns(header: list[str], where: str) -> list[RowProblem]:
    """The problem each row gets for each required column the header lacks."""
    for name in FIELDS:
        if header.count(name) > 1:
            raise ManifestError(
                f"the manifest {where} has {header.count(name)} {name!r} columns: keep one"
            )
    columns = [name for name in header if name]
    problems = []
    for name in _REQUIRED:
        if name not in header:
            hint = _did_you_mean(name, columns)
            problems.append(
                RowProblem(
                    name,
                    f"missing: the manifest has no {name!r} column "
                    f"(columns: {', '.join(shown(c) for c in columns)}){hint}",
                )
            )
    return problems


def _parse_json(content: str, where: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"the manifest {where} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ManifestError(f"the manifest {where} is nested too deeply to read") from None
    return [_raw_row(item) for item in _row_list(data, where, "JSON")]


def _parse_jsonl(content: str, where: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # Split on newlines only: str.splitlines would also split on U+2028 inside JSON strings.
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            rows.append(RawRow(problems=[RowProblem("row", problem)]))
        except RecursionError:
            problem = f"line {number} is nested too deeply to read"
            rows.append(RawRow(problems=[RowProblem("row", problem)]))
        else:
            rows.append(_raw_row(item))
    return rows


def _parse_yaml(content: str, where: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(content)
    except yaml.MarkedYAMLError as exc:
        # Not str(exc): it quotes the offending line, which may be part of a data URL.
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "malformed"
        mark = exc.problem_mark or exc.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ManifestError(f"the manifest {where} is not valid YAML: {what}{at}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a value YAML reads as a timestamp but is no date, such as 2024-13-45.
        reason = shown(str(exc))
        raise ManifestError(f"the manifest {where} is not valid YAML: {reason}") from None
    if data is None:
        raise ManifestError(f"the manifest {where} is empty: it has no rows")
    return [_raw_row(item) for item in _row_list(data, where, "YAML")]


_PARSERS = {"csv": _parse_csv, "json": _parse_json, "jsonl": _parse_jsonl, "yaml": _parse_yaml}


def _row_list(data: Any, where: str, kind: str) -> list[Any]:
    """The rows of a parsed JSON/YAML document: a list, or an object's `rows` list."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and "rows" in data:
        if isinstance(data["rows"], list):
            return data["rows"]
        raise ManifestError(
            f"'rows' in the manifest {where} must be a list of rows, got {kind_of(data['rows'])}"
        )
    if isinstance(data, Mapping):
        keys = {str(key).strip().lower() for key in data}
        if keys & set(_REQUIRED):
            raise ManifestError(
                f"the manifest {where} is a single row, not a list of rows: put it in a list, "
                "or under a 'rows' key"
            )
        names = ", ".join(shown(str(key), 40) for key in list(data)[:8])
        raise ManifestError(
            f"the manifest {where} must be a {kind} list of rows or an object with a 'rows' "
            f"list, got an object with keys {names}"
        )
    raise ManifestError(
        f"the manifest {where} must be a {kind} list of rows or an object with a 'rows' list, "
        f"got {kind_of(data)}"
    )


def _raw_row(item: Any) -> RawRow:
    """A row read from a file or given inline: an object's keys lower-cased, else a problem."""
    if isinstance(item, ManifestRow):
        return RawRow(item.model_dump())
    if isinstance(item, Mapping):
        values: dict[str, Any] = {}
        for key, value in item.items():
            name = str(key).strip().lower()
            if name not in values or key == name:  # an exact key wins over a differently-cased one
                values[name] = value
        return RawRow(values)
    return RawRow(
        problems=[
            RowProblem(
                "row",
                f"is {kind_of(item)}, not an object: write each row as an object with "
                "'video' and 'prompt' keys",
            )
        ]
    )


# --------------------------------------------------------------------------- checking


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
    return row if isinstance(row, RawRow) else _raw_row(row)


def _finish(draft: _Draft, checks: dict[str, _VideoCheck]) -> ValidRow | InvalidRow:
    checked = checks.get(draft.video) if isinstance(draft.video, str) else None
    if checked is not None and checked.problem is not None:
        draft.problems["video"] = checked.problem
    source = checked.source if checked is not None else shown(draft.video)
    row_id = draft.id if draft.id is not None else draft.shown_id
    if draft.problems:
        problems = tuple(
            RowProblem(name, draft.problems[name])
            for name in _PROBLEM_ORDER
            if name in draft.problems
        )
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
                + _did_you_mean("video", unknown)
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
                _did_you_mean("prompt", unknown)
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


def _did_you_mean(name: str, candidates: list[str]) -> str:
    """A hint naming the key or column that looks like a misspelling of `name`, or ''."""
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; rename {shown(match[0], 40)!r} to {name!r}" if match else ""


def _redact_userinfo(url: str) -> str:
    """`url` without a password in its authority (sftp://user:secret@host/...)."""
    return re.sub(r"^([A-Za-z][\w+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", url)
