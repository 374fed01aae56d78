"""What becomes of one submission: input checks, prompt directives, outcome, and its poll answer.

Pure functions and a `Job` record, without HTTP or locking, so the rules read in one place.
(About 400 lines, for that reason.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect_grok_video.emulator.mp4gen import make_mp4
from prefect_grok_video.errors import PreflightError
from prefect_grok_video.images import probe_image
from prefect_grok_video.mp4 import check_length, preflight
from prefect_grok_video.operations import MODELS, Action, Limits

__all__ = [
    "JOB_ERROR_MESSAGES",
    "Directives",
    "Job",
    "Problem",
    "ResolvedInput",
    "check_request",
    "frame_size",
    "output_size",
    "parse_directives",
    "prompt_key",
    "resolve_image",
    "resolve_input",
    "usage_ticks",
    "within_input_length",
]

USD_PER_TICK = 1e-10
#: Frame size of a drawn result whose input's size is unknown (a URL the emulator never reads).
DRAWN_SIZE = (640, 360)
logger = logging.getLogger("prefect_grok_video.emulator")
#: Edits and extensions keep the input's frame size up to 720p (API.md, section 1).
MAX_OUTPUT_SHORT_SIDE = 720
_FILE_ID = re.compile(r"file[-_][A-Za-z0-9_-]+")
_DIRECTIVE = re.compile(r"#([a-z][a-z-]*)(?:=([^\s#]*))?")
_NOUNS: dict[Action, str] = {
    "generate": "Video generation",
    "edit": "Video editing",
    "extend": "Video extension",
}

#: Realistic messages of the asynchronous error codes (API.md, section 3).
JOB_ERROR_MESSAGES = {
    "invalid_argument": "The request was rejected: the input or the prompt is not supported for "
    "this video request.",
    "permission_denied": "The API key does not have permission to generate videos with this model.",
    "failed_precondition": "The model does not support this video request with these settings.",
    "service_unavailable": "The video generation service is currently overloaded. Please try "
    "again later.",
    "internal_error": "An internal error occurred while generating the video. Please retry; if "
    "the problem persists, contact support with the request id.",
}

#: Why a job fails: its error code and message.
Problem = tuple[str, str]


@dataclass(frozen=True)
class Directives:
    """Outcome directives found in a prompt (see the package docstring)."""

    moderated: bool = False
    expired: bool = False
    fail: str | None = None
    fail_first: str | None = None
    latency: float | None = None
    problem: str | None = None  # a malformed directive, reported as invalid_argument


def parse_directives(prompt: str) -> Directives:
    """Read `#moderated`, `#expired`, `#fail=`, `#fail-first=` and `#latency=` from a prompt."""
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(prompt):
        name, value = match.group(1), match.group(2)
        if name in ("moderated", "expired") and value is None:
            found[name] = True
        elif name in ("fail", "fail-first"):
            if not value or not re.fullmatch(r"[a-z_]+", value):
                example = f"#{name}=service_unavailable"
                found["problem"] = f"emulator directive #{name} needs an error code, e.g. {example}"
            else:
                found[name.replace("-", "_")] = value
        elif name == "latency":
            try:
                seconds = float(value or "")
            except ValueError:
                seconds = -1.0
            if not (seconds >= 0 and math.isfinite(seconds)):
                found["problem"] = f"emulator directive #latency needs seconds, got {value!r}"
            else:
                found["latency"] = seconds
    return Directives(**found)


@dataclass(frozen=True)
class ResolvedInput:
    """A `video` or `image` field understood: its counter key, its length and frame size when
    known, or why it is refused (`invalid_argument`)."""

    key: str
    seconds: float | None = None
    size: tuple[int, int] | None = None
    problem: str | None = None
    #: Its bytes when the emulator has them (a data URL, one of its own results), to draw from.
    content: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def prompt_key(prompt: str) -> str:
    """The counter key of a request without a video or image: its prompt's digest."""
    return "prompt:" + _sha256(prompt.encode("utf-8", "replace"))


def _refused(key: str, what: str, error: PreflightError) -> ResolvedInput:
    found = f" (found: {error.found})" if error.found else ""
    return ResolvedInput(key, problem=f"Invalid {what}: {error.message}{found}.")


def _inline(
    value: str, what: str, expected: str, check: Callable[[str, bytes], ResolvedInput]
) -> ResolvedInput:
    """A base64 data URL decoded and `check`ed (key, bytes), or why it, or `value` that is not a
    data URL (`expected` says what is), is refused."""
    raw_key = _sha256(value.encode("utf-8", "replace"))
    if not value.startswith("data:"):
        return ResolvedInput(
            raw_key, problem=f"Invalid {what}: expected {expected}, got {_short(value)}."
        )
    header, comma, payload = value[5:].partition(",")
    if not comma:
        return ResolvedInput(raw_key, problem=f"Invalid {what}: malformed data URL (no comma).")
    if "base64" not in header.split(";")[1:]:
        return ResolvedInput(
            raw_key, problem=f"Invalid {what}: the data URL must be base64-encoded (`;base64,`)."
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return ResolvedInput(raw_key, problem=f"Invalid {what}: the data URL is not valid base64.")
    key = _sha256(data)
    try:
        return check(key, data)
    except PreflightError as error:
        return _refused(key, what, error)


def resolve_input(video: str, assumed_seconds: float, keep_bytes: int = 0) -> ResolvedInput:
    """Classify and check `video` without network (data URLs are decoded and probed as MP4s;
    URLs and file ids are assumed to last `assumed_seconds`); its length is checked apart, by
    `within_input_length`, against the operation's limits. A decoded clip of up to
    `keep_bytes` is kept as its `content`."""
    if video.startswith(("http://", "https://")) or _FILE_ID.fullmatch(video):
        return ResolvedInput(video, assumed_seconds)

    def check(key: str, data: bytes) -> ResolvedInput:
        info = preflight(io.BytesIO(data), len(data), (0.0, math.inf))
        size = (info.width, info.height) if info.width and info.height else None
        return ResolvedInput(key, info.duration, size, content=_kept(data, keep_bytes))

    return _inline(video, "video", "a public http(s) URL, a base64 data URL or a file id", check)


def resolve_image(image: str, keep_bytes: int = 0) -> ResolvedInput:
    """Classify and check a still without network: http(s) URLs pass unfetched; data URLs are
    decoded and must be PNG or JPEG by their content (kept as `content` up to `keep_bytes`)."""
    if image.startswith(("http://", "https://")):
        return ResolvedInput(image)

    def check(key: str, data: bytes) -> ResolvedInput:
        probe_image(io.BytesIO(data))
        return ResolvedInput(key, content=_kept(data, keep_bytes))

    return _inline(image, "image", "a public http(s) URL or a base64 data URL", check)


def _kept(data: bytes, keep_bytes: int) -> Callable[[], bytes] | None:
    return (lambda: data) if len(data) <= keep_bytes else None


def within_input_length(video: ResolvedInput, limits: Limits) -> ResolvedInput:
    """`video`, refused if its known length lies outside what the operation takes."""
    if video.problem or video.seconds is None or limits.input_seconds is None:
        return video
    try:
        check_length(video.seconds, limits.input_seconds)
    except PreflightError as error:
        return _refused(video.key, "video", error)
    return video


def _whole(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value == int(value)
    )


def check_request(limits: Limits, fields: dict[str, Any], max_prompt_chars: int) -> Problem | None:
    """Why the prompt or the other `fields` (those not null, the model filled in) make the job
    fail, or None: `failed_precondition` for a resolution only other models offer, else
    `invalid_argument`."""
    prompt: str = fields["prompt"]
    if not prompt.strip():
        return "invalid_argument", "Prompt cannot be empty. Please provide a prompt."
    if len(prompt) > max_prompt_chars:
        return "invalid_argument", (
            f"Prompt is too long: {len(prompt)} characters; the maximum is {max_prompt_chars}."
        )
    refused = [name for name in fields if not limits.takes(name)]
    if refused:
        properties = limits.takes_video and not {"video", "image"} & set(refused)
        why = ": the output matches the input video's properties" if properties else ""
        return "invalid_argument", (
            f"{_NOUNS[limits.action]} does not accept {', '.join(refused)}{why}."
        )
    duration = fields.get("duration")
    if limits.durations is not None and duration is not None:
        low, high = limits.durations
        if not (_whole(duration) and low <= duration <= high):
            return "invalid_argument", (
                f"Invalid duration {duration!r}: it must be a whole number of seconds from "
                f"{low} to {high}."
            )
    aspect_ratio = fields.get("aspect_ratio")
    if aspect_ratio is not None and aspect_ratio not in limits.aspect_ratios:
        return "invalid_argument", (
            f"Invalid aspect_ratio {aspect_ratio!r}: it must be one of "
            f"{', '.join(limits.aspect_ratios)}."
        )
    resolution = fields.get("resolution")
    if resolution is not None and resolution not in limits.resolutions:
        offered = ", ".join(limits.resolutions)
        if any(resolution in model.of(limits.action).resolutions for model in MODELS.values()):
            return "failed_precondition", (
                f"The model {fields.get('model')!r} does not support resolution {resolution!r}; "
                f"it offers {offered}."
            )
        return "invalid_argument", (
            f"Invalid resolution {resolution!r}: it must be one of {offered}."
        )
    return None


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def frame_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height of a generation: the short side is the resolution's lines (480p: 480),
    the long side follows the aspect ratio (16:9 at 480p: 854x480; 9:16: 480x854)."""
    lines = int(resolution.rstrip("p"))
    across, down = (int(part) for part in aspect_ratio.split(":"))
    if across >= down:
        return _even(lines * across / down), lines
    return lines, _even(lines * down / across)


def output_size(input_size: tuple[int, int] | None) -> tuple[int, int] | None:
    """The frame size of an edit or extension: the input's, scaled down to 720p at most."""
    if input_size is None:
        return None
    width, height = input_size
    scale = min(1.0, MAX_OUTPUT_SHORT_SIDE / min(width, height))
    return _even(width * scale), _even(height * scale)


def usage_ticks(output_seconds: float, usd_per_second: float) -> int:
    """The made-up price of an output, in ticks of 1e-10 USD."""
    return round(output_seconds * usd_per_second / USD_PER_TICK)


def _number(seconds: float) -> int | float:
    seconds = round(seconds, 3)
    return int(seconds) if seconds == int(seconds) else seconds


@dataclass
class Job:
    """An accepted submission and its planned outcome: done, moderated, failed or expired."""

    request_id: str
    model: str
    prompt: str
    duration: Any
    input_key: str
    created: float
    latency: float
    outcome: str
    token: str
    error_code: str | None = None
    error_message: str | None = None
    output_seconds: float | None = None
    cost_ticks: int | None = None
    action: Action = "extend"
    #: Frame size of the result (None: the emulator's default 160x90 test card).
    size: tuple[int, int] | None = None
    #: The request body's fields but its video and image, as sent.
    fields: dict[str, Any] = field(default_factory=dict)
    #: How the video or image came: its field name -> "string" or "object".
    media: dict[str, str] = field(default_factory=dict)
    #: The input clip (edit, extension) or still (generation) to draw the result from.
    source: Callable[[], bytes] | None = field(default=None, repr=False)
    terminal_seen: bool = False
    expired_by_ttl: bool = False
    _mp4: bytes | None = field(default=None, repr=False)

    @property
    def finished_at(self) -> float:
        """Monotonic time at which the job leaves `pending`."""
        return self.created + self.latency

    @property
    def has_file(self) -> bool:
        """Whether the job produces a downloadable video."""
        return self.outcome == "done" and not self.expired_by_ttl

    def status(
        self, now: float, root_url: str, job_ttl: float | None, *, progress: bool = True
    ) -> dict[str, Any]:
        """The poll answer at monotonic time `now` (API.md, section 2); `progress` says whether
        a pending answer reports how far the job is."""
        if job_ttl is not None and not self.terminal_seen and now - self.created > job_ttl:
            self.expired_by_ttl = True
        if self.expired_by_ttl:
            self.terminal_seen = True
            return {"status": "expired", "model": self.model}
        if now < self.finished_at:
            if not progress:
                return {"status": "pending", "model": self.model}
            done = int(100 * (now - self.created) / self.latency) if self.latency else 0
            return {"status": "pending", "model": self.model, "progress": max(0, min(99, done))}
        self.terminal_seen = True
        if self.outcome == "failed":
            return {
                "status": "failed",
                "model": self.model,
                "error": {"code": self.error_code, "message": self.error_message},
            }
        if self.outcome == "expired":
            return {"status": "expired", "model": self.model}
        assert self.output_seconds is not None
        moderated = self.outcome == "moderated"
        url = "" if moderated else f"{root_url}/files/{self.request_id}.mp4?token={self.token}"
        return {
            "status": "done",
            "model": self.model,
            "progress": 100,
            "video": {
                "url": url,
                "duration": _number(self.output_seconds),
                "respect_moderation": not moderated,
            },
            "usage": {"cost_in_usd_ticks": self.cost_ticks},
        }

    def mp4(self, pictures: str = "flat") -> bytes:
        """The result video, made on first use and kept: drawn from the prompt and the input
        (`pictures="drawn"`, a thread's work) or flat grey frames written without an encoder."""
        if self._mp4 is None:
            assert self.output_seconds is not None
            tag = f"request_id={self.request_id}"
            self._mp4 = self._drawn(tag) if pictures == "drawn" else None
            if self._mp4 is None:
                self._mp4 = make_mp4(self.output_seconds, tag=tag, size=self.size)
            self.source = None  # drawn from once; the input's bytes are not needed any more
        return self._mp4

    def _drawn(self, tag: str) -> bytes | None:
        from prefect_grok_video.emulator.pictures import draw_video

        assert self.output_seconds is not None
        try:
            source = self.source() if self.source is not None else None
            size = self.size or DRAWN_SIZE
            return draw_video(
                self.action, self.prompt, self.output_seconds, size, source=source, tag=tag
            )
        except Exception:  # never fail a download over its picture: flat frames instead
            logger.warning("Could not draw %s; serving flat frames", self.request_id,
                           exc_info=True)  # fmt: skip
            return None
