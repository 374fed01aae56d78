"""The rows of a manifest: as given (`ManifestRow`, `RawRow`) and as checked (`ValidRow`,
`InvalidRow`, with their `RowProblem`s), and the `Manifest` holding them.

`ManifestRow` is where the fields of a row are defined: `FIELDS` and `REQUIRED` are read from
it, so a new field is one new attribute here (and its check in `checking`). What each action
takes and allows is `prefect_grok_video.operations`' table.
"""

from __future__ import annotations

import base64
import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from prefect_grok_video.display import shown
from prefect_grok_video.inputs import ImageInput, VideoInput
from prefect_grok_video.models import DownloadResult
from prefect_grok_video.operations import (
    ACTIONS,
    DEFAULT_ACTION,
    MODELS,
    Action,
    JobRequest,
    limits_for,
)
from prefect_grok_video.report import ItemResult
from prefect_grok_video.settings import DEFAULT_MODEL

#: An extension's default duration (each action's is in `prefect_grok_video.operations`).
DEFAULT_DURATION = 6
#: A `video` written `@<id>` is the result of the row with that id.
UPSTREAM_PREFIX = "@"


def _as_given(value: Any) -> Any:
    return value


def _without_additional_properties(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


def _kept_as_given(schema: dict[str, Any]) -> Any:
    """A field kept as given, so that a bad value makes an invalid *row* (reported with the
    others) rather than failing the whole flow's parameters; `schema` is what the form shows."""
    return Annotated[
        Any, PlainValidator(_as_given), PlainSerializer(_as_given), WithJsonSchema(schema)
    ]


def media_reference(value: Any) -> Any:
    """A row's `video` or `image` as the text a manifest holds, from what a pipeline has in
    hand: a path (`Path`), a video made earlier (its `ItemResult`, or the `DownloadResult` of
    `download_video`: the saved file), or the bytes themselves (a base64 data URL, sent with
    the request: keep those small). Anything else is kept as given, to be checked with the
    row."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, DownloadResult):
        return str(value.path)
    if isinstance(value, ItemResult):
        if value.status != "succeeded" or not value.output:
            raise ValueError(
                f"row {value.id!r} ended {value.status}, with no video to start from: pass a "
                "result that succeeded (RunReport.succeeded lists them)"
            )
        return value.output
    if isinstance(value, (bytes, bytearray)):
        kind = (
            "image/png"
            if value[:4] == b"\x89PNG"
            else ("image/jpeg" if value[:2] == b"\xff\xd8" else "video/mp4")
        )
        return f"data:{kind};base64,{base64.b64encode(value).decode()}"
    return value


#: A `video` or `image` field: text, or what `media_reference` turns into text.
Media = Annotated[str | None, BeforeValidator(media_reference)]

_DURATIONS = [limits_for(action, DEFAULT_MODEL).durations for action in ACTIONS]
_SHORTEST = min(low for low, _ in filter(None, _DURATIONS))
_LONGEST = max(high for _, high in filter(None, _DURATIONS))
_MODEL_LIMITS = MODELS[DEFAULT_MODEL]


class ManifestRow(BaseModel):
    """One row as given: what the Prefect UI renders as a form for inline manifests."""

    # Keys that are no field are kept, so that reading reports them (a misspelt `duraton` must
    # not run with the default); the form (the JSON schema) still offers only the fields.
    model_config = ConfigDict(extra="allow", json_schema_extra=_without_additional_properties)

    id: str | None = Field(
        default=None,
        description=(
            "Unique name of the row and of its output file <id>.mp4 (letters, digits, '-' and "
            "'_'); row-<n> when empty."
        ),
    )
    action: _kept_as_given({"enum": list(ACTIONS), "type": "string"}) = Field(  # type: ignore[valid-type]
        default=DEFAULT_ACTION,
        description=(
            "generate: a clip from the prompt (and a still, if image is given); edit: the "
            "video restyled as the prompt says; extend: the video continued."
        ),
    )
    video: Media = Field(
        default=None,
        description=(
            "For edit and extend: the clip, as a path (relative to the manifest's folder), a "
            "storage URL such as s3://bucket/clip.mp4, an http(s) URL, a data URL or "
            "file_id:<id>; or @<id>, the result of another row of this manifest."
        ),
    )
    image: Media = Field(
        default=None,
        description=(
            "For generate (image-to-video): a still, PNG or JPEG, as a path, storage URL, "
            "http(s) URL or data URL."
        ),
    )
    prompt: str = Field(description="What the video shows, or what changes, or what happens next.")
    duration: _kept_as_given(  # type: ignore[valid-type]
        {"type": "integer", "minimum": _SHORTEST, "maximum": _LONGEST}
    ) = Field(
        default=None,
        description=(
            "Seconds of new video: generate 1-15 (default 8), extend 2-10 (default 6); edit "
            "takes none (the output is as long as the input)."
        ),
    )
    aspect_ratio: _kept_as_given(  # type: ignore[valid-type]
        {"enum": list(_MODEL_LIMITS.aspect_ratios), "type": "string"}
    ) = Field(default=None, description="For generate: the shape of the video (default 16:9).")
    resolution: _kept_as_given(  # type: ignore[valid-type]
        {"enum": sorted({r for m in MODELS.values() for r in m.resolutions}), "type": "string"}
    ) = Field(default=None, description="For generate: 480p or 720p (1080p on newer models).")
    model: str | None = Field(
        default=None, description="Model id; the flow's default model when empty."
    )


#: The fields of a row, in the order their problems are reported.
FIELDS: tuple[str, ...] = tuple(ManifestRow.model_fields)
#: The fields every row must give.
REQUIRED: tuple[str, ...] = tuple(
    name for name, info in ManifestRow.model_fields.items() if info.is_required()
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
    is empty with a `row` problem; a CSV without a required column gives that column's problem,
    and a column or key that is no field gives a problem named after it.
    """

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        problems: Sequence[RowProblem] = (),
        columns: Sequence[str] | None = None,
    ) -> None:
        super().__init__(values or {})
        self.problems = tuple(problems)
        #: The columns of a CSV row's header (None for other formats): a value missing from
        #: every row is then a missing column, and its problem says so.
        self.columns = tuple(columns) if columns is not None else None

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
    #: The row's action as given, when it is one ("extend" when none was given).
    action: str | None = None
    #: The id its `video: @<id>` names, if it has one.
    upstream: str | None = None

    @property
    def message(self) -> str:
        """All problems on one line: ``row 3 (id 'x'): duration: ...; video: ...``."""
        problems = "; ".join(str(problem) for problem in self.problems)
        return f"row {self.row} (id {shown(self.id)!r}): {problems}"


@dataclass(frozen=True)
class ValidRow:
    """A row ready to send: its inputs resolved (and preflighted) and its values checked."""

    row: int
    id: str
    action: Action
    #: Resolved video (None for generate, and for a row whose video is another row's result);
    #: left out of the repr because a data URL input holds the whole video.
    video: VideoInput | None = field(repr=False)
    #: `video.describe()`, or `@<id>`: safe to log and report ("" without a video).
    source: str
    prompt: str
    duration: int | None
    model: str
    #: `VideoInput.fingerprint()`: sha256 of the content for files and data URLs, else the
    #: URL or file id; the same clip at two paths has the same fingerprint. None without one.
    fingerprint: str | None
    #: The id of the row whose result is this row's video (`video: @<id>`).
    upstream: str | None = None
    image: ImageInput | None = field(default=None, repr=False)
    #: `image.describe()`, safe to show ("" without a still).
    image_source: str = ""
    image_fingerprint: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    #: Seconds the input video lasts and the result will last, when known before it runs.
    input_seconds: float | None = None
    output_seconds: float | None = None

    @property
    def output_name(self) -> str:
        """The name of this row's result file."""
        return f"{self.id}.mp4"

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two rows the very same paid job (they share one submission)."""
        video = f"{UPSTREAM_PREFIX}{self.upstream}" if self.upstream else self.fingerprint
        return (self.action, self.model, self.prompt, self.duration, self.aspect_ratio,
                self.resolution, video, self.image_fingerprint)  # fmt: skip

    def request(self, video: VideoInput | None = None) -> JobRequest:
        """The job this row pays for; `video` is the upstream's result for a chained row."""
        return JobRequest(
            self.action, self.prompt, self.model, video=video or self.video, image=self.image,
            duration=self.duration, aspect_ratio=self.aspect_ratio, resolution=self.resolution,
        )  # fmt: skip


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

    def blocked_by(self) -> dict[int, InvalidRow]:
        """Valid rows (by number) that will not run because a row upstream of them is invalid,
        with that invalid row."""
        by_id = {row.id: row for row in self.rows}
        blocked: dict[int, InvalidRow] = {}
        for row in self.valid:
            seen, upstream = {row.id}, row.upstream
            while upstream is not None and upstream not in seen:
                seen.add(upstream)
                above = by_id.get(upstream)
                if isinstance(above, InvalidRow):
                    blocked[row.row] = above
                    break
                upstream = above.upstream if isinstance(above, ValidRow) else None
        return blocked


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate that `name` is most likely a misspelling of (or the reverse), or None."""
    # 0.75: `duraton`, `promt`, `vidoe` and `modle` match; `action` is not taken for `duration`.
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return match[0] if match else None


def did_you_mean(name: str, candidates: list[str]) -> str:
    """A hint naming the key or column that looks like a misspelling of `name`, or ''."""
    match = closest(name, candidates)
    return f"; rename {shown(match, 40)!r} to {name!r}" if match else ""
