"""The rows of a manifest: as given (`ManifestRow`, `RawRow`) and as checked (`ValidRow`,
`InvalidRow`, with their `RowProblem`s), and the `Manifest` holding them.

`ManifestRow` is where the fields of a row are defined: `FIELDS` and `REQUIRED` are read from
it, so a new field is one new attribute here (and its check in `checking`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from prefect_grok_video.display import shown
from prefect_grok_video.inputs import MAX_DURATION, MIN_DURATION, VideoInput

DEFAULT_DURATION = 6


def _as_given(value: Any) -> Any:
    return value


def _without_additional_properties(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


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


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate that `name` is most likely a misspelling of (or the reverse), or None."""
    # 0.75: `duraton`, `promt`, `vidoe` and `modle` match; `action` is not taken for `duration`.
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return match[0] if match else None


def did_you_mean(name: str, candidates: list[str]) -> str:
    """A hint naming the key or column that looks like a misspelling of `name`, or ''."""
    match = closest(name, candidates)
    return f"; rename {shown(match, 40)!r} to {name!r}" if match else ""
